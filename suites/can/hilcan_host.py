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
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import can

from harness.board import Board

# The firmware_py module whose echo() the echo cases run on the board (default hil_can). The harness's
# own tests (tests/integration/test_suite_can.py) point it at broken twins: hil_can_drop,
# hil_can_nortr, hil_can_stdid, hil_can_reorder.
ECHO_APP_ENV = "HIL_CAN_ECHO"
# The seed of the random mixed frames (printed by every case that uses it): set it to replay a run.
SEED_ENV = "HIL_CAN_SEED"
ECHO_FRAMES = 2000  # canfdtest-style echo: frames per run
ECHO_WINDOW = 50  # canfdtest's CAN_MSG_COUNT: frames in flight
WINDOW = ECHO_WINDOW
SOAK_FRAMES = 10_000  # issue 14: a no-loss soak is 10,000 mixed frames at the link's maximum rate
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
    return board.host_can_bus()


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
    packed: bytes = b""  # the PACKED records as received (unpack_full() keeps FD and BRS)


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
    packed = b""
    for line in out.splitlines():
        if line.startswith("RESULT "):
            frames = ast.literal_eval(line[7:])
        elif line.startswith("PACKED"):
            packed = bytes.fromhex(line[6:].strip())
            frames = unpack_frames(packed)
        elif line.startswith("STATS "):
            stats = ast.literal_eval(line[6:])
        elif line.strip() and line.strip() != "READY":
            other.append(line)
    return BoardResult(frames, stats, other, packed)


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

    def drain(self, quiet: float = 0.05, stale_quiet: float = 0.5, limit: float = 5.0) -> None:
        """Drop frames until the bus has been quiet for ``quiet`` s; once one came, for
        ``stale_quiet``: an earlier test's board app stopped mid-exchange, and on a loaded host its
        last replies trickle in with gaps longer than ``quiet``."""
        deadline = time.monotonic() + limit
        while self.bus.recv(quiet) is not None and time.monotonic() < deadline:
            quiet = stale_quiet


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


# --- random mixed frames: every kind a link carries, seeded so a failure can be replayed ---------------
FullFrame = tuple[int, bool, bool, int, bytes, bool, bool]  # Frame + (fd, brs)
FD_LENS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)
EDGE_STD = (0x000, 0x001, 0x7FE, 0x7FF)
EDGE_EXT = (0x00000000, 0x000007FF, 0x00000800, 0x1FFFFFFE, 0x1FFFFFFF)


def mixed_frames(rng: random.Random, count: int, fd: bool = False) -> list[FullFrame]:
    """Standard and extended ids (edges included), remote frames, DLC 0-8, and CAN FD (with and
    without bit rate switch) when the link carries it; never the sentinel."""
    frames: list[FullFrame] = []
    while len(frames) < count:
        ext = rng.random() < 0.5
        edges = EDGE_EXT if ext else EDGE_STD
        ident = rng.choice(edges) if rng.random() < 0.05 else rng.getrandbits(29 if ext else 11)
        if ext and ident == SENTINEL[0]:
            continue
        kind = rng.random()
        if fd and kind < 0.15:
            data = rng.randbytes(rng.choice(FD_LENS))
            frames.append((ident, ext, False, len(data), data, True, rng.random() < 0.5))
        elif kind > 0.8:
            frames.append((ident, ext, True, rng.randint(0, 8), b"", False, False))
        else:
            data = rng.randbytes(rng.randint(0, 8))
            frames.append((ident, ext, False, len(data), data, False, False))
    return frames


def full_message(frame: FullFrame) -> can.Message:
    ident, ext, rtr, dlc, data, fd, brs = frame
    if rtr:
        return can.Message(arbitration_id=ident, is_extended_id=ext, is_remote_frame=True, dlc=dlc)
    return can.Message(arbitration_id=ident, is_extended_id=ext, data=data, is_fd=fd, bitrate_switch=brs)


def to_full(msg: can.Message) -> FullFrame:
    data = b"" if msg.is_remote_frame else bytes(msg.data)
    dlc = len(data) if msg.is_fd else msg.dlc
    return (msg.arbitration_id, msg.is_extended_id, msg.is_remote_frame, dlc, data, msg.is_fd, msg.bitrate_switch)


def reply_to(frame: FullFrame) -> FullFrame:
    """What hil_can.answer() sends back: id + 1 within its width, data bytes + 1, flags kept."""
    ident, ext, rtr, dlc, data, fd, brs = frame
    data = data if rtr else bytes((b + 1) & 0xFF for b in data)
    return ((ident + 1) & (0x1FFFFFFF if ext else 0x7FF), ext, rtr, dlc, data, fd, brs)


def pack_full(frames: list[FullFrame]) -> bytes:
    """hil_can.pack() records, for hil_can.unpack() on the board."""
    out = bytearray()
    for ident, ext, rtr, dlc, data, fd, brs in frames:
        out += ident.to_bytes(4, "big") + bytes([ext | rtr << 1 | fd << 2 | brs << 3, dlc, len(data)]) + data
    return bytes(out)


def unpack_full(raw: bytes) -> list[FullFrame]:
    frames, i = [], 0
    while i < len(raw):
        ident, flags, dlc, n = int.from_bytes(raw[i : i + 4], "big"), raw[i + 4], raw[i + 5], raw[i + 6]
        frames.append((ident, bool(flags & 1), bool(flags & 2), dlc, raw[i + 7 : i + 7 + n], bool(flags & 4),
                       bool(flags & 8)))  # fmt: skip
        i += 7 + n
    return frames


def show(frame: FullFrame) -> str:
    ident, ext, rtr, dlc, data, fd, brs = frame
    kind = ("FD" + ("+BRS" if brs else "") + " " if fd else "") + ("ext" if ext else "std")
    body = f"RTR dlc={dlc}" if rtr else f"dlc={dlc} {data.hex() or '-'}"
    return f"<{kind} 0x{ident:X} {body}>"


FIELDS = ("id", "extended", "remote", "dlc", "data", "fd", "brs")


def first_difference(expected: list[FullFrame], got: list[FullFrame], what: str = "frame") -> str | None:
    """None when got is expected exactly; else what went wrong first: lost, duplicated, reordered
    or altered, with the index, both frames and the totals."""
    if got == expected:
        return None
    whats = what[:-1] + "ies" if what.endswith("y") else what + "s"
    totals = f"{len(got)} {whats} for {len(expected)} expected"
    i = next((k for k, (e, g) in enumerate(zip(expected, got, strict=False)) if e != g), min(len(expected), len(got)))
    if i == len(expected):
        return f"{totals}: {len(got) - len(expected)} extra after the last, first {show(got[i])}: duplicated or extra"
    if i == len(got):
        return f"{totals}: {whats} #{i}..#{len(expected) - 1} never came: lost"
    e, g = expected[i], got[i]
    later = expected[i + 1 : i + 1 + 1000]
    if g in later:
        j = i + 1 + later.index(g)
        how = "reordered" if e in got[i + 1 : i + 1 + 1000] else "lost"
        return f"{totals}: {what} #{i}: expected {show(e)} but got {show(g)}, which is #{j}: {what} #{i} {how}"
    if g in expected[:i]:
        return f"{totals}: {what} #{i}: expected {show(e)} but got {show(g)} again (#{expected.index(g)}): duplicated"
    fields = ", ".join(f"{n} {a!r} -> {b!r}" for n, a, b in zip(FIELDS, e, g, strict=True) if a != b)
    return f"{totals}: {what} #{i}: expected {show(e)} but got {show(g)}: altered ({fields})"


# --- the board's loss counters --------------------------------------------------------------------------
COUNTERS = {
    "overflow": "hil_can's receive queue was full (rx_queue)",
    "sock_rxq_drops": "the SocketCAN socket's receive queue was full (the kernel's sk_drops, which SO_RXQ_OVFL "
    "reports: /proc/net/can/rcvlist_* matches minus frames read)",
    "slcan_bad_lines": "SLCAN lines that were no valid frame (a frame garbled on the way in)",
    "uart_rx_overruns": "the UART's RX overrun flag (bytes lost on the way in)",
    "hw_overruns": "the CAN controller's RX overruns",
}


def counter_meaning(name: str) -> str:
    if name in COUNTERS:
        return COUNTERS[name]
    ifname, _, stat = name.partition(".")
    return f"/sys/class/net/{ifname}/statistics/{stat} since the bus was opened"


def lost_counters(stats: dict) -> str | None:
    """None when the board counted no lost frame, else which of its counters did, and what each means."""
    lost = stats.get("lost")
    if lost is None:
        return f"the board reported no loss counters (stats: {stats})"
    if not lost:
        return None
    return "the board counted lost frames: " + "; ".join(f"{k} = {v} ({counter_meaning(k)})" for k, v in lost.items())


# --- echo of mixed frames: flow-controlled, paced or unpaced ---------------------------------------------
@dataclass
class EchoRun:
    got: list[FullFrame]
    send_s: float  # from the first frame sent to the last
    total_s: float  # from the first frame sent to the last reply received

    def rate(self) -> float:
        return len(self.got) / self.total_s if self.total_s > 0 else 0.0


def echo_exchange(
    bus: can.BusABC,
    frames: list[FullFrame],
    *,
    window: int | None = None,
    rate: float | None = None,
    idle: float = 10.0,
) -> EchoRun:
    """Send ``frames`` to the board's echo app and collect its replies in order. ``window``: at most
    that many unanswered (canfdtest's flow control); ``rate``: frames per second; neither: unpaced.
    A sender thread keeps sending while this thread receives, so neither side's buffers fill up.
    Ends when as many replies as frames came (plus 0.3 s for extras) or ``idle`` s passed without one."""
    credit = threading.Semaphore(window) if window else None
    stop = threading.Event()
    sent_at: list[float] = []
    failure: list[BaseException] = []

    def sender() -> None:
        try:
            start = time.perf_counter()
            for n, frame in enumerate(frames):
                if credit is not None:
                    while not credit.acquire(timeout=0.2):
                        if stop.is_set():
                            return
                elif rate:
                    wait = start + n / rate - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                if stop.is_set():
                    return
                bus.send(full_message(frame), timeout=30)
                if not sent_at:
                    sent_at.append(time.perf_counter())
            sent_at.append(time.perf_counter())
        except BaseException as exc:  # reported by the caller
            failure.append(exc)

    got: list[FullFrame] = []
    thread = threading.Thread(target=sender, daemon=True)
    t0 = time.perf_counter()
    last = t0
    thread.start()
    try:
        while len(got) < len(frames):
            msg = bus.recv(idle)
            if msg is None:
                break
            last = time.perf_counter()
            got.append(to_full(msg))
            if credit is not None:
                credit.release()
        while (msg := bus.recv(0.3)) is not None:  # anything extra shows up too
            got.append(to_full(msg))
    finally:
        stop.set()
        thread.join(35)
    if failure:
        raise failure[0]
    first = sent_at[0] if sent_at else t0
    return EchoRun(got, (sent_at[-1] if sent_at else t0) - first, last - first)


def board_echo_code(opener: str, app: str, count: int, idle_ms: int = 5000) -> str:
    """The board's echo app (module ``app``'s echo()) for ``count`` frames, then its STATS."""
    return (
        f"import hil_can, {app}\nbus = {opener}\n"
        f"{app}.echo(bus, count={count}, idle_ms={idle_ms})\n"
        "print('STATS', repr(bus.stats()))\nbus.close()\n"
    )


@dataclass
class EchoPhases:
    runs: list[EchoRun]
    problems: list[str]  # the board's loss counters first, then the first difference of a phase
    stats: dict  # the board's stats() after the echo app ended
    echoed: str  # the app's "ECHOED <received> <sent>" line


Phase = tuple[list[FullFrame], "dict | Callable[[list[EchoRun]], dict]"]


def echo_phases(dut: Board, bus: can.BusABC, opener: str, app: str, phases: list[Phase]) -> EchoPhases:
    """The board's echo app (module ``app``) for all phases' frames in one run. A phase is its
    frames and echo_exchange()'s pacing, or a callable giving that from the earlier phases' runs
    (e.g. the rate one measured). A phase with a difference ends the exchange (the board's app then
    ends on its idle timeout)."""
    total = sum(len(frames) for frames, _ in phases)
    running = dut.spawn(board_echo_code(opener, app, total))
    running.wait_for("READY", timeout=30)
    runs: list[EchoRun] = []
    problems: list[str] = []
    try:
        for frames, how in phases:
            run = echo_exchange(bus, frames, **(how(runs) if callable(how) else how))
            runs.append(run)
            problem = first_difference([reply_to(f) for f in frames], run.got, "reply")
            if problem:
                problems.append(f"phase {len(runs)}: {problem}")
                break
    finally:
        result = parse_board_output(running.finish(timeout=300))
    counted = lost_counters(result.stats)
    return EchoPhases(runs, ([counted] if counted else []) + problems, result.stats, " ".join(result.lines))
