"""What the boards of suites/multi send, computed on the host (the same bytes as
firmware_py/hil_multi.py and hil_sock.py), to check the other board's observations against."""

from __future__ import annotations

import struct
import zlib

BLOCK = 4097  # firmware_py/hil_sock.py BLOCK: the boards send this pattern
_BASE = bytes((i * 811) & 0xFF for i in range(BLOCK))


def crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def pattern(total: int) -> bytes:
    """hil_sock.pattern_chunks: numbered 4 KiB blocks."""
    blocks = [struct.pack(">I", k) + _BASE[4:] for k in range((total + BLOCK - 1) // BLOCK)]
    return b"".join(blocks)[:total]


def piece(n: int, i: int) -> bytes:
    """hil_multi.echo_client's i-th piece."""
    return bytes((j * 7 + i) & 0xFF for j in range(n))


def datagram(n: int, seed: int) -> bytes:
    """hil_multi.udp_client's datagram number seed."""
    return bytes((j * 13 + seed) & 0xFF for j in range(n))


def message(n: int, i: int, framing: str) -> bytes:
    """hil_multi.msg_client's i-th message body."""
    if framing == "len":
        return bytes((j + i) % 251 + 1 for j in range(n))
    return bytes(65 + (j + i) % 26 for j in range(n))


def reply(index: int, msg: bytes) -> str:
    """hil_sock_msg's reply line for a message (without its newline)."""
    return f"{index} {len(msg)} {crc(msg):08x}"
