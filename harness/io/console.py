"""A board's console: pexpect matching over any Transport, with a log of what the board said.

The log is kept in a file per board (attached to test reports) and its tail in memory, so an
error can quote the last thing the board printed.

A console that floods (garbage at full speed, a print loop) must not grow the harness: the text
kept since the last match (``before``) keeps its first and last BEFORE_KEEP bytes, regular
expressions search a window of SEARCH_WINDOW bytes (exact strings only their own length back),
and the log file keeps its head and a rolling tail under a cap (HIL_CONSOLE_LOG_MIB, default 20).
Whatever is cut out is replaced by one marker saying how many bytes were dropped."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pexpect
from pexpect.spawnbase import SpawnBase

from harness.errors import BoardCrashed, BoardDied, ConfigError, ConsoleTimeout
from harness.io.transport import Transport

TAIL_BYTES = 2048
SEARCH_WINDOW = 64 * 1024  # regex expects look this far back (exact strings: their own length)
BEFORE_KEEP = 1024 * 1024  # ``before`` keeps this much of its head and (at least) of its tail
LOG_MIB_ENV = "HIL_CONSOLE_LOG_MIB"
DEFAULT_LOG_MIB = 20
_MIN_LOG_CAP = 64 * 1024


CRASH_LOOKBACK = 256  # bytes before each read that a crash signature may start in
CRASH_DUMP_QUIET = 0.1  # after a signature: the dump has ended once the line is quiet this long
CRASH_DUMP_LIMIT = 0.5  # ... or after this many seconds (a crash that keeps printing)
CRASH_DUMP_BYTES = 8192
QUIET_PROBE = 0.3  # seconds of console silence, while code runs, between on_quiet probes


def crash_pattern(patterns: list[str] | tuple[str, ...]) -> re.Pattern[bytes] | None:
    """One regex for a board's crash signatures ([console] crash in its target file), or None."""
    if not patterns:
        return None
    return re.compile(b"|".join(b"(?:" + p.encode() + b")" for p in patterns), re.MULTILINE)


def printed_text(output: bytes) -> str:
    """What board code printed, as text: UTF-8 (bad bytes replaced), the REPL's CR LF as LF."""
    return output.decode("utf-8", "replace").replace("\r\n", "\n")


def dropped_marker(count: int) -> bytes:
    return f"\n--- hil: {count} bytes dropped ---\n".encode()


_DROPPED = re.compile(rb"\n--- hil: (\d+) bytes dropped ---\n")


def log_cap_from_env() -> int:
    """The console log cap in bytes: HIL_CONSOLE_LOG_MIB (MiB, may be fractional), default 20."""
    raw = os.environ.get(LOG_MIB_ENV, "").strip()
    if not raw:
        return DEFAULT_LOG_MIB * 1024 * 1024
    try:
        cap = int(float(raw) * 1024 * 1024)
    except ValueError:
        raise ConfigError(f"{LOG_MIB_ENV}={raw!r}: give the console log cap in MiB, e.g. 20") from None
    if cap < _MIN_LOG_CAP:
        raise ConfigError(f"{LOG_MIB_ENV}={raw!r}: the console log cap must be at least 0.0625 MiB (64 KiB)")
    return cap


class HeadTail:
    """Bytes that keep their first ``keep`` bytes and at least their last ``keep``, with one
    dropped-bytes marker in between (compacted when the tail reaches twice ``keep``, so each
    byte is copied about once)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.keep - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > 2 * self.keep:
            self.dropped += len(self.tail) - self.keep
            del self.tail[: -self.keep]

    def value(self) -> bytes:
        middle = dropped_marker(self.dropped) if self.dropped else b""
        return bytes(self.head) + middle + bytes(self.tail)


class CappedLog:
    """An append-only log file that never exceeds ``cap`` bytes: it keeps its head (the first
    quarter of the cap) and a rolling tail, with a ``--- hil: N bytes dropped ---`` marker
    between them. The tail holds at least (cap - head) / 2 of the newest bytes; when it would
    overflow the cap, the newest half is moved down behind the marker (the file shrinks).

    A log reopened for the same board (a restart appends) carries on from its marker's count."""

    MARKER_ROOM = 64  # bytes reserved for the marker

    def __init__(self, path: Path, cap: int) -> None:
        if cap < _MIN_LOG_CAP:
            raise ValueError(f"console log cap {cap} is below {_MIN_LOG_CAP} bytes")
        self.path = path
        self.cap = cap
        self.head = cap // 4
        self.keep = (cap - self.head - self.MARKER_ROOM) // 2
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.fh = os.fdopen(fd, "r+b", buffering=0)
        self.size = self.fh.seek(0, os.SEEK_END)
        self.dropped = 0
        self.tail_start = self.head  # where the tail's bytes begin (after the marker, once there is one)
        if self.size > self.head:
            self.fh.seek(self.head)
            found = _DROPPED.match(self.fh.read(self.MARKER_ROOM))
            if found:
                self.dropped = int(found.group(1))
                self.tail_start = self.head + found.end()
            self.fh.seek(self.size)

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.cap:
            if len(data) > self.keep:  # one huge chunk: only its end fits
                self.dropped += len(data) - self.keep
                data = data[-self.keep :]
            self._compact(room=len(data))
        self.fh.write(data)
        self.size += len(data)

    def _compact(self, room: int) -> None:
        """Drop the oldest tail bytes so ``room`` more fit, keeping ``keep - room`` of the newest."""
        keep = max(0, min(self.size - self.tail_start, self.keep - room))
        self.dropped += self.size - self.tail_start - keep
        marker = dropped_marker(self.dropped)
        src, dst = self.size - keep, self.head + len(marker)
        chunk = 1024 * 1024
        for offset in range(0, keep, chunk):  # dst < src: a forward copy never overwrites unread bytes
            self.fh.seek(src + offset)
            block = self.fh.read(min(chunk, keep - offset))
            self.fh.seek(dst + offset)
            self.fh.write(block)
        self.fh.seek(self.head)
        self.fh.write(marker)
        self.tail_start = dst
        self.size = dst + keep
        self.fh.truncate(self.size)
        self.fh.seek(self.size)

    def close(self) -> None:
        self.fh.close()


class Console(SpawnBase):
    def __init__(
        self, transport: Transport, log_path: Path | None = None, timeout: float = 10.0, log_cap: int | None = None,
        crash: list[str] | tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        super().__init__(timeout=timeout, maxread=4096, searchwindowsize=None)
        self.delayafterread = None  # pexpect's default sleep per read costs latency for nothing
        self.transport = transport
        transport.on_event = self.note  # link events (reconnects) become log markers
        self.log_path = log_path
        self._log = CappedLog(log_path, log_cap or log_cap_from_env()) if log_path else None
        self._tail = bytearray()
        self.received = 0  # bytes seen so far (the log may hold fewer: see CappedLog)
        self.before_dropped = 0  # bytes cut out of ``before`` since the last match (0: none)
        self._before_trimmed: BytesIO | None = None  # the _before we last trimmed, and its head's end
        self._before_head_end = 0
        self._crash = crash_pattern(crash)
        self.crash_watch = False  # on while code runs (RawRepl turns it on): a signature is a crash
        self.crashed: BoardCrashed | None = None  # the crash seen, if any (the board is no use after it)
        self.output_from = 0  # ``received`` when the running code's output began (RawRepl sets it)
        # asked while code runs and the console has been quiet for QUIET_PROBE seconds: raises
        # BoardCrashed if the board has crashed without a word (e.g. QEMU's CPU in a fault handler)
        self.on_quiet: Callable[[], None] | None = None

    # pexpect's SpawnBase contract: read_nonblocking + send
    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> bytes:
        if timeout == -1:
            timeout = self.timeout
        data = self._read(size, timeout)
        if not data:
            raise pexpect.TIMEOUT(f"no output from {self.transport.name} in {timeout} s")
        self._record(data)
        self._bound_before()
        return data

    def send(self, data: bytes | str, paced: bool = True) -> int:
        """``paced=False``: bytes the board has room for (see Transport.write_unpaced)."""
        if isinstance(data, str):
            data = data.encode()
        if paced:
            self.transport.write(data)
        else:
            self.transport.write_unpaced(data)
        return len(data)

    def expect_list(self, pattern_list, timeout=-1, searchwindowsize=-1, async_=False, **kw):
        """Regular expressions search the last SEARCH_WINDOW bytes, not everything since the last
        match (pexpect's default copies and searches that whole text on every read)."""
        if searchwindowsize == -1:
            searchwindowsize = SEARCH_WINDOW
        return super().expect_list(pattern_list, timeout, searchwindowsize, async_, **kw)

    def _bound_before(self) -> None:
        """Keep pexpect's text-since-the-last-match (``_before``, what becomes ``before``) to its
        first BEFORE_KEEP bytes, a marker, and its last BEFORE_KEEP..2*BEFORE_KEEP bytes. Runs
        before pexpect appends the new data; the search window (``_buffer``) is always a suffix
        of ``_before`` no longer than the kept tail, so matching and ``before`` stay exact."""
        current = self._before
        if current is not self._before_trimmed:  # pexpect started a new one (a match): a fresh head
            self._before_trimmed, self._before_head_end, self.before_dropped = None, 0, 0
        size = current.seek(0, os.SEEK_END)  # pexpect appends at the end anyway
        keep = max(BEFORE_KEEP, self._buffer.tell())
        if size <= BEFORE_KEEP + 2 * keep + 64:
            return
        value = current.getbuffer()
        head_end = self._before_head_end or BEFORE_KEEP  # the head, with the old marker if any
        self.before_dropped += size - head_end - keep
        head = bytes(value[: min(BEFORE_KEEP, head_end)]) + dropped_marker(self.before_dropped)
        tail = bytes(value[size - keep :])
        del value  # release the export before the old BytesIO goes
        trimmed = BytesIO()
        trimmed.write(head)
        trimmed.write(tail)
        self._before, self._before_trimmed, self._before_head_end = trimmed, trimmed, len(head)

    def _record(self, data: bytes) -> None:
        self.received += len(data)
        if self._log:
            self._log.write(data)
        self._tail += data
        del self._tail[:-TAIL_BYTES]
        if self.crash_watch and self._crash:
            # the new bytes and a little before them (a signature may straddle two reads), but
            # nothing from before the code started (a late banner, the previous exec's output)
            window = min(len(data) + CRASH_LOOKBACK, self.received - self.output_from, len(self._tail))
            found = self._crash.search(bytes(self._tail[-window:])) if window > 0 else None
            if found:
                self._crashed(found.group(0))

    def _read(self, size: int, timeout: float | None) -> bytes:
        """The transport's read; while code runs on a board with an on_quiet probe, the wait is cut
        into QUIET_PROBE slices with the probe asked between them."""
        probe = self.on_quiet if self.crash_watch else None
        if probe is None or (timeout is not None and timeout <= QUIET_PROBE):
            return self.transport.read(size, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = QUIET_PROBE if deadline is None else deadline - time.monotonic()
            data = self.transport.read(size, max(0.0, min(left, QUIET_PROBE)))
            if data or left <= QUIET_PROBE:
                return data
            try:
                probe()
            except BoardCrashed as exc:
                self.crash_watch, self.crashed = False, exc
                exc.output = self.code_output()
                raise

    def code_output(self) -> str:
        """What the running code has printed so far (as far as the tail reaches back)."""
        printed = min(self.received - self.output_from, len(self._tail))
        output = bytes(self._tail[len(self._tail) - printed :]) if printed > 0 else b""
        return printed_text(output)

    def watch_crashes(self) -> None:
        """Code has started running: from here on a crash signature is a crash (one already
        buffered with the start of its output too), and the code's output starts here."""
        pending = self.buffer
        self.output_from = self.received - len(pending)
        self.crash_watch = True
        found = self._crash.search(pending) if self._crash and pending else None
        if found:
            self._crashed(found.group(0))

    def crash_in(self, text: str) -> str | None:
        """The crash signature in ``text`` (a launcher's account of a board that went away), if any."""
        found = self._crash.search(text.encode("utf-8", "replace")) if self._crash else None
        return found.group(0).decode("utf-8", "replace").strip() if found else None

    def _crashed(self, signature: bytes) -> None:
        """A crash signature went by: take the rest of the dump (until the line goes quiet) and
        raise BoardCrashed with it. The board will not answer again: no timeout is waited out."""
        self.crash_watch = False
        start = self._tail.rfind(signature)
        start = self._tail.rfind(b"\n", 0, max(start, 0)) + 1  # from the start of its line
        dump = bytearray(self._tail[start:])
        printed = self.received - len(self._tail) + start - self.output_from  # by the code, before the dump
        output = bytes(self._tail[max(0, start - printed) : start]) if printed > 0 else b""
        deadline = time.monotonic() + CRASH_DUMP_LIMIT
        while len(dump) < CRASH_DUMP_BYTES and (left := deadline - time.monotonic()) > 0:
            try:
                chunk = self.transport.read(4096, min(CRASH_DUMP_QUIET, left))
            except BoardDied:  # the machine ended itself after printing: the dump is complete
                break
            if not chunk:
                break
            self._record(chunk)
            dump += chunk
        text = bytes(dump[:CRASH_DUMP_BYTES]).decode("utf-8", "replace").replace("\r", "").strip("\n")
        self._consumed()
        self.crashed = BoardCrashed(signature.decode("utf-8", "replace").strip(), text)
        self.crashed.output = printed_text(output)
        raise self.crashed

    def note(self, text: str) -> None:
        """Write a harness marker line into the log (not into the tail)."""
        if self._log:
            self._log.write(f"\n--- hil {time.strftime('%H:%M:%S')} {text} ---\n".encode())

    @property
    def log_dropped(self) -> int:
        """Bytes the log's cap has dropped so far (from its middle)."""
        return self._log.dropped if self._log else 0

    def tail(self, limit: int = 400) -> str:
        text = bytes(self._tail[-limit:]).decode("utf-8", "replace")
        return text.replace("\r", "")

    def read_until(self, marker: bytes, timeout: float) -> bytes:
        """Wait for an exact marker and return what came before it: pexpect's expect_exact for one
        marker, without its per-call machinery (the exec hot path calls this three times per round
        trip). Each byte is searched once (plus the marker's length back); ``before`` is bounded
        as in expect; pexpect.TIMEOUT leaves everything unconsumed for the next expect."""
        back = len(marker) - 1
        kept = HeadTail(BEFORE_KEEP)
        pending = self._before.getvalue()  # unconsumed since the last match (a suffix of which is _buffer)
        deadline = time.monotonic() + timeout
        while True:
            found = pending.find(marker)
            if found >= 0:
                kept.add(pending[:found])
                rest = pending[found + len(marker) :]
                self._buffer, self._before = self.buffer_type(), self.buffer_type()
                self._buffer.write(rest)
                self._before.write(rest)
                self.before, self.after, self.match, self.match_index = kept.value(), marker, marker, 0
                self.before_dropped = kept.dropped
                return self.before
            cut = max(0, len(pending) - back)
            kept.add(pending[:cut])
            pending = pending[cut:]
            left = deadline - time.monotonic()
            data = self._read(self.maxread, left) if left > 0 else b""
            if not data:
                unconsumed = kept.value() + pending
                self._consumed()
                self._before.write(unconsumed)
                self._buffer.write(unconsumed[-SEARCH_WINDOW:])
                self.before = unconsumed
                raise pexpect.TIMEOUT(f"no {marker!r} from {self.transport.name} in {timeout} s")
            self._record(data)
            pending += data

    def expect_bytes(self, marker: bytes, timeout: float, what: str) -> bytes:
        """Wait for an exact marker; return what came before it. Fails fast with the console tail."""
        try:
            self.read_until(marker, timeout)
        except pexpect.TIMEOUT:
            raise ConsoleTimeout(
                f"{self.transport.name}: no {what} within {timeout:g} s; console tail: {self.tail(200)!r}"
            ) from None
        return self.before

    def _consumed(self) -> None:
        """Everything buffered has been handed out or thrown away: a later expect must not search it again."""
        self._buffer = self.buffer_type()
        self._before = self.buffer_type()

    def read_some(self, timeout: float | None) -> bytes:
        """Whatever is buffered, else what arrives within ``timeout`` (b"" if nothing)."""
        if self.buffer:
            data = self.buffer
            self._consumed()
            return data
        try:
            return self.read_nonblocking(self.maxread, timeout)
        except pexpect.TIMEOUT:
            return b""

    def flush_input(self, quiet: float = 0.02, limit: float = 0.5) -> bytes:
        """Discard what is buffered or arriving right now (and keep it in the log). Returns it,
        clipped like ``before`` when it is a flood."""
        junk = HeadTail(BEFORE_KEEP)
        junk.add(self.buffer)
        end = time.monotonic() + limit
        while time.monotonic() < end:
            chunk = self.transport.read(4096, quiet)
            if not chunk:
                break
            self._record(chunk)
            junk.add(chunk)
        self._consumed()
        self.before = b""
        return junk.value()

    def close(self) -> None:
        self.transport.close()
        if self._log:
            self._log.close()
            self._log = None
