"""TCP between two boards: one board's stack serves, the other's connects (every pairing runs, so
each stack is server and client in turn). Echo at segment-size edges, bulk both ways checked by
CRC, half-close, many short connections, refusals and closes, the addresses each side sees."""

from __future__ import annotations

import pytest
from multilib import crc, pattern, piece

pytestmark = [pytest.mark.roles("server", "client"), pytest.mark.requires("net")]

BULK = 256 * 1024


def echo(duts, echo_module, sizes):
    srv = duts.server.start(f"{echo_module}.echo_server", duts.server.port()).ready()
    cli = duts.client.start("hil_multi.echo_client", duts.server.ip, duts.server.port(), sizes)
    _sent, back, got_crc, bad, end = cli.result()
    want = b"".join(piece(n, i) for i, n in enumerate(sizes))
    assert (end, back, bad) == ("ok", len(want), 0), f"echo came back short or different: {cli.value}"
    assert got_crc == crc(want)
    assert srv.result() == (1, len(want))


def test_echo_one_byte(duts, echo_module):
    echo(duts, echo_module, [1])


def test_echo_segment_size_edges(duts, echo_module):
    """Pieces around the Ethernet MSS (1460) and lwIP's TCP_MSS, each echoed whole before the next."""
    echo(duts, echo_module, [1, 2, 535, 536, 537, 1459, 1460, 1461, 2920, 2921])


def test_echo_64k_in_4k_pieces(duts, echo_module):
    echo(duts, echo_module, [4096] * 16)


def test_bulk_client_to_server_crc(duts):
    srv = duts.server.start("hil_sock.sink", duts.server.port()).ready()
    cli = duts.client.start("hil_sock.source", duts.server.ip, duts.server.port(), BULK)
    assert cli.result() == (BULK, crc(pattern(BULK)))
    total, got_crc, largest, recvs = srv.result()
    assert (total, got_crc) == (BULK, crc(pattern(BULK)))
    assert 0 < largest <= 2048 and recvs >= BULK // 2048


def test_bulk_server_to_client_crc(duts):
    srv = duts.server.start("hil_multi.serve_source", duts.server.port(), BULK).ready()
    cli = duts.client.start("hil_multi.connect_sink", duts.server.ip, duts.server.port())
    assert srv.result() == (BULK, crc(pattern(BULK)))
    assert cli.result() == (BULK, crc(pattern(BULK)))


def test_half_close_then_reply(duts):
    """The client sends and shuts its write side; the server reads to EOF (and EOF again), then
    replies on the direction still open."""
    srv = duts.server.start("hil_sock.half_close_reply", duts.server.port(), 5000).ready()
    cli = duts.client.start("hil_multi.half_close_client", duts.server.ip, duts.server.port(), 3000)
    sent, shut, n, reply_crc = cli.result()
    assert shut == ("ok", None), f"client could not half-close: {shut}"
    assert (sent, n, reply_crc) == (3000, 5000, crc(pattern(5000)))
    assert srv.result() == (3000, crc(pattern(3000)), [b"", b"", b""], 5000)


def test_many_short_connections(duts):
    n = 25
    srv = duts.server.start("hil_multi.short_server", duts.server.port(), n).ready()
    cli = duts.client.start("hil_multi.short_client", duts.server.ip, duts.server.port(), n)
    assert cli.result() == [b"%d:%d\n" % (i, i) for i in range(n)]
    assert srv.result() == [b"%d" % i for i in range(n)]


def test_connect_to_closed_port_is_refused(duts):
    """Nothing listens: the server board's stack answers the SYN with RST."""
    assert duts.client.run("hil_multi.connect_refused", duts.server.ip, duts.server.port(7)) == ("err", "ECONNREFUSED")


def test_server_sees_client_address(duts):
    srv = duts.server.start("hil_sock.accept_peer", duts.server.port()).ready()
    duts.client.run("hil_multi.send_bytes", duts.server.ip, duts.server.port(), b"abcd")
    (ip, port), data = srv.result()
    assert (ip, data) == (duts.client.ip, b"abcd")
    assert 1024 <= port <= 65535


def test_server_greets_first(duts):
    """Data first from the accepting side (the client reads before it writes), then the answer."""
    srv = duts.server.start("hil_multi.greet_server", duts.server.port(), b"HELLO from server\n").ready()
    cli = duts.client.start("hil_multi.greet_client", duts.server.ip, duts.server.port(), 18, b"hi back")
    assert cli.result() == b"HELLO from server\n"
    assert srv.result() == (duts.client.ip, b"hi back")


def test_close_without_reading_is_eof_for_the_peer(duts):
    srv = duts.server.start("hil_multi.accept_close", duts.server.port()).ready()
    cli = duts.client.start("hil_multi.connect_read", duts.server.ip, duts.server.port())
    assert srv.result() == duts.client.ip
    assert cli.result() == (("ok", b""), ("ok", b""))
