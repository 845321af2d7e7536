"""Qmp against a fake QMP server on a unix socket (no QEMU): greeting and capability negotiation,
commands and their replies, QEMU's errors and disconnects as one-line InfrastructureErrors naming
the command, and every wait bounded."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import InfrastructureError
from harness.launch.qemu.qmp import Qmp

GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}, "package": ""}, "capabilities": []}}
Handler = Callable[[str, dict], "dict | None"]  # (command, arguments) -> reply; None: never answer; {}: hang up


class FakeQmpServer:
    """One QMP monitor: greets, answers qmp_capabilities, then hands every command to ``handler``."""

    def __init__(self, path: Path, handler: Handler, greet: bool = True, delay: float = 0.0) -> None:
        self.path, self.handler, self.greet, self.delay = path, handler, greet, delay
        self.received: list[tuple[str, dict]] = []
        self.stop = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        time.sleep(self.delay)  # QEMU creates its socket only once initialised
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(self.path))
        server.listen()
        server.settimeout(0.05)
        try:
            while not self.stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                self.conns.append(conn)
                self._talk(conn)
        finally:
            server.close()

    def _talk(self, conn: socket.socket) -> None:
        if not self.greet:
            self.stop.wait()  # accepted, but never a word (a QEMU stuck before its main loop)
            return
        conn.sendall(json.dumps(GREETING).encode() + b"\r\n")
        for msg in self._messages(conn):
            name, args = msg["execute"], msg.get("arguments", {})
            self.received.append((name, args))
            reply = {"return": {}} if name == "qmp_capabilities" else self.handler(name, args)
            if reply is None:
                continue
            if not reply:
                conn.close()
                return
            if "id" in msg:
                reply["id"] = msg["id"]
            conn.sendall(json.dumps(reply).encode() + b"\r\n")

    @staticmethod
    def _messages(conn: socket.socket):
        """JSON objects as the client sends them: back to back, not necessarily one per line."""
        decoder, buffer = json.JSONDecoder(), ""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buffer += data.decode()
            while buffer.strip():
                try:
                    msg, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break  # incomplete: wait for more
                buffer = buffer.lstrip()[end:]
                yield msg

    def close(self) -> None:
        self.stop.set()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self.thread.join(2)


@pytest.fixture
def serve(tmp_path):
    servers: list[FakeQmpServer] = []

    def start(handler: Handler, **kw) -> tuple[FakeQmpServer, Path]:
        path = tmp_path / f"qmp{len(servers)}.sock"
        servers.append(FakeQmpServer(path, handler, **kw))
        return servers[-1], path

    yield start
    for server in servers:
        server.close()


def test_waits_for_the_socket_negotiates_and_runs_commands(serve):
    def handler(name, args):
        return {"return": {"status": "running", "echo": args}}

    server, path = serve(handler, delay=0.2)  # the socket appears a little after QEMU starts
    qmp = Qmp(path, timeout=3)
    try:
        assert qmp.cmd("query-status") == {"status": "running", "echo": {}}
        assert qmp.cmd("migrate", uri="exec:cat > /tmp/x")["echo"] == {"uri": "exec:cat > /tmp/x"}
    finally:
        qmp.close()
    assert server.received == [("qmp_capabilities", {}), ("query-status", {}),
                               ("migrate", {"uri": "exec:cat > /tmp/x"})]  # fmt: skip


def test_qemu_error_names_the_command(serve):
    _, path = serve(lambda name, args: {"error": {"class": "GenericError", "desc": "object 'hilcap1' not found"}})
    qmp = Qmp(path, timeout=3)
    try:
        with pytest.raises(InfrastructureError) as info:
            qmp.cmd("object-del", id="hilcap1")
        assert str(info.value) == "QMP object-del failed: object 'hilcap1' not found"
    finally:
        qmp.close()


def test_disconnect_mid_command_is_infrastructure_error(serve):
    _, path = serve(lambda name, args: {})  # hangs up instead of answering
    qmp = Qmp(path, timeout=3)
    try:
        with pytest.raises(InfrastructureError, match=r"^QMP migrate-incoming failed: QEMU disconnected \("):
            qmp.cmd("migrate-incoming", uri="exec:cat /x")
    finally:
        qmp.close()


def test_unanswered_command_is_bounded_by_the_timeout(serve):
    _, path = serve(lambda name, args: None)
    qmp = Qmp(path, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(InfrastructureError, match=r"^QMP query-status failed"):
            qmp.cmd("query-status")
    finally:
        qmp.close()
    assert time.monotonic() - started < 2


def test_no_socket_is_bounded_and_names_the_path(tmp_path):
    path = tmp_path / "never.sock"
    started = time.monotonic()
    with pytest.raises(InfrastructureError) as info:
        Qmp(path, timeout=0.3)
    assert time.monotonic() - started < 2
    assert str(info.value).startswith(f"QMP socket {path} did not answer within 0.3 s: ")



def test_qemu_that_exited_is_not_waited_for(tmp_path):
    """QEMU exiting at start (bad arguments, a forwarded port in use) never creates its socket: the
    launcher's alive() ends the wait at once instead of after the whole timeout."""
    calls = []

    def alive() -> bool:
        calls.append(1)
        return len(calls) < 3  # QEMU dies a moment after it was spawned

    started = time.monotonic()
    with pytest.raises(InfrastructureError, match="did not answer"):
        Qmp(tmp_path / "never.sock", timeout=60, alive=alive)
    assert time.monotonic() - started < 10  # not the 60 s timeout
    assert len(calls) >= 3

def test_wait_migration_until_completed_or_failed(serve):
    statuses = iter(["setup", "active", "active", "completed", "active", "failed"])
    _, path = serve(lambda name, args: {"return": {"status": next(statuses)}})
    qmp = Qmp(path, timeout=3)
    try:
        qmp.wait_migration(timeout=3)  # setup, active, active, completed
        with pytest.raises(InfrastructureError, match=r"^QEMU migration failed$"):
            qmp.wait_migration(timeout=3)
    finally:
        qmp.close()


def test_migration_stuck_is_bounded(serve):
    _, path = serve(lambda name, args: {"return": {"status": "active"}})
    qmp = Qmp(path, timeout=3)
    try:
        with pytest.raises(InfrastructureError, match=r"^QEMU migration still 'active' after 0.2 s$"):
            qmp.wait_migration(timeout=0.2)
    finally:
        qmp.close()


def test_monitor_that_never_greets_is_bounded(serve):
    server, path = serve(lambda name, args: None, greet=False)
    outcome: list[BaseException | str] = []

    def connect() -> None:
        try:
            Qmp(path, timeout=0.3).close()
            outcome.append("connected")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(1.0)
    hung = thread.is_alive()
    server.close()  # hang up: a hung Qmp now fails and its thread ends
    thread.join(5)
    assert not hung, "Qmp(path, timeout=0.3) still waiting for the greeting after 1 s"
    assert isinstance(outcome[0], InfrastructureError)
