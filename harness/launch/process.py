"""A host process (MicroPython's unix port) on a pty the harness owns, restarted when it exits, as
the guest init does on qemu_x86 — that restart is its soft reset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import termios
import threading
import time
import tty
from pathlib import Path

from harness import procs
from harness.config.boards import BoardSpec, ProcessLaunch
from harness.errors import InfrastructureError
from harness.io.transport import FdTransport, Transport
from harness.launch.base import LaunchContext, Launcher, _expand, _pacing
from harness.launch.registry import register
from harness.net.boardnet import host_net


@register("process")
class ProcessLauncher(Launcher):
    """A host process on a pty. The harness keeps the slave end open so the console survives
    restarts; a watcher thread restarts the process when it exits (bounded for crash loops)."""

    CRASH_LOOP = 5  # failing exits, each within a second of start, before we call the board dead
    can_hard_reset = True

    def __init__(self, spec: BoardSpec, ctx: LaunchContext) -> None:
        self.spec, self.workdir, self.firmware_py = spec, ctx.workdir, ctx.firmware_py
        self.proc: subprocess.Popen | None = None
        self.master = self.slave = -1
        self.stopping = False
        self.last_status: int | None = None
        self.quick_exits = 0
        self.spawn_error = ""
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def launch(self) -> ProcessLaunch:
        """The [launch] table, narrowed: the registry only hands process boards to this launcher."""
        launch = self.spec.launch
        assert isinstance(launch, ProcessLaunch), launch
        return launch

    def _argv(self) -> tuple[list[str], dict[str, str]]:
        venv_bin = str(Path(sys.executable).parent)
        values = {"firmware_py": str(self.firmware_py), "workdir": str(self.workdir), "venv_bin": venv_bin}
        argv = _expand(self.launch.command, values, self.spec)
        path = venv_bin + os.pathsep + os.environ.get("PATH", "")
        resolved = shutil.which(argv[0], path=path)
        if not resolved:
            raise InfrastructureError(
                f"{self.spec.path}: launch.command program {argv[0]!r} not found; install it (make setup does)"
            )
        env = os.environ | {"PATH": path} | {k: v.format(**values) for k, v in self.launch.env.items()}
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
        try:
            _uart_like(self.slave)
            self._spawn()
        except BaseException:  # e.g. the program is missing: leave no pty behind
            os.close(self.master)
            os.close(self.slave)
            self.master = self.slave = -1
            raise
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
                try:
                    self._spawn()
                except (OSError, subprocess.SubprocessError) as exc:  # leave it dead: death() says why
                    self.spawn_error = f"restarting it failed: {exc}"
                    return

    def alive(self) -> bool:
        return (self.proc is not None and self.proc.poll() is None) or (
            self._watcher is not None and self._watcher.is_alive() and not self.stopping
        )

    @property
    def exit_status(self) -> int | None:
        return self.last_status

    def death(self) -> str:
        if self.spawn_error:
            return f"process {self.launch.command[0]} exited (status {self.last_status}) and {self.spawn_error}"
        return f"process {self.launch.command[0]} kept exiting (last status {self.last_status})"

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


