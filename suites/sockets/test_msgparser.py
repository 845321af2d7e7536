"""The "one message = one packet" bug: a board app parsing a message protocol over TCP must handle
messages split across segments (at every byte boundary) and many messages merged in one segment.

The board runs a message server (firmware_py/hil_sock_msg.py, or the module HIL_SOCK_APP
names: tests/integration/test_suite_sockets.py points this file at a deliberately broken parser to
prove it is caught). The host sends with TCP_NODELAY. For the split cases the board traces every recv()
("RX <bytes so far>;") and the host sends the rest of a message only after the board has consumed
exactly the first part: the split is one the board's parser really saw, not one TCP may have
glued back together."""

from __future__ import annotations

import random
import socket
import time
import zlib

import pytest

pytestmark = pytest.mark.requires("net")

FRAMINGS = ["len", "line"]


def encode(msg: bytes, framing: str) -> bytes:
    if framing == "len":
        return len(msg).to_bytes(2, "big") + msg
    assert b"\n" not in msg
    return msg + b"\n"


def replies(msgs: list[bytes], start: int = 0) -> list[bytes]:
    return [f"{start + i} {len(m)} {zlib.crc32(m) & 0xFFFFFFFF:08x}".encode() for i, m in enumerate(msgs)]


class Client:
    """The host end of a message-server connection."""

    def __init__(self, peer, framing: str, trace: bool) -> None:
        port = peer.port()
        self.role = peer.start(f"serve({port}, {framing!r}, {trace})", module=peer.app, ready=True)
        # replies follow their message at once: 5 s of silence means none is coming
        self.conn = peer.connect(port, nodelay=True, timeout=5)
        self.reader = self.conn.makefile("rb")
        self.sent = 0

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)
        self.sent += len(data)

    def consumed(self) -> None:
        """Wait until the board's recv() calls have returned exactly everything sent so far."""
        self.role.wait(f"RX {self.sent};", timeout=20)

    def expect_replies(self, expected: list[bytes], what: str = "") -> None:
        """Read the replies one by one: the first wrong or missing one fails at once."""
        for i, want in enumerate(expected):
            try:
                line = self.reader.readline().rstrip(b"\n")
            except TimeoutError:
                line = b"(no reply within 5 s)"
            assert line == want, f"reply {i} of {len(expected)}{what}: {line!r} != {want!r}"

    def finish(self) -> tuple:
        self.conn.shutdown(socket.SHUT_WR)
        rest = self.reader.read()
        result = self.role.result()
        return rest, result


# Short messages, so that splitting at every byte boundary crosses every kind of boundary: inside
# the length header, between header and body, inside the body, at the end, and between messages
# (the unit is two messages).
UNIT = [b"hello", b""]
EXTRA = [b"A", b"0123456789" * 3]


@pytest.mark.parametrize("framing", FRAMINGS)
def test_message_split_at_every_byte_boundary(peer, framing):
    client = Client(peer, framing, trace=True)
    msgs = [*UNIT, *EXTRA]
    stream = b"".join(encode(m, framing) for m in msgs)
    count = 0
    for k in range(1, len(stream)):
        client.send(stream[:k])
        client.consumed()  # the board has seen the first part alone
        client.send(stream[k:])
        client.consumed()
        client.expect_replies(replies(msgs, count), f" after a split at byte {k} of {stream!r}")
        count += len(msgs)
    rest, result = client.finish()
    assert rest == b""
    assert result == (count, client.sent, 0)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_many_messages_merged_in_one_send(peer, framing):
    client = Client(peer, framing, trace=False)
    msgs = [bytes((i * 31 + j) & 0xFF for j in range(i % 37)).replace(b"\n", b"n") for i in range(300)]
    if framing == "len":
        msgs[150] = bytes(range(256)) * 2 + b"!"  # 513: both header bytes matter, and off a boundary
    client.send(b"".join(encode(m, framing) for m in msgs))
    client.expect_replies(replies(msgs))
    rest, (count, total, leftover) = client.finish()
    assert (rest, count, total, leftover) == (b"", len(msgs), client.sent, 0)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_random_segmentation_with_pauses(peer, framing):
    """200 messages in random slices of 1..23 bytes, each its own segment (TCP_NODELAY) with a pause
    after most: splits and merges in every combination, without the recv trace's lockstep."""
    rng = random.Random(4)
    msgs = [bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 40))).replace(b"\n", b"N") for _ in range(200)]
    stream = b"".join(encode(m, framing) for m in msgs)
    client = Client(peer, framing, trace=False)
    i = 0
    while i < len(stream):
        n = rng.randrange(1, 24)
        client.send(stream[i : i + n])
        i += n
        if rng.random() < 0.8:
            time.sleep(0.002)
    client.expect_replies(replies(msgs))
    rest, (count, total, leftover) = client.finish()
    assert (rest, count, total, leftover) == (b"", len(msgs), len(stream), 0)
