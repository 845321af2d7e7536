"""Record a board's console session, and play one back as a board.

A recording is JSON lines: a header, then one line per chunk, in the order it crossed the link:

    {"hil-recording": 1, "board": "mps2_an385", "port": "/dev/pts/7", "created": "2026-11-26T09:00:00Z"}
    {"t": 0.0013, "dir": "in", "data": "MicroPython v1.25.0 on 2026-07-05; ...\\r\\n>>> "}
    {"t": 0.0020, "dir": "out", "data": "\\u0001"}

``dir`` is "in" (board -> host) or "out" (host -> board); ``data`` is the bytes as latin-1 text,
so a session reads as text and any byte survives; ``t`` is seconds since the recording began.

Lines with a ``step`` key say what the host did at that point and what came of it (``hil record``
writes them: enter_raw, exec with its output or the board's exception, soft_reset), so a recording
is also a test vector: replay the steps through the REPL client, expect the same results.

``RecordingTransport`` wraps any transport and writes such a file as the session goes (flushed
per chunk: a crash or a hung board still leaves everything up to it), and/or appends each chunk, at
its wall-clock time, to an in-memory Journal (harness/report/journal.py: bounded): every board's
console goes through one, so a failing test's console bytes both ways land on its timeline. ``ReplayTransport`` (port
``replay:FILE``) plays a recording back as a board: the host's writes must be the recorded ones,
byte for byte, however they are chunked; after each, the board's recorded answer becomes
readable. A host that says something else fails at once with the offset and both texts, so a
recorded real board can stand in for the hardware in the harness's own tests, and a user's
recording attached to a bug report reproduces a harness problem without the board."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

from harness.config.ports import PortRef
from harness.errors import BoardDied, ConfigError, InfrastructureError
from harness.io.opener import register
from harness.io.repl import BoardException, RawRepl
from harness.io.transport import Transport
from harness.report.journal import BOARD_TO_HOST, HOST_TO_BOARD, Journal

FORMAT = 1
Direction = Literal["in", "out"]


@dataclass
class Chunk:
    t: float
    dir: Direction
    data: bytes


@dataclass
class Step:
    """One thing the host did in a recorded session, and its result."""

    op: Literal["enter_raw", "exec", "soft_reset", "exit_raw"]
    code: str = ""  # exec: the code
    out: str = ""  # exec: what it printed
    error: str = ""  # exec: the board's exception ("ValueError: bad"), if it raised


@dataclass
class Recording:
    header: dict
    chunks: list[Chunk]
    steps: list[Step]


class ReplayMismatch(InfrastructureError):
    """The host wrote something other than what the recorded session wrote at that point."""


class RecordingTransport(Transport):
    """``inner`` as it is, with every chunk both ways appended to ``path`` (a recording file) and/or
    to ``journal`` (in memory, wall-clock times; link events go into it too)."""

    def __init__(self, inner: Transport, path: Path | None = None, board: str = "", header: dict | None = None,
                 journal: Journal | None = None) -> None:  # fmt: skip
        # pacing is the inner transport's (writes go through its write()); its settings are said here
        # too, because the REPL client reads them (is the line paced?)
        super().__init__(inner.write_chunk, inner.write_gap * 1000.0)
        self.inner, self.name, self.journal = inner, inner.name, journal
        self.path = Path(path) if path is not None else None
        self.events = inner.events  # one list: the inner transport reports its link events into it
        self._file: IO[str] | None = None
        self._start = time.monotonic()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
            created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._line({"hil-recording": FORMAT, "board": board, "port": inner.name, "created": created}
                       | (header or {}))  # fmt: skip
        inner.on_event = self._link_event

    def __getattr__(self, name: str):
        """What the wrapper lacks is the inner transport's (its port, its own pacing state)."""
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def _link_event(self, text: str) -> None:
        if self.journal is not None:
            self.journal.event(f"link: {text}")
        if self.on_event:
            self.on_event(text)

    def _line(self, record: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")  # ASCII: no byte can make a line break
            self._file.flush()

    def step(self, step: Step) -> None:
        """Note a step of the session, after its chunks."""
        self._line({"step": step.op, "code": step.code, "out": step.out, "error": step.error})

    def _chunk(self, direction: Direction, data: bytes) -> None:
        if self.journal is not None:
            self.journal.add(BOARD_TO_HOST if direction == "in" else HOST_TO_BOARD, bytes(data))
        if self._file is not None:
            t = round(time.monotonic() - self._start, 6)
            self._line({"t": t, "dir": direction, "data": data.decode("latin-1")})

    def read(self, size: int, timeout: float | None) -> bytes:
        data = self.inner.read(size, timeout)
        if data:
            self._chunk("in", data)
        return data

    def write(self, data: bytes) -> None:
        self._chunk("out", data)
        self.inner.write(data)

    def write_unpaced(self, data: bytes) -> None:
        self._chunk("out", data)
        self.inner.write_unpaced(data)

    def _write(self, data: bytes) -> None:  # write() above is the way in; kept for the interface
        self.write(data)

    def finish(self) -> None:
        """End the recording (the inner transport stays open)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self.inner.close()
        self.finish()


def load_recording(path: Path) -> Recording:
    """A recording, read; a one-line ConfigError naming the file and line if it is not one."""
    path = Path(path)
    try:
        lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such recording; make one with `hil record BOARD {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the recording: {exc}") from None
    recording = Recording({}, [], [])
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if number == 1:
                if not isinstance(record, dict) or record.get("hil-recording") != FORMAT:
                    raise ValueError(f"not a hil recording of format {FORMAT} (the first line is its header)")
                recording.header = record
            elif "step" in record:
                recording.steps.append(Step(record["step"], record["code"], record["out"], record["error"]))
            elif record["dir"] in ("in", "out"):
                recording.chunks.append(Chunk(float(record["t"]), record["dir"], record["data"].encode("latin-1")))
            else:
                raise ValueError(f"dir is {record['dir']!r}; use \"in\" or \"out\"")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeEncodeError) as exc:
            raise ConfigError(f"{path}: line {number}: {exc}; record it again with `hil record`") from None
    if not recording.header:
        raise ConfigError(f"{path}: empty recording; record it again with `hil record`")
    return recording


class ReplayTransport(Transport):
    """A recorded session played back as the board (see the module's docstring)."""

    def __init__(self, path: Path, **pacing) -> None:
        super().__init__(**pacing)
        self.path = Path(path)
        self.recording = load_recording(self.path)
        self.name = f"replay:{self.path}"
        self._chunks = self.recording.chunks
        self._next = 0  # the first chunk not yet played
        self._readable = bytearray()  # board output released to the host, not yet read
        self._expected = bytearray()  # what the host must write next (the current "out" run)
        self._written = 0  # bytes of the host's writes matched so far (for messages)
        self._closed = False
        self._release()

    def _release(self) -> None:
        """Release board output up to the next host write, then queue that write as expected."""
        while self._next < len(self._chunks) and not self._expected:
            chunk = self._chunks[self._next]
            if chunk.dir == "in":
                self._readable += chunk.data
                self._next += 1
                continue
            while self._next < len(self._chunks) and self._chunks[self._next].dir == "out":
                self._expected += self._chunks[self._next].data
                self._next += 1

    @property
    def finished(self) -> bool:
        """Everything recorded has been played and read."""
        return self._next >= len(self._chunks) and not self._readable and not self._expected

    def read(self, size: int, timeout: float | None) -> bytes:
        if self._closed:
            raise BoardDied(f"console {self.name} is closed")
        if not self._readable:
            # nothing more until the host writes (or the recording is over): a recorded board says
            # nothing more, at once, however long the host would wait
            return b""
        data = bytes(self._readable[:size])
        del self._readable[:size]
        return data

    def _write(self, data: bytes) -> None:
        if self._closed:
            raise BoardDied(f"console {self.name} is closed")
        view = memoryview(data)
        while view:
            if not self._expected:
                self._release()
            if not self._expected:
                raise ReplayMismatch(
                    f"{self.path}: the host wrote {bytes(view[:60])!r} at byte {self._written} of its output, "
                    f"after the recorded session ended; record the session again (`hil record`)"
                )
            n = min(len(view), len(self._expected))
            if view[:n] != self._expected[:n]:
                at = next(i for i in range(n) if view[i] != self._expected[i])
                got, want = bytes(view[at : at + 40]), bytes(self._expected[at : at + 40])
                raise ReplayMismatch(
                    f"{self.path}: at byte {self._written + at} of its output the host wrote "
                    f"{got!r} where the recorded session wrote {want!r}; "
                    f"record the session again (`hil record`) if the harness changed on purpose"
                )
            del self._expected[:n]
            view = view[n:]
            self._written += n
            if not self._expected:
                self._release()

    def close(self) -> None:
        self._closed = True


@register("replay")
def _open_replay(ref: PortRef, baudrate: int, *, reconnect_timeout: float = 0.0, **pacing) -> ReplayTransport:
    return ReplayTransport(Path(ref.name), **pacing)


# The session `hil record` runs when given no code: what the REPL client does in every test (enter
# raw mode, short and long code: plain raw mode and raw paste, output, an exception with output
# before it, a soft reset), so a recording exercises the whole exec path of that board.
DEFAULT_SESSION = [
    "print('hello from', __import__('sys').platform)",
    "print(sum(range(10)))",
    "values = [" + ", ".join(str(i * 7919 % 1000) for i in range(120)) + "]\nprint(len(values), sum(values))",
    "raise ValueError('bad value')",
    "print('before')\nprint(1 // 0)",
    "<soft_reset>",
    "print('after reset', 'values' in globals())",
]
SOFT_RESET = "<soft_reset>"


def run_step(repl: RawRepl, op: str, code: str = "") -> Step:
    """Do one step on the REPL client; its result as a Step."""
    if op == "exec":
        try:
            return Step("exec", code, repl.exec(code))
        except BoardException as exc:
            return Step("exec", code, exc.output, exc.message)
    getattr(repl, op)()
    return Step(op)  # type: ignore[arg-type]


def record_session(repl: RawRepl, recorder: RecordingTransport, codes: list[str]) -> list[Step]:
    """Run ``codes`` (SOFT_RESET for a soft reset) from the friendly prompt, noting each step."""
    plan = [("enter_raw", "")] + [("soft_reset", "") if c == SOFT_RESET else ("exec", c) for c in codes]
    steps = []
    for op, code in [*plan, ("exit_raw", "")]:
        step = run_step(repl, op, code)
        recorder.step(step)
        steps.append(step)
    return steps
