"""firmware_py/hil_can* under real MicroPython (the unix port), without a CAN bus: frame checks,
SocketCAN's filter semantics, the can_frame layout, the SLCAN codec (against python-can's own
slcan implementation), the SLCAN speaker on a fake serial port, the echo app, and the
machine.CAN / pyb.CAN backends against fake controllers that behave as their docs say
(docs/library/machine.CAN.rst, docs/library/pyb.CAN.rst): those cannot run on any board here."""

from __future__ import annotations

import ast
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest

from tests.conftest import REPO

FIRMWARE_PY = REPO / "firmware_py"
MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or "micropython"

EFF, RTR, INV = 0x80000000, 0x40000000, 0x20000000


def mpy(code: str) -> str:
    env = os.environ | {"MICROPYPATH": f"{FIRMWARE_PY}:.frozen"}
    proc = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return proc.stdout


def mpy_eval(code: str):
    """Run code whose last line prints a repr; that value."""
    return ast.literal_eval(mpy(code).strip().splitlines()[-1])


# --- frames --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame, error",
    [
        ("Frame(0x7FF, b'12345678')", None),
        ("Frame(0x1FFFFFFF, b'', ext=True)", None),
        ("Frame(0x0, rtr=True, dlc=8)", None),
        ("Frame(0x1, bytes(64), fd=True, brs=True)", None),
        ("Frame(0x800)", "invalid id 0x800: standard ids are 0..0x7FF (use ext=True)"),
        ("Frame(0x20000000, ext=True)", "invalid id 0x20000000: extended ids are 0..0x1FFFFFFF"),
        ("Frame(1, bytes(9))", "DLC 9 out of range: classic CAN carries 0..8 data bytes"),
        ("Frame(1, rtr=True, dlc=9)", "DLC 9 out of range: classic CAN DLC is 0..8"),
        ("Frame(1, b'ab', dlc=3)", "DLC 3 does not match 2 data bytes"),
        ("Frame(1, bytes(9), fd=True)", "invalid CAN FD length 9 (0..8, 12, 16, 20, 24, 32, 48, 64)"),
        ("Frame(1, rtr=True, fd=True)", "CAN FD has no remote frames"),
        ("Frame(1, b'', brs=True)", "bit rate switch needs a CAN FD frame (fd=True)"),
    ],
)
def test_check_rejects_invalid_frames_with_einval(frame, error):
    out = mpy_eval(
        "import hil_can\nfrom hil_can import Frame\n"
        f"try:\n    hil_can.check({frame})\n    print(repr(None))\n"
        "except OSError as e:\n    print(repr((e.errno, e.args[1])))\n"
    )
    assert out == (None if error is None else (22, error))


def test_remote_frame_keeps_dlc_and_drops_data():
    assert mpy_eval("import hil_can\nprint(repr(hil_can.Frame(5, b'xyz', rtr=True).t()))") == (5, False, True, 3, b"")


# test_raw_filter.c's matrix (linux selftests), applied to hil_can's software filters: the same
# semantics as the kernel's, so SLCAN and machine.CAN boards filter exactly like SocketCAN ones
ID = 0x123
ALL4 = [0, RTR, EFF, EFF | RTR]
MATRIX = [
    (ID, 0x7FF, ALL4), (ID | EFF, 0x7FF, ALL4), (ID | RTR, 0x7FF, ALL4), (ID | EFF | RTR, 0x7FF, ALL4),
    (ID, 0x7FF | EFF, [0, RTR]), (ID | EFF, 0x7FF | EFF, [EFF, EFF | RTR]),
    (ID | RTR, 0x7FF | EFF, [0, RTR]), (ID | EFF | RTR, 0x7FF | EFF, [EFF, EFF | RTR]),
    (ID, 0x7FF | RTR, [0, EFF]), (ID | EFF, 0x7FF | RTR, [0, EFF]),
    (ID | RTR, 0x7FF | RTR, [RTR, EFF | RTR]), (ID | EFF | RTR, 0x7FF | RTR, [RTR, EFF | RTR]),
    (ID, 0x7FF | EFF | RTR, [0]), (ID | EFF, 0x7FF | EFF | RTR, [EFF]),
    (ID | RTR, 0x7FF | EFF | RTR, [RTR]), (ID | EFF | RTR, 0x7FF | EFF | RTR, [EFF | RTR]),
    (ID, 0x1FFFFFFF | EFF | RTR, [0]), (ID | EFF, 0x1FFFFFFF | EFF | RTR, [EFF]),
]  # fmt: skip


def test_software_filters_follow_the_kernel_raw_filter_matrix():
    got = mpy_eval(
        "import hil_can\n"
        f"matrix = {[(i, m) for i, m, _ in MATRIX]!r}\n"
        f"print(repr([[f for f in {ALL4!r} if hil_can.filters_accept([(i, m)], {ID} | f)] for i, m in matrix]))\n"
    )
    assert got == [passing for _, _, passing in MATRIX]


def test_filter_none_empty_inverted_and_match_helper():
    got = mpy_eval(
        "import hil_can as h\n"
        "print(repr((h.filters_accept(None, 5), h.filters_accept([], 5),"
        f" h.filters_accept([(0x123 | {INV}, 0x7FF | {EFF})], 0x123),"
        f" h.filters_accept([(0x123 | {INV}, 0x7FF | {EFF})], 0x124),"
        " h.match(0x120, 0x7F0), h.match(0x1ABCDE, ext=True), h.match(0x7, rtr=True), h.match(0x7, rtr=False))))\n"
    )
    assert got == (True, False, False, True, (0x120, 0x7F0 | EFF), (0x1ABCDE | EFF, 0x1FFFFFFF | EFF),
                   (0x7 | RTR, 0x7FF | EFF | RTR), (0x7, 0x7FF | EFF | RTR))  # fmt: skip


# --- SocketCAN struct layout ---------------------------------------------------------------------
def test_socketcan_can_frame_layout_matches_linux():
    # struct can_frame { canid_t can_id; __u8 len; __u8 __pad; __u8 __res0; __u8 len8_dlc; __u8 data[8]; }
    raw = mpy_eval(
        "import hil_can, hil_can_socketcan as s\n"
        "print(repr([s.pack(f) for f in (hil_can.Frame(0x123, b'\\x01\\x02'), hil_can.Frame(0x1ABCDEF, b'', True),"
        " hil_can.Frame(0x7FF, rtr=True, dlc=5), hil_can.Frame(0x10, bytes(range(12)), fd=True, brs=True))]))\n"
    )
    assert raw[0] == struct.pack("=IB3x8s", 0x123, 2, b"\x01\x02")
    assert raw[1] == struct.pack("=IB3x8s", 0x1ABCDEF | EFF, 0, b"")
    assert raw[2] == struct.pack("=IB3x8s", 0x7FF | RTR, 5, b"")
    # struct canfd_frame { canid_t can_id; __u8 len; __u8 flags; __u8 __res0; __u8 __res1; __u8 data[64]; }
    assert raw[3] == struct.pack("=IBBxx64s", 0x10, 12, 0x04 | 0x01, bytes(range(12)))
    assert [len(r) for r in raw] == [16, 16, 16, 72]


def test_socketcan_unpack_round_trips():
    got = mpy_eval(
        "import hil_can, hil_can_socketcan as s\n"
        "fs = [hil_can.Frame(0x123, b'\\x01\\x02'), hil_can.Frame(0x1ABCDEF, b'xyz', True),"
        " hil_can.Frame(0x7FF, rtr=True, dlc=5), hil_can.Frame(0x1, b'', True, True, 8),"
        " hil_can.Frame(0x10, bytes(range(64)), fd=True, brs=True)]\n"
        "print(repr([s.unpack(s.pack(f)) == f for f in fs] + [s.unpack(bytes(10))]))\n"
    )
    assert got == [True, True, True, True, True, None]


def test_no_can_path_is_enodev():
    if Path("/sys/class/net/can0").exists():
        pytest.skip("this host has a can0: hil_can.open() would use it")
    got = mpy_eval(
        "import hil_can\ntry:\n    hil_can.open()\n"
        "except OSError as e:\n    print(repr((hil_can.backends(), e.errno)))\n"
    )
    assert got == ([], 19)


# --- SLCAN ---------------------------------------------------------------------------------------
LINES = [
    (b"t1232010A", (0x123, False, False, 2, b"\x01\x0a")),
    (b"T1ABCDEF00", (0x1ABCDEF0, True, False, 0, b"")),
    (b"r7FF8", (0x7FF, False, True, 8, b"")),
    (b"R000000013", (0x1, True, True, 3, b"")),
    (b"t0008" + b"00FF11EE22DD33CC", (0x0, False, False, 8, bytes.fromhex("00FF11EE22DD33CC"))),
]


@pytest.mark.parametrize("line, frame", LINES)
def test_slcan_codec(line, frame):
    got = mpy_eval(f"import hil_can_slcan as s\nf = s.decode({line!r})\nprint(repr((f.t(), s.encode(f))))\n")
    assert got == (frame, line + b"\r")


@pytest.mark.parametrize(
    "line",
    [b"t1239" + b"00" * 9, b"t12320", b"t123201", b"t8000", b"T200000000", b"tZZZ0", b"t12", b"r1231AB", b"t1_30",
     b"x1230", b"d12390011223344556677"],
)  # fmt: skip
def test_slcan_decode_rejects_malformed_lines(line):
    assert (
        mpy_eval(
            f"import hil_can_slcan as s\ntry:\n    s.decode({line!r})\n    print(1)\nexcept ValueError:\n    print(0)\n"
        )
        == 0
    )


def read_line(port, timeout: float = 5.0) -> bytes:
    """One line up to its CR (in_waiting alone can see a line that pyserial's loop:// is still queueing)."""
    line, deadline = b"", time.monotonic() + timeout
    while not line.endswith(b"\r") and time.monotonic() < deadline:
        line += port.read(1)
    return line


def test_slcan_codec_agrees_with_python_can():
    """python-can's slcan interface on pyserial's loop:// writes a frame line for each message;
    hil_can_slcan decodes it to the same frame, and python-can parses hil_can_slcan's encoding
    back to the same message (classic, remote and FD lines)."""
    messages = [
        can.Message(arbitration_id=0x123, is_extended_id=False, data=b"\x01\xa0"),
        can.Message(arbitration_id=0x1ABCDEF0, is_extended_id=True, data=bytes(range(8))),
        can.Message(arbitration_id=0x7FF, is_extended_id=False, is_remote_frame=True, dlc=6),
        can.Message(arbitration_id=0x1FFFFFFF, is_extended_id=True, is_remote_frame=True, dlc=0),
        can.Message(arbitration_id=0x10, is_extended_id=False, is_fd=True, data=bytes(range(64))),
        can.Message(arbitration_id=0x10, is_extended_id=True, is_fd=True, bitrate_switch=True, data=bytes(12)),
    ]
    bus = can.Bus(interface="slcan", channel="loop://", sleep_after_open=0)
    try:
        while read_line(bus.serialPortOrig) not in (b"O\r", b""):  # the open commands (C, S6, O)
            pass
        lines = []
        for msg in messages:
            bus.send(msg)
            lines.append(read_line(bus.serialPortOrig))
        decoded = mpy_eval(
            "import hil_can_slcan as s\n"
            f"fs = [s.decode(line[:-1]) for line in {lines!r}]\n"
            "print(repr([(f.t(), f.fd, f.brs, s.encode(f)) for f in fs]))\n"
        )
        for msg, line, (frame, fd, brs, encoded) in zip(messages, lines, decoded, strict=True):
            data = b"" if msg.is_remote_frame else bytes(msg.data)
            assert frame == (msg.arbitration_id, msg.is_extended_id, msg.is_remote_frame, msg.dlc, data)
            assert (fd, brs) == (msg.is_fd, msg.bitrate_switch)
            assert encoded == line  # the same text python-can writes
            bus.serialPortOrig.write(encoded)
            back = bus.recv(1)
            assert back is not None and back.equals(msg, timestamp_delta=None), (back, msg)
    finally:
        bus.shutdown()


FAKE_PORT = """
import hil_can, hil_can_slcan
class FakePort:
    name = "fake"
    def __init__(self, incoming=b""):
        self.incoming = bytes(incoming)
        self.pos = 0
        self.out = bytearray()
        self.flushed = 0
    def feed(self, data):
        self.incoming = self.incoming[self.pos:] + data
        self.pos = 0
    def write(self, data):
        self.out.extend(data)
    def read_line(self, buf, wait_ms):
        while self.pos < len(self.incoming):
            c = self.incoming[self.pos]
            self.pos += 1
            if c == 13:
                return True
            buf.append(c)
        return False
    def flush(self):
        self.flushed += 1
        self.incoming, self.pos = b"", 0
    def close(self):
        self.closed = True
"""


def test_slcan_speaker_answers_commands_and_frames():
    got = mpy_eval(
        FAKE_PORT + "port = FakePort(b'stale\\r')\n"
        "bus = hil_can.open('slcan', port=port)\n"  # flush drops what was there before
        "port.feed(b'C\\rS6\\r\\rO\\rV\\rN\\rF\\rt1232ABCD\\rt1239' + b'00' * 9 + b'\\rQ\\r?\\rr0013\\r')\n"
        "frames = [bus.recv(0), bus.recv(0), bus.recv(0)]\n"
        "bus.send(0x456, b'\\x01', ext=True)\n"
        "bus.send(0x7, rtr=True, dlc=2)\n"
        "print(repr((port.flushed, [f and f.t() for f in frames], bytes(port.out), bus.stats()['rx_errors'],"
        " bus.backend.is_open, bus.backend.bitrate)))\n"
    )
    flushed, frames, out, errors, is_open, bitrate = got
    assert flushed == 1
    assert frames == [(0x123, False, False, 2, b"\xab\xcd"), (0x1, False, True, 3, b""), None]
    # C S6 O: CR; V N F: their answers; DLC 9: BEL; Q: CR; '?': BEL; then the two frames sent
    assert out == b"\r\r\rV1013\rNHIL1\rF00\r\a\r\aT000004561" + b"01\r" + b"r0072\r"
    assert (errors, is_open, bitrate) == (2, True, "6")


def test_slcan_speaker_software_filters_and_overflow():
    got = mpy_eval(
        FAKE_PORT + "port = FakePort()\n"
        "bus = hil_can.open('slcan', port=port, rx_queue=4)\n"
        "bus.set_filters([hil_can.match(0x100, 0x700)])\n"  # 0x100..0x1FF standard
        "ids = (0x0FF, 0x100, 0x180, 0x200, 0x1FF, 0x101, 0x102, 0x103)\n"
        "port.feed(b''.join(('t%03X0\\r' % i).encode() for i in ids))\n"
        "n = bus.any()\n"
        "s = bus.stats()\n"
        "print(repr((n, [bus.recv(0).id for _ in range(n)], bus.recv(0), s['overflow'], s['rx'])))\n"
    )
    # 0x0FF and 0x200 filtered out; 0x100 0x180 0x1FF 0x101 fill the queue; 0x102 0x103 overflow
    assert got == (4, [0x100, 0x180, 0x1FF, 0x101], None, 2, 4)


def test_filter_slots_and_closed_bus():
    got = mpy_eval(
        FAKE_PORT + "bus = hil_can.open('slcan', port=FakePort(), max_filters=3)\n"
        "bus.set_filters([(i, 0x7FF) for i in range(3)])\n"
        "out = []\n"
        "try:\n    bus.set_filters([(i, 0x7FF) for i in range(4)])\nexcept OSError as e:\n"
        "    out.append((e.errno, e.args[1]))\n"
        "bus.close()\nbus.close()\n"
        "for call in (lambda: bus.send(1), lambda: bus.recv(0), lambda: bus.any(), lambda: bus.set_filters(None)):\n"
        "    try:\n        call()\n    except OSError as e:\n        out.append(e.errno)\n"
        "print(repr(out))\n"
    )
    assert got == [(28, "4 filters: slcan:fake has 3 filter slots"), 9, 9, 9, 9]


# --- the echo app ----------------------------------------------------------------------------------
FAKE_BACKEND = """
import hil_can
class Loop:
    name = "loop"
    hw_filters = True
    max_filters = 8
    fd = True
    def __init__(self, frames):
        self.frames = list(frames)
        self.sent = []
    def read(self, wait_ms):
        return self.frames.pop(0) if self.frames else None
    def write(self, frame):
        self.sent.append(frame.t() + (frame.fd, frame.brs))
    def set_filters(self, filters):
        pass
    def close(self):
        pass
"""


def test_echo_app_answers_id_plus_one_bytes_plus_one():
    got = mpy_eval(
        FAKE_BACKEND + "F = hil_can.Frame\n"
        "loop = Loop([F(0x77, bytes([0, 1, 0xFF])), F(0x7FF, b''), F(0x1FFFFFFF, b'\\xfe', True),"
        " F(0x10, rtr=True, dlc=4), F(0x20, bytes(range(64)), fd=True, brs=True)])\n"
        "r = hil_can.echo(hil_can.CAN(loop), count=5, idle_ms=0, ready=None)\n"
        "print(repr((r, loop.sent)))\n"
    )
    result, sent = got
    assert result == (5, 5)
    assert sent == [
        (0x78, False, False, 3, b"\x01\x02\x00", False, False),
        (0x000, False, False, 0, b"", False, False),  # 0x7FF + 1 wraps within 11 bits
        (0x00000000, True, False, 1, b"\xff", False, False),
        (0x11, False, True, 4, b"", False, False),  # a remote request stays one, same DLC
        (0x21, False, False, 64, bytes(range(1, 65)), True, True),
    ]


ECHO_INPUT = (
    "F = hil_can.Frame\n"
    "frames = [F(0x77, b'\\x01'), F(0x1ABCDEF, b'\\x02', True), F(0x10, rtr=True, dlc=3), F(0x1FFFFFFF, rtr=True,"
    " dlc=2, ext=True)]\n"
)


@pytest.mark.parametrize(
    "app, sent",
    [
        ("hil_can", [(0x78, False, False, 1, b"\x02"), (0x1ABCDF0, True, False, 1, b"\x03"),
                     (0x11, False, True, 3, b""), (0x0, True, True, 2, b"")]),
        # RTR flag dropped: remote requests answered as data frames of DLC zero bytes (+ 1)
        ("hil_can_nortr", [(0x78, False, False, 1, b"\x02"), (0x1ABCDF0, True, False, 1, b"\x03"),
                           (0x11, False, False, 3, b"\x01\x01\x01"), (0x0, True, False, 2, b"\x01\x01")]),
        # extended ids cut to 11 bits and sent as standard ids
        ("hil_can_stdid", [(0x78, False, False, 1, b"\x02"), (0x5F0, False, False, 1, b"\x03"),
                           (0x11, False, True, 3, b""), (0x0, False, True, 2, b"")]),
        # replies in swapped pairs
        ("hil_can_reorder", [(0x1ABCDF0, True, False, 1, b"\x03"), (0x78, False, False, 1, b"\x02"),
                             (0x0, True, True, 2, b""), (0x11, False, True, 3, b"")]),
    ],
)  # fmt: skip
def test_echo_app_and_its_broken_twins(app, sent):
    got = mpy_eval(
        FAKE_BACKEND + f"import {app}\n" + ECHO_INPUT + "loop = Loop(frames)\n"
        f"r = {app}.echo(hil_can.CAN(loop), count=4, idle_ms=0, ready=None)\n"
        "print(repr((r, [s[:5] for s in loop.sent])))\n"
    )
    assert got == ((4, 4), sent)


def test_echo_twin_dropping_every_100th_frame():
    got = mpy_eval(
        FAKE_BACKEND + "import hil_can_drop\nloop = Loop([hil_can.Frame(0x77, bytes([n])) for n in range(250)])\n"
        "r = hil_can_drop.echo(hil_can.CAN(loop, rx_queue=300), count=250, idle_ms=0, ready='GO')\n"
        "print(repr((r, [s[4][0] for s in loop.sent][97:101])))\n"
    )
    assert got == ((250, 248), [98, 99, 101, 102])  # frames #99 and #199 (0-based) got no reply


def test_pack_unpack_round_trip_keeps_every_flag():
    got = mpy_eval(
        "import hil_can\nF = hil_can.Frame\n"
        "fs = [F(0x1FFFFFFF, b'', True), F(0x7FF, rtr=True, dlc=8), F(1, bytes(range(64)), fd=True, brs=True),"
        " F(2, b'ab')]\n"
        "out = bytearray()\nfor f in fs:\n    hil_can.pack(f, out)\n"
        "print(repr([f == g for f, g in zip(fs, hil_can.unpack(out))]))\n"
    )
    assert got == [True] * 4


def test_stats_counters_and_lost():
    got = mpy_eval(
        FAKE_BACKEND + "class Counted(Loop):\n    def counters(self):\n"
        "        return {'sock_rxq_drops': 3, 'can0.rx_dropped': 0}\n"
        "bus = hil_can.CAN(Loop([hil_can.Frame(1, b'')] * 3), rx_queue=2)\nbus.any()\ns = bus.stats()\n"
        "bus2 = hil_can.CAN(Counted([]))\ns2 = bus2.stats()\n"
        "print(repr((s['counters'], s['lost'], s2['counters'], s2['lost'])))\n"
    )
    assert got == ({"overflow": 1}, {"overflow": 1}, {"overflow": 0, "sock_rxq_drops": 3, "can0.rx_dropped": 0},
                   {"sock_rxq_drops": 3})  # fmt: skip


def test_socketcan_rcvlist_parsing():
    text = (
        "\nreceive list 'rx_all':\n  (any: no entry)\n"
        "  device   can_id   can_mask      function          userdata       matches  ident\n"
        "   can0      000    00000000  000000009c8fdf22  00000000eb5a6b39     10000  raw\n"
        "   can0  80000123  9fffffff  000000009c8fdf22  00000000aaaa0001         7  raw\n"
        "   can0      123    000007ff  000000001111aaaa  00000000eb5a6b39         5  bcm\n"
    )
    seen = {"00000000aaaa0001": 1}  # from an earlier file
    got = mpy_eval(f"import hil_can_socketcan as s\nprint(repr(s.parse_rcvlist({text!r}, {seen!r})))\n")
    assert got == {"00000000eb5a6b39": 10000, "00000000aaaa0001": 8}


def test_slcan_counters_name_bad_lines_and_uart_overruns():
    got = mpy_eval(
        FAKE_PORT + "port = FakePort()\nport.counters = lambda: {'uart_rx_overruns': 2}\n"
        "bus = hil_can.open('slcan', port=port)\nport.feed(b't1239' + b'00' * 9 + b'\\rt1230\\r')\nbus.any()\n"
        "print(repr(bus.stats()['lost']))\n"
    )
    assert got == {"slcan_bad_lines": 1, "uart_rx_overruns": 2}


# --- machine.CAN and pyb.CAN, against fakes that follow their documentation ---------------------
FAKE_MACHINE_CAN = """
import hil_can, hil_can_machine
class FakeCAN:
    FLAG_RTR = 1
    FLAG_EXT_ID = 2
    FLAG_UNORDERED = 4
    RECV_ERR_FULL = 1
    RECV_ERR_OVERRUN = 2
    FILTERS_MAX = 4
    def __init__(self, rx=(), full_sends=0):
        self.rx = list(rx)
        self.sent = []
        self.filters = 'unset'
        self.full_sends = full_sends
        self.deinited = False
    def send(self, id, data, flags=0):
        if self.full_sends:
            self.full_sends -= 1
            return None  # "If the queue is full then the send will fail and None is returned"
        self.sent.append((id, bytes(data), flags))
        return 0
    def recv(self, arg=None):
        if not self.rx:
            return None
        id, data, flags, errs = self.rx.pop(0)
        mv = arg[1]
        buf = bytearray(8)
        buf[:len(data)] = data
        arg[0], arg[1], arg[2], arg[3] = id, memoryview(buf)[:len(data)], flags, errs
        return arg
    def set_filters(self, filters):
        self.filters = filters
    def get_counters(self, lst=None):
        return [0, 0, 0, 0, 0, 0, 0, 7]
    def deinit(self):
        self.deinited = True
"""


def test_machine_can_backend_frames_both_ways():
    got = mpy_eval(
        FAKE_MACHINE_CAN
        + "fake = FakeCAN(rx=[(0x123, b'\\x01\\x02', 0, 0), (0x1ABCDE, b'', 2, 0), (0x7, bytes(5), 1, 0),"
        " (0x1FFFFFFF, bytes(3), 3, 2)], full_sends=2)\n"
        "bus = hil_can.open('machine', can=fake)\n"
        "filters_at_open = fake.filters\n"
        "frames = [bus.recv(0).t() for _ in range(4)] + [bus.recv(0)]\n"
        "bus.send(0x123, b'ab')\n"  # the first two attempts find the queue full: retried
        "bus.send(0x1ABCDE, b'', ext=True)\n"
        "bus.send(0x55, rtr=True, dlc=8)\n"
        "try:\n    hil_can.open('machine', can=FakeCAN(), fd=True)\nexcept OSError as e:\n    fd_error = e.errno\n"
        "bus.close()\n"
        "print(repr((filters_at_open, frames, fake.sent, bus.stats()['hw_overruns'], fd_error, fake.deinited)))\n"
    )
    filters_at_open, frames, sent, overruns, fd_error, deinited = got
    assert filters_at_open is None  # "call set_filters(None)" to receive anything at all
    assert frames == [(0x123, False, False, 2, b"\x01\x02"), (0x1ABCDE, True, False, 0, b""),
                      (0x7, False, True, 5, b""), (0x1FFFFFFF, True, True, 3, b""), None]  # fmt: skip
    # a remote request's DLC is len(data); the contents are ignored
    assert sent == [(0x123, b"ab", 0), (0x1ABCDE, b"", 2), (0x55, bytes(8), 1)]
    assert (overruns, fd_error, deinited) == (7, 95, True)


def test_machine_can_hardware_filters_pass_a_superset():
    got = mpy_eval(
        FAKE_MACHINE_CAN + "b = hil_can_machine.MachineCan(can=FakeCAN())\n"
        "print(repr([b.hardware_filters(f) for f in (None, [], [hil_can.match(0x120, 0x7F0)],"
        " [hil_can.match(0x1ABC, ext=True, rtr=True)], [(0x123, 0x7FF)], [(0x123 | 0x20000000, 0x7FF)],"
        " [hil_can.match(i) for i in range(5)])]))\n"
    )
    assert got == [
        None,
        [],
        [(0x120, 0x7F0, 0)],
        [(0x1ABC, 0x1FFFFFFF, 2 | 1)],  # extended, remote frames only
        [(0x123, 0x7FF, 0), (0x123, 0x7FF, 2)],  # mask without EFF: both id types
        None,  # an inverted filter: the controller takes everything, software decides
        None,  # more than FILTERS_MAX (4): same
    ]


FAKE_PYB_CAN = """
import hil_can, hil_can_machine
class FakePybCAN:
    NORMAL = 1
    LIST16 = 0
    MASK16 = 1
    LIST32 = 2
    MASK32 = 3
    def __init__(self, rx=()):
        self.rx = list(rx)
        self.sent = []
        self.filters = []
        self.cleared = []
        self.cb = None
    def setfilter(self, bank, mode, fifo, params, *, rtr=None, extframe=False):
        self.filters.append((bank, mode, fifo, tuple(params), extframe))
    def clearfilter(self, bank, extframe=False):
        self.cleared.append(bank)
    def rxcallback(self, fifo, fun):
        self.cb = fun
    def any(self, fifo):
        return bool(self.rx)
    def recv(self, fifo, list=None, *, timeout=5000):
        if not self.rx:
            raise OSError(110)
        return self.rx.pop(0)
    def send(self, data, id, *, timeout=0, rtr=False, extframe=False, **kw):
        self.sent.append((bytes(data), id, rtr, extframe, kw))
    def deinit(self):
        pass
"""


def test_pyb_can_backend_frames_filters_and_overflow():
    got = mpy_eval(
        FAKE_PYB_CAN + "fake = FakePybCAN(rx=[(0x123, False, False, 0, b'\\x09'), (0x1ABCDEF, True, True, 0, bytes(4)),"
        " (0x456, True, 0, b'')])\n"  # the last one: the 4-tuple of MicroPython before 1.20
        "bus = hil_can.open('pyb', can=fake)\n"
        "frames = [bus.recv(0).t() for _ in range(3)] + [bus.recv(0)]\n"
        "fake.cb(fake, 0)\nfake.cb(fake, 2)\nfake.cb(fake, 2)\n"
        "bus.send(0x7, b'hi')\nbus.send(0x1ABCDEF, rtr=True, dlc=3, ext=True)\n"
        "bus.set_filters([])\n"
        "try:\n    hil_can.open('pyb', can=FakePybCAN(), fd=True)\nexcept OSError as e:\n    fd_error = e.errno\n"
        "print(repr((frames, fake.filters, fake.cleared, fake.sent, bus.stats()['hw_overruns'], fd_error)))\n"
    )
    frames, filters, cleared, sent, overruns, fd_error = got
    assert frames == [(0x123, False, False, 1, b"\x09"), (0x1ABCDEF, True, True, 4, b""),
                      (0x456, False, True, 0, b""), None]  # fmt: skip
    assert filters == [(0, 3, 0, (0, 0), False), (1, 3, 0, (0, 0), True)]  # accept all, std and ext
    assert cleared == [0, 1]  # [] receives nothing
    assert sent == [(b"hi", 0x7, False, False, {}), (bytes(3), 0x1ABCDEF, True, True, {})]
    assert (overruns, fd_error) == (2, 95)  # rxcallback reason 2: "a message has been lost"
