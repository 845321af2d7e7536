"""The harness's side of the fork server (harness/launch/forkserver.py): start it, ask it for a
process on a pty, and hold each forked child as a Popen-like object (pid, poll, wait), so the
process launcher, procs.kill and the console treat it like any process they started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from harness import procs
from harness.errors import InfrastructureError

SERVER = Path(__file__).with_name("forkserver.py")
START_TIMEOUT = 30.0


class ForkedProcess:
    """A child of the fork server, in a session (and process group) of its own."""

    def __init__(self, pid: int, argv: list[str]) -> None:
        self.pid, self.args = pid, argv
        self.returncode: int | None = None
        self._done = threading.Event()

    def _ended(self, status: int) -> None:
        self.returncode = status
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)


class ForkServer:
    """One server per board: it imports ``entry``'s module once; ``spawn`` forks a child."""

    def __init__(self, entry: str, env: dict[str, str], cwd: Path) -> None:
        self.entry = entry
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.server = procs.spawn([sys.executable, str(SERVER), entry, str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        finally:
            theirs.close()
        self.sock = ours
        self.children: dict[int, ForkedProcess] = {}
        self._replies: list[int] = []
        self._early: dict[int, int] = {}  # exits read before spawn() registered the child
        self._lock = threading.Condition()
        self.sock.settimeout(START_TIMEOUT)
        try:
            ready = self.sock.recv(4096)
        except TimeoutError:
            ready = None
        if not ready:
            problem = self._server_problem() if ready is not None else f"no answer within {START_TIMEOUT:g} s"
            self.close()
            raise InfrastructureError(f"the fork server for {entry} did not start: {problem}")
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"forkserver-{entry}")
        self._reader.start()

    def _server_problem(self) -> str:
        """Why a server that hung up at start did: the last line it printed (an import error, ...)."""
        try:
            self.server.wait(5.0)
        except subprocess.TimeoutExpired:
            return "it closed its socket without exiting"
        err = self.server.stderr.read().decode(errors="replace").strip().splitlines() if self.server.stderr else []
        return err[-1] if err else f"it exited with status {self.server.returncode}"

    def _read(self) -> None:
        while True:
            try:
                packet = self.sock.recv(4096)
            except OSError:
                packet = b""
            if not packet:  # the server is gone: its children were killed with it (PDEATHSIG)
                with self._lock:
                    for child in self.children.values():
                        if child.returncode is None:
                            child._ended(-signal.SIGKILL)
                    self._lock.notify_all()
                return
            message = json.loads(packet)
            with self._lock:
                if "pid" in message:
                    self._replies.append(message["pid"])
                    self._lock.notify_all()
                elif (child := self.children.pop(message["exit"], None)) is not None:
                    child._ended(message["status"])
                else:
                    self._early[message["exit"]] = message["status"]

    def spawn(self, argv: list[str], *, cwd: Path, env: dict[str, str], tty: int) -> ForkedProcess:
        """A child running the entry point with ``argv``, ``tty`` (a pty slave) as its terminal."""
        request = json.dumps({"argv": argv, "cwd": str(cwd), "env": env}).encode()
        with self._lock:
            try:
                socket.send_fds(self.sock, [request], [tty])
            except OSError as exc:
                raise OSError(f"the fork server for {self.entry} is gone: {exc}") from None
            if not self._lock.wait_for(lambda: self._replies or not self._reader.is_alive(), START_TIMEOUT):
                raise OSError(f"the fork server for {self.entry} did not answer within {START_TIMEOUT:g} s")
            if not self._replies:
                raise OSError(f"the fork server for {self.entry} is gone")
            child = ForkedProcess(self._replies.pop(0), argv)
            if child.pid in self._early:
                child._ended(self._early.pop(child.pid))
            else:
                self.children[child.pid] = child
            return child

    def close(self) -> None:
        procs.kill(self.server, grace=1.0)
        self.sock.close()
