"""Transports over a pty this test owns: FdTransport on the master end (what a host process's
console is), SerialTransport (pyserial) on the slave path (what a QEMU pty or /dev/ttyACM0 is)."""

from __future__ import annotations

import os
import time
import tty

import pytest

from harness.errors import BoardDied, InfrastructureError
from harness.io.transport import FdTransport, SerialTransport


@pytest.fixture
def pty():
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no \n -> \r\n: bytes pass as they are
    fds = {"master": master, "slave": slave}
    yield fds
    for fd in fds.values():
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def read_exactly(fd: int, n: int, timeout: float = 2.0) -> bytes:
    out, deadline = b"", time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += os.read(fd, n - len(out))
    return out


def until_quiet(transport, quiet: float = 0.05) -> bytes:
    out = b""
    while chunk := transport.read(4096, quiet):
        out += chunk
    return out


def test_fd_transport_reads_and_writes(pty):
    transport = FdTransport(pty["master"], "proc (pid 1)")
    pty["master"] = -1  # the transport closes it
    assert transport.read(10, 0.05) == b""  # nothing yet: b"" after the timeout, no exception
    os.write(pty["slave"], b"hello\r\n>>> ")
    assert transport.read(5, 1.0) == b"hello"  # at most size bytes
    assert until_quiet(transport) == b"\r\n>>> "
    transport.write(b"print(1)\r")
    assert read_exactly(pty["slave"], 9) == b"print(1)\r"
    transport.close()
    assert transport.fd == -1
    with pytest.raises(BoardDied, match=r"console proc \(pid 1\) is closed"):
        transport.read(1, 0)


def test_paced_writes_are_split_into_chunks_with_gaps(pty, monkeypatch):
    transport = FdTransport(pty["master"], "paced", write_chunk=4, write_gap_ms=30)
    pty["master"] = -1
    pieces: list[bytes] = []
    real = transport._write
    monkeypatch.setattr(transport, "_write", lambda data: (pieces.append(bytes(data)), real(data)))
    started = time.monotonic()
    transport.write(b"0123456789")
    elapsed = time.monotonic() - started
    assert pieces == [b"0123", b"4567", b"89"]
    assert elapsed >= 0.055  # a gap between each of the 3 chunks, none waited out after the last
    transport.write(b"ab")  # at once: the last chunk's gap is waited out before this one
    assert time.monotonic() - started >= 0.085
    assert pieces[-1] == b"ab"
    assert read_exactly(pty["slave"], 12) == b"0123456789ab"
    transport.close()


def test_unpaced_write_is_one_piece(pty, monkeypatch):
    transport = FdTransport(pty["master"], "fast")
    pty["master"] = -1
    pieces: list[bytes] = []
    monkeypatch.setattr(transport, "_write", pieces.append)
    transport.write(b"x" * 100)
    assert pieces == [b"x" * 100]
    transport.close()


def test_closed_peer_is_board_died(pty):
    transport = FdTransport(pty["master"], "gone")
    pty["master"] = -1
    os.close(pty["slave"])
    pty["slave"] = -1
    with pytest.raises(BoardDied, match=r"^console gone went away"):
        transport.read(10, 1.0)
    transport.close()


def test_serial_transport_on_the_pty_path(pty):
    path = os.ttyname(pty["slave"])
    transport = SerialTransport(path)
    try:
        assert transport.name == path
        os.write(pty["master"], b"banner")
        assert transport.read(100, 1.0) + until_quiet(transport) == b"banner"
        assert transport.read(100, 0.05) == b""
        transport.write(b"\x02")
        assert read_exactly(pty["master"], 1) == b"\x02"
    finally:
        transport.close()


def test_missing_serial_device_is_one_line_with_the_fix(tmp_path):
    missing = tmp_path / "ttyACM9"
    with pytest.raises(InfrastructureError) as info:
        SerialTransport(str(missing))
    assert str(info.value) == (f"serial port {missing} does not exist: check the cable or set launch.port "
                               "in the target file")  # fmt: skip


def test_port_opened_twice_exclusively_is_in_use(pty):
    path = os.ttyname(pty["slave"])
    first = SerialTransport(path)
    try:
        with pytest.raises(InfrastructureError) as info:
            SerialTransport(path)
        assert str(info.value) == f"serial port {path} is in use by another process; close it first"
    finally:
        first.close()
    SerialTransport(path).close()  # free again once the holder closed it


def test_serial_transport_reads_and_writes_a_socket_url_directly():
    """socket:// (QEMU's TCP chardev) goes through the direct path: select + recv, no pyserial polling."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    transport = SerialTransport(f"socket://127.0.0.1:{port}")
    peer, _ = server.accept()
    try:
        assert transport._direct is not None
        assert transport.read(100, 0.05) == b""
        peer.sendall(b"raw REPL; CTRL-B to exit\r\n>")
        got = b""
        while len(got) < 27:
            got += transport.read(100, 1.0)
        assert got == b"raw REPL; CTRL-B to exit\r\n>"
        transport.write(b"x = 1\x04")
        assert peer.recv(100) == b"x = 1\x04"
        peer.close()  # QEMU went away
        with pytest.raises(BoardDied, match=r"went away"):
            transport.read(100, 1.0)
    finally:
        transport.close()
        server.close()


def test_serial_transport_on_a_pty_whose_other_end_closed_is_board_died(pty):
    transport = SerialTransport(os.ttyname(pty["slave"]))
    try:
        os.close(pty["master"])  # QEMU exited: its end of the pty is gone
        pty["master"] = -1
        with pytest.raises(BoardDied, match=r"went away"):
            transport.read(100, 1.0)
    finally:
        transport.close()
