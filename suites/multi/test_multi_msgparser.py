"""The one-message-one-packet assumption between two boards: the client board cuts a stream of
framed messages into sends that split messages (down to one byte per segment, with pauses) and
merge them; the parser board (firmware_py/hil_sock_msg.py) must answer each message once, whole."""

from __future__ import annotations

import pytest
from multilib import message, reply

pytestmark = [pytest.mark.roles("server", "client"), pytest.mark.requires("net")]

SIZES = [1, 7, 300, 2, 1000, 40, 0, 65, 1500, 3]


def exchange(duts, framing, sizes, chunk, pause_ms=0):
    if framing == "line":
        sizes = [n for n in sizes if n]  # an empty line is a message too, but keep both framings alike
    srv = duts.server.start("hil_sock_msg.serve", duts.server.port(), framing).ready()
    cli = duts.client.start("hil_multi.msg_client", duts.server.ip, duts.server.port(), framing, sizes, chunk,
                            pause_ms)
    want = [reply(i, message(n, i, framing)) for i, n in enumerate(sizes)]
    total = sum(n + (2 if framing == "len" else 1) for n in sizes)
    assert cli.result() == want
    assert srv.result() == (len(sizes), total, 0)


@pytest.mark.parametrize("framing", ["len", "line"])
def test_messages_merged_in_large_sends(duts, framing):
    exchange(duts, framing, SIZES, 4096)


@pytest.mark.parametrize("framing", ["len", "line"])
def test_messages_split_across_small_segments(duts, framing):
    exchange(duts, framing, SIZES, 5, pause_ms=2)


def test_length_prefix_split_between_its_bytes(duts):
    """One-byte segments: every length prefix arrives as two segments."""
    exchange(duts, "len", [3, 1, 4], 1, pause_ms=20)
