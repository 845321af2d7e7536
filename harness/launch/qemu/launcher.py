"""QEMU with the console on serial0 (a pty the harness makes, or a TCP socket), plus what the target asks for."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from harness import procs
from harness.config.boards import BoardSpec, CanSpec, QemuLaunch, check_installed
from harness.errors import BootError, InfrastructureError, one_line
from harness.io.transport import SerialTransport, Transport
from harness.launch.base import LaunchContext, Launcher, _pacing
from harness.launch.qemu.cmdline import machine_args, machine_command
from harness.launch.qemu.hostpty import HostPty
from harness.launch.qemu.qmp import Qmp
from harness.launch.qemu.snapshot import Snapshot
from harness.launch.registry import register
from harness.net.boardnet import BoardNet, free_port, release, tap_net, user_net

if TYPE_CHECKING:
    from harness.net.canlink import SlcanLink


@register("qemu")
class QemuLauncher(Launcher):
    """QEMU with the console on serial0 (a pty the harness makes, see hostpty.py, or a TCP socket),
    plus what the target asks for:
    a network (user-mode or tap), a CAN link on serial1, a QMP socket, snapshot save/restore."""

    PORT_RETRIES = 3  # free ports are picked before QEMU binds them: retry the rare collision
    can_hard_reset = True
    can_wait_exit = True  # semihosting exit ends QEMU with the firmware's status

    def __init__(self, spec: BoardSpec, ctx: LaunchContext) -> None:
        self.spec, self.image, self.workdir, self.log = spec, ctx.image, ctx.workdir, ctx.log
        self.proc: subprocess.Popen | None = None
        self.ptys: dict[str, str] = {}  # "serial0" -> the console's /dev/pts/N (chardev "pty")
        self.console_pty: HostPty | None = None
        self._drainer: threading.Thread | None = None
        self.output: deque[bytes] = deque(maxlen=50)  # QEMU's own stdout/stderr lines
        self.net: BoardNet | None = None
        self.can: SlcanLink | None = None
        self.qmp: Qmp | None = None
        self.snapshot: Snapshot | None = None
        self.restored = False
        self.console_port = 0
        self._captures = 0
        self._capture_qemu: dict[str, subprocess.Popen | None] = {}

    @property
    def launch(self) -> QemuLaunch:
        """The [launch] table, narrowed: the registry only hands QEMU boards to this launcher."""
        launch = self.spec.launch
        assert isinstance(launch, QemuLaunch), launch
        return launch

    @property
    def ok_exit_codes(self) -> list[int]:
        return self.launch.ok_exit_codes

    # --- command line -----------------------------------------------------------------------
    def _kernel_params(self) -> list[str]:
        can = self.can.kernel_params() if self.can and self.spec.can.kernel_params else []
        net = self.net.kernel_params() if self.net and self.spec.network.on_kernel_cmdline else []
        return net + can

    def _args(self) -> list[str]:
        return machine_args(self.spec, self.image.files, self.workdir, self._kernel_params())

    def command(self, incoming: bool = False) -> list[str]:
        cmd = machine_command(self.spec, self.image.files, self.workdir, self._kernel_params())
        if self.spec.console.chardev == "pty":
            assert self.console_pty, "the console pty is opened before the command is built"
            cmd += self.console_pty.qemu_args()
        else:
            cmd += ["-serial", f"tcp:127.0.0.1:{self.console_port},server=on,wait=off,nodelay=on"]
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
        return [self.spec.name, self.image.digest, self.launch.machine, *self._args(),
                n.mode, n.device, self.spec.can.link, self.spec.console.chardev]  # fmt: skip

    # --- lifecycle --------------------------------------------------------------------------
    def _allocate(self) -> None:
        n = self.spec.network
        if n.mode == "user":
            self.net = user_net(n)
        elif n.mode == "tap" and self.net is None:  # a tap keeps its namespace across port retries
            self.net = tap_net(n, instance=f"inst-{self.spec.name}-{id(self):x}")
        if self.spec.can.link == "slcan_serial":
            from harness.net.canlink import SlcanLink  # python-can: imported by boards with a CAN link only

            bitrate = self.spec.can.bitrate or CanSpec.SLCAN_BITRATE
            self.can = SlcanLink.allocate(bitrate, self.net.netns if self.net else None)
        if self.spec.console.chardev == "socket":
            self.console_port = free_port()

    def start(self) -> Transport:
        check_installed(self.spec)  # a missing QEMU: one line naming the file, the key and the package
        self.boot_note, self.snapshot_fallback = "", False
        if self.spec.snapshot.enabled:
            self._allocate()
            self.snapshot = Snapshot.for_config(self.spec.name, self.launch.binary, self.snapshot_shape())
            if not self.snapshot.exists:
                self.boot_note = "no snapshot yet; cold boot (saves one at the prompt)"
            else:
                try:
                    return self._start(incoming=True)
                except InfrastructureError as exc:
                    # counted and reported (board facts -> JUnit boot_kind/boot_note), not just logged:
                    # a snapshot that keeps failing turns every start into a cold boot
                    self.snapshot_fallback = True
                    self.boot_note = f"snapshot restore failed: {one_line(exc, 300)}; cold boot"
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
        if self.spec.console.chardev == "pty":
            try:
                self.console_pty = HostPty.open()
            except OSError as exc:  # out of ptys (kernel.pty.max) or file descriptors
                raise InfrastructureError(f"{self.spec.name}: cannot open a pty for the console: {exc}") from None
            self.ptys = {"serial0": self.console_pty.path}
        try:
            self.proc = procs.spawn(
                self.command(incoming), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=self.console_pty.pass_fds if self.console_pty else (),
            )
        finally:
            if self.console_pty:
                self.console_pty.handed_over()
        self._drainer = threading.Thread(target=self._drain, daemon=True, name=f"qemu-{self.spec.name}")
        self._drainer.start()
        try:
            self.qmp = Qmp(self.workdir / "qmp.sock", timeout=15, alive=self.alive)
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
            if self._drainer:
                self._drainer.join(2)  # QEMU's last words (why it exited) are still being read
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
    def at_prompt(self) -> None:
        if self.wants_snapshot():
            self.save_snapshot()

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"QEMU still running after {timeout:g} s") from None

    def start_capture(self, path: Path) -> str | None:
        if not (self.net and self.spec.network.capture):
            return None
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

    # --- QEMU's own output ----------------------------------------------------------------
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
        if status is not None and status < 0:
            how = f"was killed by {signal_name(-status)}"
        else:
            how = f"exited with status {status}"
        return f"QEMU {how}; QEMU said: {self._out()}"

    def _kill(self) -> None:
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        if self.proc:
            procs.kill(self.proc)
        if self.console_pty:  # after QEMU: its master is gone, so /dev/pts/N is too
            self.console_pty.close()
            self.console_pty = None

    def stop(self) -> None:
        self._kill()
        if self.net:
            release(self.net)




def signal_name(number: int) -> str:
    """"signal 9 (SIGKILL)": the number, as QEMU's exit status gives it, and its name."""
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"
