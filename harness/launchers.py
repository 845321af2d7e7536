"""Launchers start a board and hand back a Transport to its console (twister's 'device adapter',
labgrid's power+console drivers folded into one small object):

- QemuLauncher: a QEMU process whose first serial port is a pty, opened with pyserial;
- ProcessLauncher: a host process (MicroPython's unix port) on a pty the harness owns,
  restarted when it exits, as the guest init does on qemu_x86 — that restart is its soft reset;
- SerialLauncher: a real device's serial port."""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import sys
import termios
import threading
import time
import tty
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from pathlib import Path

from harness import procs
from harness.boardnet import BoardNet, free_port, host_net, release, tap_net, user_net
from harness.canlink import SlcanLink
from harness.errors import BootError, InfrastructureError
from harness.images import Image
from harness.qmp import Qmp
from harness.snapshot import Snapshot
from harness.targets import BoardSpec
from harness.transport import FdTransport, SerialTransport, Transport

_PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+) \(label (\w+)\)")
_QEMU_PACKAGES = {"qemu-system-arm": "qemu-system-arm", "qemu-system-x86_64": "qemu-system-x86"}


class Launcher(ABC):
    net: BoardNet | None = None  # how the host reaches the board's network, if it has one
    can: SlcanLink | None = None  # the board's CAN link, if it has one
    restored: bool = False  # started from a snapshot rather than booted

    @abstractmethod
    def start(self) -> Transport: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def alive(self) -> bool: ...

    def death(self) -> str:
        """Why the board is gone, for error messages."""
        return "the board is gone"

    @property
    def exit_status(self) -> int | None:
        return None


def _pacing(spec: BoardSpec) -> dict:
    return {"write_chunk": spec.console.write_chunk, "write_gap_ms": spec.console.write_gap_ms}


def _expand(args: list[str], values: dict[str, str], spec: BoardSpec) -> list[str]:
    try:
        return [a.format(**values) for a in args]
    except KeyError as exc:
        raise InfrastructureError(
            f"{spec.path}: placeholder {{{exc.args[0]}}} in launch arguments is unknown "
            f"(known: {', '.join('{' + k + '}' for k in sorted(values))})"
        ) from None


class QemuLauncher(Launcher):
    """QEMU with the console on serial0 (a pty, or a TCP socket), plus what the target asks for:
    a network (user-mode or tap), a CAN link on serial1, a QMP socket, snapshot save/restore."""

    PORT_RETRIES = 3  # free ports are picked before QEMU binds them: retry the rare collision

    def __init__(self, spec: BoardSpec, image: Image, workdir: Path, log: Callable[[str], None] = print) -> None:
        self.spec, self.image, self.workdir, self.log = spec, image, workdir, log
        self.proc: subprocess.Popen | None = None
        self.ptys: dict[str, str] = {}  # QEMU chardev label -> /dev/pts/N
        self.output: deque[bytes] = deque(maxlen=50)  # QEMU's own stdout/stderr lines
        self.net: BoardNet | None = None
        self.can: SlcanLink | None = None
        self.qmp: Qmp | None = None
        self.snapshot: Snapshot | None = None
        self.restored = False
        self.console_port = 0
        self._captures = 0
        self._capture_qemu: dict[str, subprocess.Popen | None] = {}

    # --- command line -----------------------------------------------------------------------
    def _kernel_params(self) -> list[str]:
        can = self.can.kernel_params() if self.can and self.spec.can.kernel_params else []
        net = self.net.kernel_params() if self.net and self.spec.network.on_kernel_cmdline else []
        return net + can

    def _args(self) -> list[str]:
        values = {k: str(v) for k, v in self.image.files.items()} | {"workdir": str(self.workdir)}
        args = _expand(self.spec.launch.args, values, self.spec)
        if params := self._kernel_params():
            i = args.index("-append")
            args[i + 1] = f"{args[i + 1]} {' '.join(params)}"
        return args

    def command(self, incoming: bool = False) -> list[str]:
        launch = self.spec.launch
        if self.spec.console.chardev == "pty":
            console = "pty"
        else:
            console = f"tcp:127.0.0.1:{self.console_port},server=on,wait=off,nodelay=on"
        cmd = [launch.binary, "-M", launch.machine, "-display", "none", "-monitor", "none", "-serial", console]
        cmd += self._args()
        if self.can:
            cmd += self.can.qemu_args()  # after the console: the guest's ttyS1
        if self.net:
            cmd += self.net.qemu_args(self.spec.network.device, self.spec.network.nic)
        cmd += ["-qmp", f"unix:{self.workdir / 'qmp.sock'},server=on,wait=off"]
        if incoming:
            cmd += ["-incoming", "defer"]
        return self.net.netns.command(cmd) if self.net and self.net.netns else cmd

    def snapshot_shape(self) -> list[str]:
        """What must match between a saved state and the machine restoring it (no per-instance ports)."""
        n = self.spec.network
        return [self.spec.name, self.image.digest, self.spec.launch.machine, *self._args(),
                n.mode, n.device, self.spec.can.link, self.spec.console.chardev]  # fmt: skip

    # --- lifecycle --------------------------------------------------------------------------
    def _allocate(self) -> None:
        n = self.spec.network
        if n.mode == "user":
            self.net = user_net(n)
        elif n.mode == "tap" and self.net is None:  # a tap keeps its namespace across port retries
            self.net = tap_net(n, instance=f"inst-{self.spec.name}-{id(self):x}")
        if self.spec.can.link == "slcan_serial":
            self.can = SlcanLink.allocate(self.spec.can.bitrate, self.net.netns if self.net else None)
        if self.spec.console.chardev == "socket":
            self.console_port = free_port()

    def start(self) -> Transport:
        binary = self.spec.launch.binary
        if not shutil.which(binary):
            pkg = _QEMU_PACKAGES.get(binary, "qemu-system")
            raise InfrastructureError(f"{binary} not found: install Debian package {pkg} (make setup does)")
        if self.spec.snapshot.enabled:
            self._allocate()
            self.snapshot = Snapshot.for_config(self.spec.name, binary, self.snapshot_shape())
            if self.snapshot.exists:
                try:
                    return self._start(incoming=True)
                except InfrastructureError as exc:
                    self.log(f"[{self.spec.name}] snapshot {self.snapshot.path.name} unusable ({exc}); "
                             "discarding it and booting cold")
                    self._kill()
                    self.snapshot.discard()
        for attempt in range(self.PORT_RETRIES):
            self._allocate()
            try:
                return self._start(incoming=False)
            except BootError as exc:
                if "in use" not in str(exc) or attempt == self.PORT_RETRIES - 1:
                    raise
                self._kill()
        raise AssertionError("unreachable")

    def _start(self, incoming: bool) -> Transport:
        self.started_at = time.monotonic()
        self.ptys, self.restored = {}, False
        (self.workdir / "qmp.sock").unlink(missing_ok=True)
        self.proc = procs.spawn(
            self.command(incoming), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        if self.spec.console.chardev == "pty":
            self._read_pty_lines(1, deadline=time.monotonic() + 15)
        threading.Thread(target=self._drain, daemon=True, name=f"qemu-{self.spec.name}").start()
        try:
            self.qmp = Qmp(self.workdir / "qmp.sock", timeout=15)
        except InfrastructureError:
            self._raise_if_exited()
            raise
        if incoming:
            assert self.snapshot
            started = time.monotonic()
            self.snapshot.restore(self.qmp)
            self.restored = True
            self.log(f"[{self.spec.name}] restored from snapshot in {time.monotonic() - started:.2f} s")
        url = self.ptys["serial0"] if self.spec.console.chardev == "pty" else f"socket://127.0.0.1:{self.console_port}"

        def connect() -> Transport:
            return SerialTransport(url, self.spec.console.baudrate, **_pacing(self.spec))

        # A tap board's QEMU runs in its namespace: so do its TCP chardevs (console, CAN).
        return self.net.run(connect) if self.net else connect()

    def _raise_if_exited(self) -> None:
        if self.proc and self.proc.poll() is not None:
            raise BootError(f"{self.spec.name}: QEMU exited with status {self.proc.returncode} at start: {self._out()}")

    def wants_snapshot(self) -> bool:
        return self.snapshot is not None and not self.restored and not self.snapshot.exists

    def save_snapshot(self) -> None:
        assert self.snapshot and self.qmp
        with self.snapshot.lock():
            if self.snapshot.exists:
                return
            started = time.monotonic()
            self.snapshot.save(self.qmp)
            size = self.snapshot.path.stat().st_size >> 20
            self.log(f"[{self.spec.name}] saved snapshot {self.snapshot.path.name} ({size} MB) "
                     f"in {time.monotonic() - started:.2f} s")

    # --- per-test packet capture (QEMU's filter-dump on the board's netdev) --------------------
    def start_capture(self, path: Path) -> str:
        assert self.qmp and self.net
        self._captures += 1
        ident = f"hilcap{self._captures}"
        self._capture_qemu[ident] = self.proc  # a restart mid-test ends the capture with that QEMU
        self.qmp.cmd("object-add", **{"qom-type": "filter-dump", "id": ident, "netdev": self.net.netdev_id,
                                      "file": str(path)})
        return ident

    def stop_capture(self, ident: str) -> None:
        started_on = self._capture_qemu.pop(ident, None)
        if self.qmp and self.alive() and started_on is self.proc:
            self.qmp.cmd("object-del", id=ident)

    # --- pty plumbing -----------------------------------------------------------------------
    def _read_pty_lines(self, want: int, deadline: float) -> None:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        pending = b""
        while len(self.ptys) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BootError(f"{self.spec.name}: QEMU did not report its serial pty within 15 s: {self._out()}")
            ready, _, _ = select.select([fd], [], [], left)
            chunk = os.read(fd, 4096) if ready else b""
            if ready and not chunk:
                self.proc.wait(5)
                raise BootError(
                    f"{self.spec.name}: QEMU exited with status {self.proc.returncode} at start: {self._out()}"
                )
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.output.append(line)
                if m := _PTY_LINE.search(line):
                    self.ptys[m.group(2).decode()] = m.group(1).decode()
        if pending:
            self.output.append(pending)

    def _drain(self) -> None:
        assert self.proc and self.proc.stdout
        for line in iter(self.proc.stdout.readline, b""):
            self.output.append(line.rstrip(b"\n"))

    def _out(self) -> str:
        text = b" | ".join(line.strip() for line in self.output if line.strip()).decode("utf-8", "replace")
        return text[-400:] or "(no output)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_status(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def death(self) -> str:
        status = self.exit_status
        how = f"was killed by signal {-status}" if status is not None and status < 0 else f"exited with status {status}"
        return f"QEMU {how}; QEMU said: {self._out()}"

    def _kill(self) -> None:
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        if self.proc:
            procs.kill(self.proc)

    def stop(self) -> None:
        self._kill()
        if self.net:
            release(self.net)


class ProcessLauncher(Launcher):
    """A host process on a pty. The harness keeps the slave end open so the console survives
    restarts; a watcher thread restarts the process when it exits (bounded for crash loops)."""

    CRASH_LOOP = 5  # failing exits, each within a second of start, before we call the board dead

    def __init__(self, spec: BoardSpec, workdir: Path, firmware_py: Path) -> None:
        self.spec, self.workdir, self.firmware_py = spec, workdir, firmware_py
        self.proc: subprocess.Popen | None = None
        self.master = self.slave = -1
        self.stopping = False
        self.last_status: int | None = None
        self.quick_exits = 0
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()

    def _argv(self) -> tuple[list[str], dict[str, str]]:
        venv_bin = str(Path(sys.executable).parent)
        values = {"firmware_py": str(self.firmware_py), "workdir": str(self.workdir), "venv_bin": venv_bin}
        argv = _expand(self.spec.launch.command, values, self.spec)
        path = venv_bin + os.pathsep + os.environ.get("PATH", "")
        resolved = shutil.which(argv[0], path=path)
        if not resolved:
            raise InfrastructureError(
                f"{self.spec.path}: launch.command program {argv[0]!r} not found; install it (make setup does)"
            )
        env = os.environ | {"PATH": path} | {k: v.format(**values) for k, v in self.spec.launch.env.items()}
        return [resolved, *argv[1:]], env

    def _spawn(self) -> None:
        argv, env = self._argv()
        self.proc = procs.spawn(
            argv, controlling_tty=True, stdin=self.slave, stdout=self.slave, stderr=self.slave,
            cwd=self.workdir, env=env,
        )  # fmt: skip
        self.spawned_at = time.monotonic()

    def start(self) -> Transport:
        if self.spec.capabilities.net:
            self.net = host_net()
        self.master, self.slave = os.openpty()
        _uart_like(self.slave)
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name=f"proc-{self.spec.name}")
        self._watcher.start()
        return FdTransport(self.master, f"{self.spec.name} (pid {self.proc.pid})", **_pacing(self.spec))

    def _watch(self) -> None:
        while not self.stopping:
            proc = self.proc
            assert proc is not None
            status = proc.wait()
            procs.forget(proc)
            self.last_status = status
            if self.stopping:
                return
            # A clean exit (0) is Ctrl-D, the soft reset; quick failing exits in a row are a crash loop.
            crashed = status != 0 and time.monotonic() - self.spawned_at < 1.0
            self.quick_exits = self.quick_exits + 1 if crashed else 0
            if self.quick_exits >= self.CRASH_LOOP:
                return  # leave it dead so alive() says so
            if crashed:
                time.sleep(0.1)
            with self._lock:  # stop() must never race a respawn: it would leak the new process
                if self.stopping:
                    return
                self._spawn()

    def alive(self) -> bool:
        return (self.proc is not None and self.proc.poll() is None) or (
            self._watcher is not None and self._watcher.is_alive() and not self.stopping
        )

    @property
    def exit_status(self) -> int | None:
        return self.last_status

    def death(self) -> str:
        return f"process {self.spec.launch.command[0]} kept exiting (last status {self.last_status})"

    def stop(self) -> None:
        with self._lock:
            self.stopping = True
        if self.proc:
            procs.kill(self.proc, grace=1.0)
        if self._watcher:
            self._watcher.join(5)
        for fd in (self.slave,):
            if fd >= 0:
                os.close(fd)
        self.slave = -1


def _uart_like(fd: int) -> None:
    """Raw like a UART (no echo, no line editing, no \\n -> \\r\\n) but with ISIG kept, so
    Ctrl-C interrupts running code the way MicroPython's UART REPL does."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] |= termios.ISIG
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class SerialLauncher(Launcher):
    """A real device's serial port: a device path, ``rfc2217://HOST:PORT`` (reconnects when the TCP
    link drops), a labgrid place (``labgrid://COORDINATOR/PLACE``: acquired on start, released on
    stop) or a lab device (``lab:NAME``: found by its USB attributes, see harness/lab.py)."""

    def __init__(self, spec: BoardSpec) -> None:
        self.spec = spec
        self.transport: SerialTransport | None = None
        self.port = spec.launch.port  # what was opened, once resolved
        self.lease = None  # a held labgrid place

    def start(self) -> Transport:
        from harness import remote

        port = self.spec.launch.port
        if port.startswith("lab:"):
            from harness.lab import resolve_lab_port

            port = resolve_lab_port(port[4:])
        if remote.is_labgrid(port):
            self.lease = remote.LabgridPlace.from_port(port)
            port = self.lease.acquire()
        self.port = port
        try:
            if port.startswith("rfc2217://"):
                self.transport = remote.Rfc2217Transport(
                    port, self.spec.console.baudrate, reconnect_timeout=self.spec.console.boot_timeout,
                    **_pacing(self.spec),
                )  # fmt: skip
            else:
                self.transport = SerialTransport(port, self.spec.console.baudrate, **_pacing(self.spec))
            # A board left in raw REPL by an earlier session answers no poke: Ctrl-B leaves it
            # (at the friendly prompt it just reprints the banner).
            self.transport.write(b"\x02")
        except BaseException:
            if self.transport is not None:
                self.transport.close()
            self.stop()
            raise
        return self.transport

    def alive(self) -> bool:
        return (self.transport is not None and os.path.exists(self.port)) or "://" in self.port

    def death(self) -> str:
        return f"serial port {self.port} disappeared (unplugged?)"

    def stop(self) -> None:
        # the console closes the port; a labgrid place is given back
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.release()


def make_launcher(
    spec: BoardSpec, image: Image, workdir: Path, firmware_py: Path, log: Callable[[str], None] = print
) -> Launcher:
    kind = spec.launch.kind
    if kind == "qemu":
        return QemuLauncher(spec, image, workdir, log)
    if kind == "process":
        return ProcessLauncher(spec, workdir, firmware_py)
    return SerialLauncher(spec)
