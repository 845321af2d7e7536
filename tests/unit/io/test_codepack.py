"""harness/io/codepack.py: what goes on the wire is deflated, carries no Ctrl-C, and decodes back."""

from __future__ import annotations

import os

import pytest

from harness.io.codepack import decode, encode, window_bits


@pytest.mark.parametrize(
    "code",
    [
        b"",
        b"\x03",
        b"\x10",
        b"\x10\x30\x10\x23\x03\r\x03\x10\x10\x2d",  # escapes in the code itself
        os.urandom(3000),  # incompressible: deflate's stored blocks, every byte value
        bytes(range(256)) * 40,
        b"print('a')\n" * 2000,
    ],
)
def test_round_trip_with_no_ctrl_c_on_the_wire(code):
    wbits, wire = encode(code)
    assert b"\x03" not in wire and b"\r" not in wire
    assert decode(wire, wbits) == code


def test_every_escape_byte_starts_a_pair():
    """What makes the board's replaces unambiguous: a \\x10 is always followed by an escaped byte."""
    _, wire = encode(os.urandom(20000))
    i, pairs = 0, 0
    while i < len(wire):
        if wire[i] == 0x10:
            assert wire[i + 1] in (0x30, 0x23, 0x2D)
            i, pairs = i + 2, pairs + 1
        else:
            i += 1
    assert pairs > 100  # about 3 in 256 bytes of a deflate stream


def test_source_code_shrinks():
    code = b"".join(f"def f{i}(x):\n    return x * {i} + 1\nprint(f{i}(2))\n".encode() for i in range(20))
    _, wire = encode(code)
    assert len(wire) < len(code) / 3


@pytest.mark.parametrize(("size", "bits"), [(0, 9), (1, 9), (512, 9), (513, 10), (20000, 15), (10**6, 15)])
def test_the_window_spans_the_code_and_no_more(size, bits):
    assert window_bits(size) == bits

