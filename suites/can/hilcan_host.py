"""Host side of the CAN suite: the python-can Bus on the board's CAN link, and the two-party
helpers that drive firmware_py/hil_can on the board.

Host side of the link:
- QEMU boards with a [can] link "slcan_serial" (qemu_x86: the guest's can0 on slcan; mps2_an385
  with a UART CAN link, see the target file's [can]): python-can ``slcan`` over ``socket://`` via
  ``dut.can_link.bus()``;
- real boards with a [can] link "python_can": any python-can interface, from the board's spec
  (``dut.spec.can``: a target file's [can], or a lab device's
  ``can = { interface = "socketcan", channel = "can0", bitrate = 500000 }``, see harness/config/labs.py).

Frames cross as tuples ``(id, extended, remote, dlc, data)`` on both sides (hil_can.Frame.t()).
"""

from __future__ import annotations

import ast
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import can

from harness.board import Board
from harness.errors import InfrastructureError

# Fault injection for the harness's own tests (tests/integration/test_suite_can.py): the board's echo app
# leaves every Nth frame unanswered, as a broken firmware would.
ECHO_DROP_ENV = "HIL_CAN_ECHO_DROP_EVERY"
ECHO_FRAMES = 2000  # canfdtest-style echo: frames per run
ECHO_WINDOW = 50  # canfdtest's CAN_MSG_COUNT: frames in flight
ECHO_ID = 0x77  # canfdtest's CAN_MSG_ID

Frame = tuple[int, bool, bool, int, bytes]

# The end-of-exchange marker: frames arrive in order, so once the sentinel is in, every frame sent
# before it has arrived (or been dropped) and anything extra has shown up: no waiting for silence.
SENTINEL: Frame = (0x1EEEEEEE, True, False, 3, b"END")  # an extended id no case uses, data "END"
SENTINEL_CAN_ID = 0x1EEEEEEE | 0x80000000  # as hil_can.Frame.can_id() gives it
SENTINEL_FILTER = (0x1EEEEEEE | 0x80000000, 0x1FFFFFFF | 0x80000000 | 0x40000000)  # that id, data frames
SENTINEL_SEND = "bus.send(0x1EEEEEEE, b'END', ext=True)"


def open_host_bus(board: Board) -> can.BusABC:
    """A python-can Bus on the board's CAN link (the caller shuts it down)."""
    launcher = board.launcher
    if launcher is not None and launcher.can is not None:
        return board.can_link.bus(sleep_after_open=0)  # python-can's default sleeps 2 s
    spec = board.spec.can
    if spec.link != "python_can":
        raise InfrastructureError(
            f"{board.name}: has capability 'can' but no CAN link: add [can] to its target file or "
            f"can = {{ interface = ..., channel = ... }} to its lab device"
        )
    kwargs = {"interface": spec.interface, "channel": spec.channel}
    if spec.bitrate:
        kwargs["bitrate"] = spec.bitrate
    try:
        return can.Bus(**kwargs)
    except (can.CanError, OSError, ValueError) as exc:
        raise InfrastructureError(f"{board.name}: cannot open CAN bus {kwargs}: {exc}") from None


def board_open_args(board: Board) -> str:
    """Extra arguments for hil_can.open() on the board (a bench's controller bit rate)."""
    spec = board.spec.can
    return f"bitrate={spec.bitrate}" if spec.link == "python_can" and spec.bitrate else ""


def to_tuple(msg: can.Message) -> Frame:
    data = b"" if msg.is_remote_frame else bytes(msg.data)
    return (msg.arbitration_id, msg.is_extended_id, msg.is_remote_frame, msg.dlc, data)


def message(frame: Frame, **kwargs) -> can.Message:
    ident, ext, rtr, dlc, data = frame
    if rtr:
        return can.Message(arbitration_id=ident, is_extended_id=ext, is_remote_frame=True, dlc=dlc, **kwargs)
    return can.Message(arbitration_id=ident, is_extended_id=ext, data=data, **kwargs)


@dataclass
class BoardResult:
    frames: list[Frame]
    stats: dict
    lines: list[str] = field(default_factory=list)  # other lines the board printed


def unpack_frames(raw: bytes) -> list[Frame]:
    """hil_can.pack() records -> (id, extended, remote, dlc, data) tuples."""
    frames, i = [], 0
    while i < len(raw):
        ident, flags, dlc, n = int.from_bytes(raw[i : i + 4], "big"), raw[i + 4], raw[i + 5], raw[i + 6]
        frames.append((ident, bool(flags & 1), bool(flags & 2), dlc, raw[i + 7 : i + 7 + n]))
        i += 7 + n
    return frames


def parse_board_output(out: str) -> BoardResult:
    frames: list[Frame] = []
    stats: dict = {}
    other = []
    for line in out.splitlines():
        if line.startswith("RESULT "):
            frames = ast.literal_eval(line[7:])
        elif line.startswith("PACKED"):
            frames = unpack_frames(bytes.fromhex(line[6:].strip()))
        elif line.startswith("STATS "):
            stats = ast.literal_eval(line[6:])
        elif line.strip() and line.strip() != "READY":
            other.append(line)
    return BoardResult(frames, stats, other)


@dataclass
class CanPair:
    """The board (running hil_can) and the host's python-can Bus, one on each end of the link."""

    dut: Board
    bus: can.BusABC
    open_args: str = ""

    def opener(self, **kwargs) -> str:
        args = [self.open_args] if self.open_args else []
        args += [f"{k}={v!r}" for k, v in kwargs.items()]
        return f"hil_can.open({', '.join(args)})"

    # --- host -> board ----------------------------------------------------------------------
    def board_receives(
        self,
        send: Callable[[], None],
        count: int,
        *,
        setup: str = "",
        open_kw: dict | None = None,
        timeout_ms: int = 15000,
        idle_ms: int | None = None,
        stop: int | None = None,
    ) -> BoardResult:
        """Start a receiver on the board, run ``send`` on the host once it is listening, return
        what the board received (frames in order) and its stats."""
        code = (
            "import hil_can\n"
            f"bus = {self.opener(**(open_kw or {}))}\n"
            f"{setup}\n"
            "print('READY')\n"
            f"got = hil_can.collect_packed(bus, {count}, {timeout_ms}, {idle_ms}, {stop})\n"
            "print('PACKED', __import__('binascii').hexlify(got).decode())\n"
            "print('STATS', repr(bus.stats()))\n"
            "bus.close()\n"
        )
        running = self.dut.spawn(code)
        running.wait_for("READY", timeout=30)
        send()
        return parse_board_output(running.finish(timeout=timeout_ms / 1000 + 30))

    def board_receives_frames(self, frames: list[Frame], **kwargs) -> BoardResult:
        """Send ``frames`` and then the sentinel; what the board received before the sentinel
        (so a lost, duplicated or extra frame shows up without any wait for silence)."""
        kwargs.setdefault("stop", SENTINEL_CAN_ID)
        count = kwargs.pop("count", len(frames) + 100)
        # Paced: these cases check what each frame looks like on arrival, not throughput (the
        # burst and overflow cases send unpaced); a TCG guest starved by a loaded host can
        # otherwise overrun its socket queue.
        return self.board_receives(lambda: self.send([*frames, SENTINEL], gap=0.002), count, **kwargs)

    def send(self, frames: list[Frame], gap: float = 0.0) -> None:
        for frame in frames:
            self.bus.send(message(frame), timeout=5)
            if gap:
                time.sleep(gap)

    # --- board -> host ----------------------------------------------------------------------
    def board_sends(
        self, body: str, *, open_kw: dict | None = None, timeout: float = 30, sentinel: bool = False
    ) -> str:
        """Run ``body`` on the board with ``bus`` open (it closes afterwards), then send the
        sentinel if asked; the board's output."""
        code = f"import hil_can\nbus = {self.opener(**(open_kw or {}))}\ntry:\n"
        code += "".join(f"    {line}\n" for line in body.splitlines())
        if sentinel:
            code += f"    {SENTINEL_SEND}\n"
        code += "finally:\n    bus.close()\n"
        return self.dut.exec(code, timeout=timeout)

    def host_receives_until_sentinel(self, timeout: float = 10.0) -> list[can.Message]:
        """Everything the board sent before its sentinel (see board_sends(sentinel=True))."""
        got = []
        while True:
            msg = self.bus.recv(timeout)
            assert msg is not None, f"no sentinel from the board within {timeout:g} s; got {len(got)} frames before"
            if to_tuple(msg) == SENTINEL:
                return got
            got.append(msg)

    def drain(self) -> None:
        while self.bus.recv(0.05) is not None:
            pass


def canfdtest_host(bus: can.BusABC, count: int, window: int = ECHO_WINDOW, timeout: float = 10.0) -> str | None:
    """can-utils canfdtest's generator side (-g): frames on id 0x77 with 8 bytes counter+i,
    up to ``window`` in flight; each reply must be id 0x78 with every byte + 1, in order.
    Returns None when all ``count`` came back exactly once, else what went wrong."""
    inflight: deque[tuple[int, bytes]] = deque()
    sent = answered = 0
    while answered < count:
        while len(inflight) < window and sent < count:
            data = bytes((sent + i) & 0xFF for i in range(8))
            bus.send(can.Message(arbitration_id=ECHO_ID, is_extended_id=False, data=data), timeout=5)
            inflight.append((sent, data))
            sent += 1
        msg = bus.recv(timeout)
        if msg is None:
            seq, _ = inflight[0]
            return f"no reply to frame #{seq} within {timeout:g} s ({answered} of {count} answered): lost"
        seq, data = inflight[0]
        expected = bytes((b + 1) & 0xFF for b in data)
        got = bytes(msg.data)
        if msg.arbitration_id != ECHO_ID + 1 or msg.is_extended_id or msg.is_remote_frame:
            return f"frame #{seq}: reply has id 0x{msg.arbitration_id:X} (ext={msg.is_extended_id}), expected 0x78"
        if msg.dlc != 8 or got != expected:
            answers = [s for s, d in inflight if bytes((b + 1) & 0xFF for b in d) == got]
            what = f"the reply to #{answers[0]}" if answers else "no frame in flight"
            return (f"frame #{seq}: expected reply {expected.hex()} but got {got.hex()} (dlc {msg.dlc}), "
                    f"which is {what}: frames lost, duplicated or reordered")  # fmt: skip
        inflight.popleft()
        answered += 1
    extra = bus.recv(0.3)
    if extra is not None:
        return f"all {count} answered, then an extra frame arrived: {extra}"
    return None
