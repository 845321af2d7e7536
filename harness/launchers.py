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
import threading
import termios
import time
import tty
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path

from harness import procs
from harness.errors import BootError, InfrastructureError
from harness.images import Image
from harness.targets import BoardSpec
from harness.transport import FdTransport, SerialTransport, Transport

_PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+) \(label (\w+)\)")
_QEMU_PACKAGES = {"qemu-system-arm": "qemu-system-arm", "qemu-system-x86_64": "qemu-system-x86"}


class Launcher(ABC):
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
    def __init__(self, spec: BoardSpec, image: Image, workdir: Path, extra_args: list[str] | None = None) -> None:
        self.spec, self.image, self.workdir = spec, image, workdir
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.ptys: dict[str, str] = {}  # QEMU chardev label -> /dev/pts/N
        self.output: deque[bytes] = deque(maxlen=50)  # QEMU's own stdout/stderr lines
        self.started_at = 0.0

    def command(self) -> list[str]:
        launch = self.spec.launch
        values = {k: str(v) for k, v in self.image.files.items()} | {"workdir": str(self.workdir)}
        return [
            launch.binary, "-M", launch.machine,
            "-display", "none", "-monitor", "none", "-serial", "pty",
            *_expand(launch.args, values, self.spec), *self.extra_args,
        ]  # fmt: skip

    def start(self) -> Transport:
        binary = self.spec.launch.binary
        if not shutil.which(binary):
            pkg = _QEMU_PACKAGES.get(binary, "qemu-system")
            raise InfrastructureError(f"{binary} not found: install Debian package {pkg} (make setup does)")
        cmd = self.command()
        self.started_at = time.monotonic()
        self.proc = procs.spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        want = cmd.count("pty") if "-serial" in cmd else 1
        self._read_pty_lines(want, deadline=time.monotonic() + 15)
        threading.Thread(target=self._drain, daemon=True, name=f"qemu-{self.spec.name}").start()
        return SerialTransport(self.ptys["serial0"], self.spec.console.baudrate, **_pacing(self.spec))

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

    def stop(self) -> None:
        if self.proc:
            procs.kill(self.proc)


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
            argv, controlling_tty=True, stdin=self.slave, stdout=self.slave, stderr=self.slave, cwd=self.workdir, env=env
        )
        self.spawned_at = time.monotonic()

    def start(self) -> Transport:
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
            self._spawn()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None or (
            self._watcher is not None and self._watcher.is_alive() and not self.stopping
        )

    @property
    def exit_status(self) -> int | None:
        return self.last_status

    def death(self) -> str:
        return f"process {self.spec.launch.command[0]} kept exiting (last status {self.last_status})"

    def stop(self) -> None:
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
    def __init__(self, spec: BoardSpec) -> None:
        self.spec = spec
        self.transport: SerialTransport | None = None

    def start(self) -> Transport:
        self.transport = SerialTransport(self.spec.launch.port, self.spec.console.baudrate, **_pacing(self.spec))
        return self.transport

    def alive(self) -> bool:
        return self.transport is not None and os.path.exists(self.spec.launch.port) or "://" in self.spec.launch.port

    def death(self) -> str:
        return f"serial port {self.spec.launch.port} disappeared (unplugged?)"

    def stop(self) -> None:
        pass  # the console closes the port


def make_launcher(spec: BoardSpec, image: Image, workdir: Path, firmware_py: Path) -> Launcher:
    kind = spec.launch.kind
    if kind == "qemu":
        return QemuLauncher(spec, image, workdir)
    if kind == "process":
        return ProcessLauncher(spec, workdir, firmware_py)
    return SerialLauncher(spec)
