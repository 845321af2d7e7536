# hil_can backend: an SLCAN (Lawicel ASCII) speaker on a serial line, for boards without a CAN
# controller. The board plays the adapter: the host's python-can "slcan" interface (or Linux's
# slcan line discipline) sends it frames as text lines and reads the frames it sends.
#
#   t<iii><l><dd..>\r   standard data frame       T<iiiiiiii><l><dd..>\r  extended data frame
#   r<iii><l>\r         standard remote frame     R<iiiiiiii><l>\r        extended remote frame
#   d/D<id><L><dd..>\r  CAN FD frame (L: DLC code 0-F)   b/B: CAN FD with bit rate switch
#                       (the CANable 2.0 extension python-can speaks)
#   O L C S<n> s<xxyy> Y<n> V N F Z M m X W Q: adapter commands, acknowledged with \r
#
# Anything malformed (DLC 9 on a classic frame, wrong number of hex digits, id out of range)
# is answered with BEL (\a) and counted in stats()["rx_errors"]; it never becomes a frame.
#
# A port is anything with write(bytes), read_line(buf, wait_ms) -> bool (append bytes up to
# CR, which is consumed; False when wait_ms passed first) and flush(): hil_can_cmsdk.Uart for
# mps2-an385's UART1, StreamPort for a machine.UART.
import hil_can

_HEX = b"0123456789ABCDEF"
_FD_DLC = hil_can.FD_LENS  # DLC code -> length


def _hexbytes(data):
    return data.hex().upper().encode() if data else b""


def encode(frame):
    """hil_can.Frame -> one SLCAN line (with its CR)."""
    if frame.rtr:
        head = ("R%08X%d" if frame.ext else "r%03X%d") % (frame.id, frame.dlc)
        return head.encode() + b"\r"
    if frame.fd:
        kind = ("B" if frame.ext else "b") if frame.brs else ("D" if frame.ext else "d")
        head = (kind + ("%08X%X" if frame.ext else "%03X%X")) % (frame.id, _FD_DLC.index(len(frame.data)))
    else:
        head = ("T%08X%d" if frame.ext else "t%03X%d") % (frame.id, frame.dlc)
    return head.encode() + _hexbytes(frame.data) + b"\r"


def _hexval(text):
    for c in text:
        if c not in _HEX and not 0x61 <= c <= 0x66:  # 0-9 A-F a-f only (int() would take "_", " ")
            raise ValueError(f"not hex: {text!r}")
    return int(text, 16)


def decode(line, ts=0):
    """One SLCAN frame line (without CR) -> hil_can.Frame; ValueError if it is malformed."""
    if not line:
        raise ValueError("empty line")
    kind = chr(line[0])
    ext = kind in "TRDB"
    width = 8 if ext else 3
    if len(line) < 2 + width:
        raise ValueError("short frame line")
    ident = _hexval(line[1 : 1 + width])
    if ident > (hil_can.EFF_MASK if ext else hil_can.SFF_MASK):
        raise ValueError("id out of range")
    code = _hexval(line[1 + width : 2 + width])
    body = line[2 + width :]
    if kind in "tTrR":
        if code > 8:
            raise ValueError(f"DLC {code} > 8")
        if kind in "rR":
            if body:
                raise ValueError("remote frame with data")
            return hil_can.Frame(ident, b"", ext, True, code, ts=ts)
        n = code
        fd = brs = False
    elif kind in "dDbB":
        n = _FD_DLC[code]
        fd, brs = True, kind in "bB"
    else:
        raise ValueError("not a frame line")
    if len(body) != 2 * n:
        raise ValueError(f"{len(body)} hex digits for {n} data bytes")
    if body:
        _hexval(body)
    return hil_can.Frame(ident, bytes.fromhex(body.decode()), ext, False, None, fd, brs, ts)


_ACK = b"\r"
_BEL = b"\a"
_REPLIES = {ord("V"): b"V1013\r", ord("v"): b"v1013\r", ord("N"): b"NHIL1\r", ord("F"): b"F00\r"}
_COMMANDS = b"OLCSsYZMmXWQ"


class Speaker:
    hw_filters = False  # hil_can filters in software, with SocketCAN's semantics

    def __init__(self, port, fd=False, max_filters=32, flush=True):
        self.port = port
        self.name = "slcan:" + getattr(port, "name", "serial")
        self.fd = True  # the line carries CAN FD lines (d/D/b/B); the host decides to use them
        self.max_filters = max_filters
        self.line = bytearray()
        self.rx_errors = 0
        self.commands = 0
        self.bitrate = None
        self.is_open = False
        if flush:
            port.flush()  # leftovers from an earlier session (a closed host link, a past test)

    def write(self, frame):
        self.port.write(encode(frame))

    def _handle(self, line):
        """A complete line: a frame, or None after answering a command or an error."""
        if not line:
            return None  # python-can sends a bare CR for "no data bit rate"
        first = line[0]
        if first in b"tTrRdDbB":
            try:
                return decode(line, hil_can.ticks_us())
            except (ValueError, IndexError):
                self.rx_errors += 1
                self.port.write(_BEL)
                return None
        self.commands += 1
        if first in _REPLIES:
            self.port.write(_REPLIES[first])
        elif first in _COMMANDS:
            if first in b"OL":
                self.is_open = True
            elif first == ord("C"):
                self.is_open = False
            elif first == ord("S"):
                self.bitrate = line[1:].decode()
            self.port.write(_ACK)
        else:
            self.rx_errors += 1
            self.port.write(_BEL)
        return None

    def read(self, wait_ms):
        start = hil_can.ticks_ms()
        left = wait_ms
        while True:
            if not self.port.read_line(self.line, left):
                return None
            line = bytes(self.line)
            self.line = bytearray()
            frame = self._handle(line)
            if frame is not None:
                return frame
            if wait_ms is not None:
                left = wait_ms - hil_can.ticks_diff(hil_can.ticks_ms(), start)
                if left < 0:
                    left = 0

    def set_filters(self, filters):
        pass  # applied by hil_can.CAN in software

    def stats(self):
        return {"rx_errors": self.rx_errors, "commands": self.commands}

    def counters(self):
        """Drop counters of this path: lines that could not be a frame (a frame garbled on the
        way in is lost), and the port's own (a UART's receive overruns)."""
        out = {"slcan_bad_lines": self.rx_errors}
        more = getattr(self.port, "counters", None)
        if more:
            out.update(more())
        return out

    def close(self):
        self.port.close()


class StreamPort:
    """A port over a stream with any()/read(n)/write(b), e.g. machine.UART(1, 115200)."""

    def __init__(self, stream, name="uart"):
        self.stream = stream
        self.name = name

    def write(self, data):
        view = memoryview(data)
        while view:
            n = self.stream.write(view)
            if n:
                view = view[n:]

    def read_line(self, buf, wait_ms):
        s = self.stream
        start = None
        while True:
            while s.any():
                c = s.read(1)[0]
                if c == 13:
                    return True
                if c != 10 and c != 7:
                    buf.append(c)
                if len(buf) > 160:  # not SLCAN: hand it over as one (malformed) line
                    return True
            if wait_ms == 0:
                return False
            if start is None:
                start = hil_can.ticks_ms()
            elif wait_ms is not None and hil_can.ticks_diff(hil_can.ticks_ms(), start) >= wait_ms:
                return False

    def flush(self, quiet_ms=10, max_ms=5000, stale_quiet_ms=200):
        """As hil_can_cmsdk.Uart.flush: once something was dropped, wait for a longer quiet."""
        start = last = hil_can.ticks_ms()
        while True:
            now = hil_can.ticks_ms()
            if self.stream.any():
                self.stream.read(self.stream.any())
                last = now
                quiet_ms = stale_quiet_ms
            elif hil_can.ticks_diff(now, last) >= quiet_ms or hil_can.ticks_diff(now, start) >= max_ms:
                return

    def close(self):
        pass
