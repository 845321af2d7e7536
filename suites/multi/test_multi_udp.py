"""UDP between two boards: datagrams arrive whole (never merged, split or cut) up to the largest
that fits an Ethernet frame and beyond it (IP fragmentation and reassembly by the other stack),
echoed back whole, with the sender's address; a burst arrives in order."""

from __future__ import annotations

import pytest
from multilib import crc, datagram

pytestmark = [pytest.mark.roles("server", "client"), pytest.mark.requires("net")]


def udp_echo(duts, sizes):
    srv = duts.server.start("hil_sock.udp_receive", duts.server.udp_port(), len(sizes), 4096, True).ready()
    cli = duts.client.start("hil_multi.udp_client", duts.server.ip, duts.server.udp_port(), sizes)
    want = [(n, crc(datagram(n, i))) for i, n in enumerate(sizes)]
    back = cli.result()
    got = srv.result()
    assert [(n, c) for n, c, _ in got] == want, "datagrams did not arrive whole at the server"
    assert {sender[0] for _, _, sender in got} == {duts.client.ip}
    assert back == want, "echoes did not come back whole"


def test_udp_small_datagrams_arrive_whole(duts):
    udp_echo(duts, [1, 2, 17, 100, 512])


def test_udp_datagram_filling_one_frame(duts):
    """1472 bytes: the largest UDP payload in one 1500-byte IPv4 packet."""
    udp_echo(duts, [1471, 1472])


def test_udp_fragmented_datagram_reassembled(duts):
    """3000 bytes: two IP fragments each way; the receiving stack must reassemble them."""
    udp_echo(duts, [1473, 3000])


def test_udp_empty_datagram(duts):
    udp_echo(duts, [0, 1])


def burst(duts, count):
    srv = duts.server.start("hil_sock.udp_burst_in", duts.server.udp_port(), count).ready()
    assert duts.client.run("hil_sock.udp_burst_out", duts.server.ip, duts.server.udp_port(), count) == count
    return srv.result()


def test_udp_burst_never_reordered_or_duplicated(duts):
    seqs = burst(duts, 50)
    assert seqs, "not one datagram of the burst arrived"
    assert seqs == sorted(set(seqs)), f"reordered or duplicated: {seqs}"


def test_udp_burst_without_loss(duts):
    """50 datagrams sent back to back on one quiet bridge: a receiver with a socket queue keeps all."""
    seqs = burst(duts, 50)
    assert seqs == list(range(50)), f"{50 - len(seqs)} of 50 lost: {seqs}"
