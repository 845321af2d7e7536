"""qemu_x86 as a board: cold boot and snapshot restore, networking in both modes, the CAN link,
parallel instances, per-test captures, and nothing left behind when the harness is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import zlib

import can
import pytest

from harness.board import Board, sweep_stale_workdirs
from harness.config.boards import find_board
from harness.net.netns import namespaces_in_use
from tests.conftest import REPO, qemu_pids

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-system-x86_64"), reason="needs qemu-system-x86")


def boot(name: str, tmp_path, log=None) -> Board:
    board = Board(find_board(name, REPO / "targets"), log_dir=tmp_path, log=log or (lambda m: None))
    return board.start()


def echo_through(board: Board, payload: bytes) -> bytes:
    port = board.net.tcp_port(0)
    running = board.spawn(f"import hil_echo\nhil_echo.tcp_server({port})")
    running.wait_for("READY", timeout=30)
    conn = board.net.connect(port, timeout=30)
    received = bytearray()

    def reader() -> None:
        while chunk := conn.recv(65536):
            received.extend(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    conn.sendall(payload)
    conn.shutdown(1)  # half-close: the board sees EOF after the last byte, echoes, then closes
    thread.join(60)
    conn.close()
    assert f"ECHOED {len(payload)}" in running.finish(timeout=60)
    return bytes(received)


@pytest.fixture
def private_snapshots(tmp_path, monkeypatch):
    """Snapshots in a directory of this test's own (other runs may share the user's cache)."""
    monkeypatch.setenv("HIL_SNAPSHOTS", str(tmp_path / "snapshots"))
    return tmp_path / "snapshots"


def test_cold_boot_saves_a_snapshot_that_later_boards_restore(no_leftovers, tmp_path, private_snapshots):
    lines: list[str] = []
    first = Board(find_board("qemu_x86", REPO / "targets"), log_dir=tmp_path, log=lines.append)
    with first.start():
        assert first.facts.extra["started_from"] == "cold boot"
        assert any("saved snapshot" in line for line in lines)
        first.exec("marker = 1")
    with boot("qemu_x86", tmp_path) as second:
        assert second.facts.extra["started_from"] == "snapshot"
        with pytest.raises(NameError):  # restored at the prompt, before anyone ran code
            second.exec("marker")
        assert abs(second.eval("__import__('time').time()") - time.time()) < 5  # clock set on restore
        assert second.exec("print(6 * 7)") == "42\n"


def test_stale_snapshot_falls_back_to_cold_boot(no_leftovers, tmp_path, private_snapshots):
    with boot("qemu_x86", tmp_path):
        pass  # saves this configuration's snapshot
    (snap,) = private_snapshots.glob("qemu_x86-*.vmstate")
    snap.write_bytes(b"not a QEMU migration stream")
    lines: list[str] = []
    board = Board(find_board("qemu_x86", REPO / "targets"), log_dir=tmp_path, log=lines.append)
    with board.start():
        assert board.facts.extra["started_from"] == "cold boot"
        assert board.exec("print('up')") == "up\n"
    assert any("unusable" in line and "booting cold" in line for line in lines)
    assert snap.read_bytes()[:4] == b"QEVM"  # re-saved from the cold boot


@pytest.mark.parametrize("name", ["qemu_x86", "qemu_x86_tap"])
def test_tcp_echo_in_each_network_mode(no_leftovers, tmp_path, name):
    payload = os.urandom(256 * 1024)
    with boot(name, tmp_path) as board:
        assert board.net.mode == ("user" if name == "qemu_x86" else "tap")
        echoed = echo_through(board, payload)
    assert len(echoed) == len(payload) and zlib.crc32(echoed) == zlib.crc32(payload)


def test_board_reaches_a_host_server(no_leftovers, tmp_path):
    with boot("qemu_x86", tmp_path) as board:
        server = board.net.listen()
        port = server.getsockname()[1]
        running = board.spawn(
            "import socket\n"
            f"s = socket.socket()\ns.connect(socket.getaddrinfo({board.net.host_ip!r}, {port})[0][-1])\n"
            "s.send(b'hello host')\nprint('SENT', s.recv(16))\ns.close()"
        )
        server.settimeout(30)
        conn, _ = server.accept()
        assert conn.recv(100) == b"hello host"
        conn.sendall(b"hello board")
        conn.close()
        server.close()
        assert "SENT b'hello board'" in running.finish(timeout=30)


CAN_BOARD_SIDE = """
import socket, struct
s = socket.socket(29, 3, 1)  # AF_CAN, SOCK_RAW, CAN_RAW
ifindex = int(open('/sys/class/net/can0/ifindex').read())
s.bind(struct.pack('<HhiII', 29, 0, ifindex, 0, 0) + bytes(8))
print('READY')
frame = s.recv(16)
can_id, dlc = struct.unpack('<IB', frame[:5])
print('GOT %x %d %s' % (can_id, dlc, frame[8:8 + dlc].hex()))
s.send(struct.pack('<IB3x', 0x80000000 | 0x1ABCDE, 3) + b'\\x0a\\x0b\\x0c' + bytes(5))
s.close()
"""


def test_can_frame_each_way_through_slcan(no_leftovers, tmp_path):
    with boot("qemu_x86", tmp_path) as board:
        bus = board.can_link.bus()
        try:
            running = board.spawn(CAN_BOARD_SIDE)
            running.wait_for("READY", timeout=30)
            bus.send(can.Message(arbitration_id=0x123, data=b"\x01\x02\x03\x04", is_extended_id=False))
            reply = bus.recv(timeout=30)
        finally:
            bus.shutdown()
        out = running.finish(timeout=30)
    assert "GOT 123 4 01020304" in out
    assert reply is not None and reply.is_extended_id
    assert (reply.arbitration_id, bytes(reply.data)) == (0x1ABCDE, b"\x0a\x0b\x0c")


def test_two_instances_run_at_once_without_collisions(no_leftovers, tmp_path):
    a = boot("qemu_x86", tmp_path / "a")
    b = boot("qemu_x86_tap", tmp_path / "b")
    c = boot("qemu_x86", tmp_path / "c")
    try:
        assert set(a.net.forwards.values()).isdisjoint(c.net.forwards.values())
        assert a.can_link.port != c.can_link.port
        results: dict[str, bytes] = {}
        threads = [threading.Thread(target=lambda n=n, x=x: results.__setitem__(n, echo_through(x, n.encode() * 5000)))
                   for n, x in (("a", a), ("b", b), ("c", c))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert results == {n: n.encode() * 5000 for n in "abc"}
    finally:
        for board in (a, b, c):
            board.stop()


def test_per_test_capture_records_the_boards_traffic(no_leftovers, tmp_path):
    from scapy.all import TCP, rdpcap

    with boot("qemu_x86", tmp_path) as board:
        pcap = tmp_path / "t.pcap"
        ident = board.launcher.start_capture(pcap)
        echo_through(board, b"captured bytes")
        board.launcher.stop_capture(ident)
    packets = rdpcap(str(pcap))
    ports = {p[TCP].dport for p in packets if TCP in p} | {p[TCP].sport for p in packets if TCP in p}
    assert 7000 in ports
    assert any(b"captured bytes" in bytes(p[TCP].payload) for p in packets if TCP in p)


KILL_SCRIPT = """
import os, sys, time
sys.path.insert(0, {repo!r})
from harness.board import Board, sweep_stale_workdirs
from harness.config.boards import find_board
b = Board(find_board('qemu_x86_tap'), log=lambda m: None).start()
print(b.launcher.proc.pid, b.net.netns.inode, b.workdir, flush=True)
time.sleep(600)
"""


def test_killing_the_harness_leaves_no_qemu_tap_or_namespace(tmp_path):
    harness = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(repo=str(REPO))],
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = harness.stdout.readline()
        qemu_pid, netns_inode, workdir = line.split()
        assert int(qemu_pid) in qemu_pids(harness.pid) and netns_inode in namespaces_in_use()
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (netns_inode in namespaces_in_use() or int(qemu_pid) in qemu_pids()):
            time.sleep(0.1)
        assert int(qemu_pid) not in qemu_pids(), "QEMU outlived the harness"
        assert netns_inode not in namespaces_in_use(), "the board's network namespace (and its tap) outlived us"
        # A process killed -9 cannot remove its temp dir: the next harness sweeps it. On a shared
        # machine another run's harness may be that next one and have swept it already: fine. What
        # must hold is that sweeping leaves no dir of a dead harness (and, see the unit test of
        # sweep_stale_workdirs, never a live one's).
        sweep_stale_workdirs()
        assert not os.path.exists(workdir), "the killed harness's work dir was not swept"
    finally:
        if harness.poll() is None:
            os.killpg(harness.pid, signal.SIGKILL)
