"""UDP conformance: datagram boundaries, truncation, addresses, connected filtering, loss bounds."""

from __future__ import annotations

import socket
import time
import zlib

import pytest

pytestmark = pytest.mark.requires("net")


def test_datagram_boundaries_are_kept(peer):
    """One datagram at a time (the board acknowledges each), so only boundaries are tested here;
    queue depth is test_back_to_back_datagrams_are_all_queued's."""
    sizes = [1, 0, 100, 511, 513, 1000, 1472, 7]  # 0: an empty datagram is a datagram too
    port = peer.udp_port()
    role = peer.start(f"udp_receive({port}, {len(sizes)}, paced=True)", ready=True)
    host = peer.udp()
    payloads = [bytes((i + j) & 0xFF for j in range(n)) for i, n in enumerate(sizes)]
    for p in payloads:
        host.sendto(p, peer.address(port, "udp"))
        role.wait("GOT;")
    got = role.result()
    assert [(n, c) for n, c, _ in got] == [(len(p), zlib.crc32(p)) for p in payloads]


def test_back_to_back_datagrams_are_all_queued(peer):
    """Four datagrams sent back to back, before the board reads any: a socket must queue them
    (Linux queues up to SO_RCVBUF); a stack that keeps one unread datagram loses the rest."""
    payloads = [bytes([i]) * (100 + i) for i in range(4)]
    port = peer.udp_port()
    role = peer.start(f"udp_receive({port}, {len(payloads)}, hold=True, timeout=3)", ready=True)
    host = peer.udp()
    for p in payloads:
        host.sendto(p, peer.address(port, "udp"))
    role.signal("SENT", lambda: time.sleep(0.5))  # all four have reached the board by then
    got = role.result()
    assert [(n, c) for n, c, _ in got] == [(len(p), zlib.crc32(p)) for p in payloads]


def test_short_read_truncates_and_discards_the_rest(peer):
    port = peer.udp_port()
    role = peer.start(f"udp_truncate({port})", ready=True)
    host = peer.udp()
    long = bytes(range(256)) + bytes(44)
    host.sendto(long, peer.address(port, "udp"))
    role.wait("GOT;")
    host.sendto(b"next one", peer.address(port, "udp"))
    assert role.result() == (long[:16], b"next one")


def test_source_address_and_port_both_ways(peer):
    port = peer.udp_port()
    role = peer.start(f"udp_receive({port}, 2, echo=True, paced=True)", ready=True)
    host = peer.udp()
    for p in (b"one", b"two"):
        host.sendto(p, peer.address(port, "udp"))
        role.wait("GOT;")
    got = role.result()
    host_port = host.getsockname()[1]
    assert [addr for _, _, addr in got] == [(peer.host_seen_from_board, host_port)] * 2
    # the board's replies come from the board's port (QEMU user mode: its forwarded host port)
    replies = [host.recvfrom(100) for _ in range(2)]
    assert replies == [(b"one", peer.address(port, "udp")), (b"two", peer.address(port, "udp"))]


def test_connected_socket_receives_only_from_its_peer(peer, errno):
    port = peer.udp_port()
    friend, stranger = peer.udp(), peer.udp()
    role = peer.start(f"udp_connected({port}, {peer.host_ip!r}, {friend.getsockname()[1]}, 2)", ready=True)
    dst = peer.address(port, "udp")
    for mine, theirs in ((b"first", b"not for you"), (b"second", b"still not")):
        stranger.sendto(theirs, dst)
        friend.sendto(mine, dst)
        role.wait("GOT;")  # one of the friend's at a time: queue depth is another test's
    got, rest = role.result()
    assert got == [b"first", b"second"]
    assert rest == ("err", errno.EAGAIN)  # the stranger's datagrams were never queued


def test_msg_peek_returns_the_same_datagram_then_reads_it(peer):
    port = peer.udp_port()
    role = peer.start(f"udp_peek({port})", ready=True)
    host = peer.udp()
    host.sendto(b"peek me", peer.address(port, "udp"))
    host.sendto(b"then me", peer.address(port, "udp"))
    assert role.result() == (b"peek me", b"peek me", b"peek me", b"then me")


def test_nonblocking_recv_and_msg_dontwait_raise_eagain(peer, errno):
    assert peer.start(f"udp_nonblocking({peer.udp_port()})").result() == (
        ("err", errno.EAGAIN),
        ("err", errno.EAGAIN),
    )


COUNT = 200


def test_burst_to_board_loses_little_and_never_reorders(peer):
    port = peer.udp_port()
    role = peer.start(f"udp_burst_in({port}, {COUNT})", ready=True)
    host = peer.udp()
    for i in range(COUNT):
        host.sendto(bytes([i >> 8, i & 0xFF]) + bytes(62), peer.address(port, "udp"))
    seqs = role.result()
    assert seqs == sorted(set(seqs))  # no duplicates, no reordering
    assert all(0 <= s < COUNT for s in seqs)
    assert len(seqs) >= COUNT * 3 // 4  # at most 25 % lost (the catalogue's bound)


def test_burst_from_board_loses_little_and_never_reorders(peer):
    host = peer.udp()
    host.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sent = peer.start(f"udp_burst_out({peer.host_ip!r}, {host.getsockname()[1]}, {COUNT})").result()
    host.settimeout(1.5)
    seqs = []
    try:
        while len(seqs) < COUNT:
            d, _ = host.recvfrom(2048)
            assert len(d) == 64
            seqs.append((d[0] << 8) | d[1])
    except TimeoutError:
        pass
    assert sent == COUNT
    assert seqs == sorted(set(seqs))
    assert len(seqs) >= COUNT * 3 // 4
