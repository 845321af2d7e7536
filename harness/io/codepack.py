"""Code sent compressed to a board whose console bytes are slow (console.compress_min): raw
deflate, with the bytes a running board's console cannot carry escaped. firmware_py/hil_paste.py
unz() is the board's half; decode() here is the same undoing, for tests.

Escapes: \\x03 is Ctrl-C, which the board's UART turns into KeyboardInterrupt while code runs, and a
text stdin without .buffer (ports/qemu's) reads \\r as \\n. As in PPP (RFC 1662), such a byte goes as
ESC (here \\x10) and the byte XOR 0x20, and so does ESC itself: \\x10\\x23, \\x10\\x2d, \\x10\\x30. Every
ESC on the wire then starts a pair, so three bytes.replace calls (all a board has to do) undo it
unambiguously."""

from __future__ import annotations

import zlib

ESC = 0x10
ESCAPED = (ESC, 0x03, 0x0D)  # ESC first when encoding (its own pairs must not be escaped again), last when decoding
MIN_WBITS, MAX_WBITS = 9, 15  # raw deflate windows zlib writes and MicroPython's deflate reads


def window_bits(size: int) -> int:
    """The smallest window that spans the whole code (the board allocates 2**bits bytes for it)."""
    return min(MAX_WBITS, max(MIN_WBITS, (size - 1).bit_length()))


def encode(code: bytes) -> tuple[int, bytes]:
    """(window bits, the bytes to send): level-9 raw deflate, escaped."""
    wbits = window_bits(len(code))
    packer = zlib.compressobj(9, zlib.DEFLATED, -wbits)
    packed = packer.compress(code) + packer.flush()
    for byte in ESCAPED:
        packed = packed.replace(bytes([byte]), bytes([ESC, byte ^ 0x20]))
    return wbits, packed


def decode(data: bytes, wbits: int) -> bytes:
    """What unz() does on the board."""
    for byte in reversed(ESCAPED):
        data = data.replace(bytes([ESC, byte ^ 0x20]), bytes([byte]))
    return zlib.decompress(data, -wbits)
