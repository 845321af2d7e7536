"""Packet level on the tap link: scapy-made segments to the board and its exact reaction, checked
in the capture (packetdrill's idea). Runs on boards with a real L2 link (capability tap:
qemu_x86_tap); the peer impersonates a spare address of the segment (see rawtcp.py). The raw
capture of each test, both directions, is kept as raw.pcap in the test's tmp_path."""

from __future__ import annotations

import itertools
import time

import pytest
from peerlib import pattern

pytestmark = [pytest.mark.requires("net"), pytest.mark.requires("tap")]

_ports = itertools.count(41000)


@pytest.fixture
def raw(dut, tmp_path):
    from rawtcp import RawLink

    link = RawLink(dut.net)
    yield link
    link.close()
    link.save(tmp_path / "raw.pcap")


@pytest.fixture
def conn_to(raw):
    from rawtcp import RawConn

    def make(port: int) -> RawConn:
        return RawConn(raw, port, next(_ports))

    return make


def open_conn(peer, conn_to, call: str, port_index: int = 0, **handshake):
    """Start a board role that accepts on a port, connect to it by hand, wait until accepted."""
    port = peer.port(port_index)
    role = peer.start(call.format(port=port), ready=True)
    conn = conn_to(port)
    synack = conn.handshake(**handshake)
    role.wait("ACCEPTED;")
    return role, conn, synack


def test_syn_to_closed_port_is_answered_with_rst_ack(conn_to, raw):
    from rawtcp import TCP, flags

    conn = conn_to(7006)  # nobody listens there
    mark = raw.mark()
    conn.send("S", seq=conn.isn, options=[("MSS", 1460)])
    rst = conn.expect(lambda p: "R" in flags(p), mark)
    assert (flags(rst), rst[TCP].seq, rst[TCP].ack) == ("RA", 0, conn.isn + 1)


def test_out_of_order_segments_are_reassembled_and_dup_acked(peer, conn_to, raw):
    role, conn, _ = open_conn(peer, conn_to, "accept_read({port}, 8)")
    base = conn.snd_nxt
    mark = raw.mark()
    conn.send_data(b"BBBB", seq=base + 4)  # the second half first: a hole at base
    conn.expect_ack(base, mark)  # immediate duplicate ACK: still waiting for byte `base`
    mark = raw.mark()
    conn.send_data(b"AAAA", seq=base)  # fill the hole
    conn.expect_ack(base + 8, mark)  # both segments acknowledged at once
    assert role.result() == b"AAAABBBB"


def test_duplicate_and_overlapping_segments_are_delivered_once(peer, conn_to, raw):
    role, conn, _ = open_conn(peer, conn_to, "accept_read({port}, 8)")
    base = conn.snd_nxt
    mark = raw.mark()
    conn.send_data(b"AAAA")
    conn.expect_ack(base + 4, mark)
    mark = raw.mark()
    conn.send_data(b"AAAA", seq=base)  # an exact duplicate (a spurious retransmission)
    conn.expect_ack(base + 4, mark)  # answered with an immediate ACK, not delivered again
    conn.send_data(b"AABB", seq=base + 2)  # overlaps the delivered bytes by two
    conn.send_data(b"CC")
    assert role.result() == b"AAAABBCC"


def test_zero_window_holds_data_back_and_probes(peer, conn_to, raw):
    from rawtcp import TCP, payload

    mark = raw.mark()
    role, conn, _ = open_conn(peer, conn_to, "accept_send({port}, 3000)", final_window=0)
    # the board has 3000 bytes queued but our window is 0: it may only probe (no data, seq
    # snd_una - 1), never send payload
    probe = conn.expect(lambda p: not payload(p) and p[TCP].seq == conn.irs, mark, timeout=20)
    assert payload(probe) == b""
    assert conn.link.frames(mark, lambda p: conn.from_board(p) and payload(p)) == []
    opened = raw.mark()
    conn.send("A", window=1000)  # open the window a little
    first = conn.expect(lambda p: bool(payload(p)), opened)
    assert first[TCP].seq == conn.irs + 1  # the data starts where the probes left off...
    assert 0 < len(payload(first)) <= 1000  # ...and stays inside the window (Linux may send less)
    data, _ = conn.receive(3000, window=4096, since=opened)
    assert data == pattern(3000)
    conn.send_data(b"ok")
    assert role.result() == (3000, b"ok")


def test_board_segments_respect_the_advertised_mss(peer, conn_to):
    from rawtcp import payload

    role, conn, synack = open_conn(peer, conn_to, "accept_send({port}, 5000)", mss=536)
    data, segments = conn.receive(5000)
    assert data == pattern(5000)
    # on the wire, a GSO frame is cut into gso_size segments (see rawtcp.py)
    wire = [min(len(payload(s)), s.gso_size or len(payload(s))) for s in segments]
    assert max(wire) == 536  # full-sized segments, never larger than we allowed
    assert all(s.gso_size in (0, 536) for s in segments)
    conn.send_data(b"ok")
    assert role.result() == (5000, b"ok")
    assert dict(synack["TCP"].options)["MSS"] == 1460  # the board's own MSS for a 1500-byte MTU


def test_rst_with_the_exact_sequence_number_resets(peer, conn_to, raw, errno):
    from rawtcp import flags

    role, conn, _ = open_conn(peer, conn_to, "accept_recv({port})")
    mark = raw.mark()
    conn.send("R", seq=conn.snd_nxt)
    assert role.result() == ("err", errno.ECONNRESET)
    assert conn.link.frames(mark, lambda p: conn.from_board(p) and "R" in flags(p)) == []  # never RST a RST


def test_rst_in_window_but_not_exact_gets_a_challenge_ack_and_out_of_window_is_ignored(peer, conn_to, raw):
    from rawtcp import TCP, flags

    role, conn, _ = open_conn(peer, conn_to, "accept_recv({port})")
    mark = raw.mark()
    conn.send("R", seq=conn.snd_nxt + 100)  # inside the receive window, not rcv_nxt (RFC 5961 3.2)
    challenge = conn.expect(lambda p: "A" in flags(p), mark)
    assert (flags(challenge), challenge[TCP].seq, challenge[TCP].ack) == ("A", conn.irs + 1, conn.snd_nxt)
    mark = raw.mark()
    conn.send("R", seq=conn.snd_nxt + (1 << 30))  # far outside the window: silently dropped
    time.sleep(0.5)  # room for a wrong reaction to show up in the capture
    assert conn.link.frames(mark, conn.from_board) == []
    conn.send_data(b"live")  # the connection survived both
    assert role.result() == ("ok", b"live")
