# A small message server: the kind of board app that the "one application message = one network
# packet" assumption breaks (see the Zephyr net_app story in the sockets suite). TCP is a byte
# stream: a message may arrive split over several recv() calls, and several messages may arrive
# in one. This parser buffers and frames properly. MicroPython and CPython.
#
# Framings: "len": 2-byte big-endian length, then that many bytes; "line": bytes up to b"\n".
# For every message the server replies one line "<index> <length> <crc32 as 8 hex digits>\n".
# When the peer shuts its side down, the server prints RESULT (messages, bytes, leftover bytes).
try:
    from binascii import crc32
except ImportError:  # pragma: no cover
    from zlib import crc32

import hil_sock


class Parser:
    """Incremental framing: feed() any slice of the stream, get back the messages it completed."""

    def __init__(self, framing):
        if framing not in ("len", "line"):
            raise ValueError("framing must be 'len' or 'line'")
        self.framing = framing
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if self.framing == "len":
                if len(self.buf) < 2:
                    break
                n = (self.buf[0] << 8) | self.buf[1]
                if len(self.buf) < 2 + n:
                    break
                out.append(bytes(self.buf[2 : 2 + n]))
                self.buf = self.buf[2 + n :]
            else:
                i = self.buf.find(b"\n")
                if i < 0:
                    break
                out.append(bytes(self.buf[:i]))
                self.buf = self.buf[i + 1 :]
        return out


def reply(index, msg):
    return f"{index} {len(msg)} {crc32(msg) & 0xFFFFFFFF:08x}\n".encode()


def serve(port, framing="len", trace=False, bufsize=512):
    """Serve one connection. trace: print "RX <bytes so far>;" after every recv(), so the host can
    wait until the board has consumed a prefix before sending the rest (a split it really saw)."""
    parser = Parser(framing)
    c, _ = hil_sock.accept_one(port)
    count = total = 0
    while True:
        data = c.recv(bufsize)
        if not data:
            break
        total += len(data)
        if trace:
            print(f"RX {total};")
        for msg in parser.feed(data):
            hil_sock.send_all(c, reply(count, msg))
            count += 1
    c.close()
    hil_sock.result((count, total, len(parser.buf)))
