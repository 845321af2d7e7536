"""A host process (MicroPython's unix port) on a pty, restarted when it exits, as the guest init
does on qemu_x86 — that restart is its soft reset.

Each process has a pty of its own; the board's console follows the running one. With ``[launch]
spare = true`` the next process is started while the current one runs (a warm spare, waiting at
its prompt on its own pty), so a soft reset costs a console switch instead of a process start:
the venv's ``micropython`` is CPython loading the unix port, 30-150 ms a start. With ``[launch]
entry = "MODULE:FUNC"`` (a Python entry point: the ``micropython`` command's own) each process is
forked from a server that imported it once (harness/launch/forkserver.py), about a millisecond.
Every test still gets a fresh process: nothing leaks from one to the next."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import termios
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from harness import procs
from harness.config.boards import BoardSpec, ProcessLaunch
from harness.errors import BoardDied, InfrastructureError
from harness.io.transport import FdTransport, Transport
from harness.launch.base import LaunchContext, Launcher, _expand, _pacing
from harness.launch.forked import ForkedProcess, ForkServer
from harness.launch.registry import register
from harness.net.boardnet import host_net


@dataclass
class _Instance:
    """One run of the program: its process and the master end of its pty (the harness holds no
    slave end, so the master reads EIO once the process is gone: that is the cue to switch)."""

    proc: subprocess.Popen | ForkedProcess
    master: int
    since: float  # when it got the console (a spare: when it was promoted)


@register("process")
class ProcessLauncher(Launcher):
    """A host process on a pty; a watcher thread starts the next one when it exits (bounded for
    crash loops), from the warm spare when there is one."""

    CRASH_LOOP = 5  # failing exits, each within a second of getting the console, before we call the board dead
    can_hard_reset = True

    def __init__(self, spec: BoardSpec, ctx: LaunchContext) -> None:
        self.spec, self.workdir, self.firmware_py = spec, ctx.workdir, ctx.firmware_py
        self.current: _Instance | None = None
        self.spare: _Instance | None = None
        self.stopping = False
        self.last_status: int | None = None
        self.quick_exits = 0
        self.spawn_error = ""
        self._watcher: threading.Thread | None = None
        self._changed = threading.Condition()  # a new current instance, or the board gave up
        self.console: _ProcessConsole | None = None
        self.forker: ForkServer | None = None

    @property
    def launch(self) -> ProcessLaunch:
        """The [launch] table, narrowed: the registry only hands process boards to this launcher."""
        launch = self.spec.launch
        assert isinstance(launch, ProcessLaunch), launch
        return launch

    @property
    def proc(self) -> subprocess.Popen | ForkedProcess | None:
        return self.current.proc if self.current else None

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

    def _spawn(self) -> _Instance:
        argv, env = self._argv()
        master, slave = os.openpty()
        try:
            _uart_like(slave)
            if self.launch.entry:  # forked from a server that imported the entry point once
                if self.forker is None:
                    self.forker = ForkServer(self.launch.entry, env, self.workdir)
                proc = self.forker.spawn(argv, cwd=self.workdir, env=env, tty=slave)
            else:
                proc = procs.spawn(argv, controlling_tty=True, stdin=slave, stdout=slave, stderr=slave,
                                   cwd=self.workdir, env=env)  # fmt: skip
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return _Instance(proc, master, time.monotonic())

    def start(self) -> Transport:
        if self.spec.capabilities.net:
            self.net = host_net()
        self.current = self._spawn()  # a missing program is an error here, with nothing left behind
        self._watcher = threading.Thread(target=self._watch, daemon=True, name=f"proc-{self.spec.name}")
        self._watcher.start()
        self.console = _ProcessConsole(self, self.current.master, self._name(self.current), **_pacing(self.spec))
        return self.console

    def _name(self, instance: _Instance) -> str:
        return f"{self.spec.name} (pid {instance.proc.pid})"

    def _watch(self) -> None:
        while not self.stopping:
            instance = self.current
            assert instance is not None
            if self.launch.spare and self.spare is None:
                self._start_spare()
            status = instance.proc.wait()
            procs.forget(instance.proc)
            self.last_status = status
            if self.stopping:
                return
            # A clean exit (0) is Ctrl-D, the soft reset; quick failing exits in a row are a crash loop.
            crashed = status != 0 and time.monotonic() - instance.since < 1.0
            self.quick_exits = self.quick_exits + 1 if crashed else 0
            if self.quick_exits >= self.CRASH_LOOP:
                self._give_up()
                return  # leave it dead so alive() says so
            if crashed:
                time.sleep(0.1)
            with self._changed:
                self._replace(instance)

    def _replace(self, gone: _Instance) -> None:
        """The next process takes over from ``gone`` (the spare, else a cold start), unless that
        happened already (the console saw the pty close before we saw the exit). Call with
        ``_changed`` held: stop() must never race a respawn, it would leak the new process."""
        if self.stopping or self.current is not gone or self.spawn_error:
            return
        successor, self.spare = self.spare, None
        if successor is not None and successor.proc.poll() is not None:  # the spare died waiting
            self._retire(successor)
            successor = None
        try:
            successor = successor or self._spawn()
        except (OSError, subprocess.SubprocessError, InfrastructureError) as exc:  # dead: death() says why
            self.spawn_error = f"restarting it failed: {exc}"
            self._changed.notify_all()
            return
        successor.since = time.monotonic()
        self.current = successor
        self._changed.notify_all()

    def _start_spare(self) -> None:
        with self._changed:
            if self.stopping:
                return
            try:
                self.spare = self._spawn()
            except (OSError, subprocess.SubprocessError, InfrastructureError):  # no spare: the next reset starts one
                self.spare = None

    def _give_up(self) -> None:
        with self._changed:
            if self.spare is not None:
                self._retire(self.spare)
                self.spare = None
            self._changed.notify_all()

    @staticmethod
    def _retire(instance: _Instance) -> None:
        procs.kill(instance.proc, grace=0.5)
        os.close(instance.master)

    def successor(self, master: int, timeout: float) -> tuple[int, str] | None:
        """The console's next pty once the process on ``master`` has gone: (master, name), or None
        when no process follows (stopped, crash loop, restart failed) within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            if self.current is not None and self.current.master == master and self.quick_exits < self.CRASH_LOOP:
                self._replace(self.current)  # its pty is closed: it is gone, whatever waitpid says yet
            while self.current is not None and self.current.master == master:
                if self.stopping or self.gave_up:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return (self.current.master, self._name(self.current)) if self.current else None

    @property
    def gave_up(self) -> bool:
        """No process will follow: a crash loop, or the restart failed."""
        return bool(self.spawn_error) or self.quick_exits >= self.CRASH_LOOP

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
        with self._changed:
            self.stopping = True
            self._changed.notify_all()
        if self.current:
            procs.kill(self.current.proc, grace=1.0)  # its master is the console's: the board closes it
        if self._watcher:
            self._watcher.join(5)
        with self._changed:
            if self.spare is not None:
                self._retire(self.spare)
                self.spare = None
            current = self.current
            if current is not None and self.console is not None and self.console.owned != current.master:
                os.close(current.master)  # started after the console last read: never adopted by it
                current.master = -1
        if self.forker is not None:
            self.forker.close()


class _ProcessConsole(FdTransport):
    """The console of a process board across its restarts: when the process behind the pty has
    gone (EIO, after what it last printed has been read), carry on with its successor's pty."""

    def __init__(self, launcher: ProcessLauncher, fd: int, name: str, **pacing) -> None:
        super().__init__(fd, name, **pacing)
        self.launcher = launcher
        self.owned = fd  # the master this console closes (it stays the owner's after close())

    def _switch(self, timeout: float, died: BoardDied) -> None:
        nxt = self.launcher.successor(self.fd, max(timeout, 1.0))
        if nxt is None:  # no process follows: say why (a crash loop's last status, ...)
            if self.launcher.gave_up:
                raise BoardDied(self.launcher.death()) from None
            raise died
        old, (self.fd, self.name) = self.fd, nxt
        self.owned = self.fd
        os.close(old)

    def read(self, size: int, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return super().read(size, left)
            except BoardDied as died:
                if self.fd < 0:
                    raise
                self._switch(5.0 if left is None else left, died)  # then read on, from the new process

    def _write(self, data: bytes) -> None:
        try:
            super()._write(data)
        except BoardDied as died:  # written to a process that had just exited: the next one gets it
            if self.fd < 0:
                raise
            self._switch(5.0, died)
            super()._write(data)


def _uart_like(fd: int) -> None:
    """Raw like a UART (no echo, no line editing, no \\n -> \\r\\n) but with ISIG kept, so
    Ctrl-C interrupts running code the way MicroPython's UART REPL does."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] |= termios.ISIG
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
