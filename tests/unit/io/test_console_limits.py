"""A console that floods: the Console's buffers, ``before`` and the log file stay bounded (head +
``--- hil: N bytes dropped ---`` + tail), and a pattern arriving at the end of the flood is still
matched. Buffer sizes are measured directly (RSS is the integration test's business)."""

from __future__ import annotations

import re

import pexpect
import pytest

from harness.errors import ConfigError, ConsoleTimeout
from harness.io.console import BEFORE_KEEP, SEARCH_WINDOW, CappedLog, Console, dropped_marker, log_cap_from_env
from harness.io.transport import Transport

MiB = 1024 * 1024
BLOCK = bytes(b for b in range(256) if b not in b">\n\r\x04") * 17  # no prompt can form in it
PERIOD = 4091  # a prime: every offset of the stream reads differently


def stream(start: int, n: int) -> bytes:
    """Bytes [start, start + n) of an endless, position-dependent garbage stream."""
    reps = (start % PERIOD + n) // PERIOD + 2
    offset = start % PERIOD
    return (BLOCK[:PERIOD] * reps)[offset : offset + n]


class FloodTransport(Transport):
    """``flood`` bytes of garbage at full speed (no waiting), then ``then``, then silence.
    Samples the console's buffers at every read."""

    name = "flood0"

    def __init__(self, flood: int, then: bytes = b"") -> None:
        super().__init__()
        self.flood, self.then, self.pos = flood, then, 0
        self.console: Console | None = None
        self.peak_before = self.peak_buffer = 0

    def read(self, size: int, timeout: float | None) -> bytes:
        if self.console is not None:
            self.peak_before = max(self.peak_before, self.console._before.getbuffer().nbytes)
            self.peak_buffer = max(self.peak_buffer, self.console._buffer.getbuffer().nbytes)
        if self.pos < self.flood:
            n = min(size, self.flood - self.pos)
            self.pos += n
            return stream(self.pos - n, n)
        data, self.then = self.then[:size], self.then[size:]
        return data

    def _write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def flooding_console(tmp_path, flood: int, then: bytes = b"", cap: int = 2 * MiB) -> tuple[Console, FloodTransport]:
    transport = FloodTransport(flood, then)
    console = Console(transport, tmp_path / "flood.log", timeout=0.2, log_cap=cap)
    transport.console = console
    return console, transport


def split_dropped(text: bytes) -> tuple[bytes, int, bytes]:
    """head, dropped count, tail around the one marker."""
    found = list(re.finditer(rb"\n--- hil: (\d+) bytes dropped ---\n", text))
    assert len(found) == 1, f"{len(found)} dropped markers"
    m = found[0]
    return text[: m.start()], int(m.group(1)), text[m.end() :]


def test_prompt_after_200_mb_flood_is_matched_with_bounded_buffers_and_log(tmp_path):
    flood = 200 * MiB
    console, transport = flooding_console(tmp_path, flood, b"\r\n>>> after")
    before = console.expect_bytes(b">>> ", timeout=60, what="prompt")
    assert console.received == flood + len(b"\r\n>>> after")
    # before: the flood's first BEFORE_KEEP bytes, a marker, and its newest bytes, exactly
    head, dropped, tail = split_dropped(before)
    assert head == stream(0, BEFORE_KEEP)
    assert BEFORE_KEEP <= len(tail) - 2 <= 2 * BEFORE_KEEP + 4096
    assert tail == stream(flood - (len(tail) - 2), len(tail) - 2) + b"\r\n"
    assert len(head) + dropped + len(tail) == flood + 2
    assert console.before_dropped == dropped
    # what pexpect keeps in memory while searching stayed small
    assert transport.peak_before <= 3 * BEFORE_KEEP + 4096 + 64
    assert transport.peak_buffer <= 4096 + len(b">>> ")
    assert console.read_some(0.05) == b"after"
    assert console.tail(30) == (stream(flood - 28, 28) + b"\r\n>>> after").decode("utf-8", "replace")[-30:].replace(
        "\r", "")
    console.close()
    # the log: under its cap, its head, one marker, its newest bytes, nothing lost unaccounted
    log = (tmp_path / "flood.log").read_bytes()
    assert len(log) <= 2 * MiB
    head, dropped, tail = split_dropped(log)
    assert head == stream(0, len(head)) and len(head) == 2 * MiB // 4
    assert tail.endswith(b">>> after") and tail[:-11] == stream(flood - len(tail) + 11, len(tail) - 11)
    assert len(tail) >= (2 * MiB - 2 * MiB // 4 - 64) // 2
    assert len(head) + dropped + len(tail) == flood + 11
    assert console.log_dropped == 0  # closed: no log any more


def test_regex_after_flood_searches_a_window_not_the_whole_flood(tmp_path):
    flood = 20 * MiB
    console, transport = flooding_console(tmp_path, flood, b"MicroPython v1.25.0 on 2025-04-15; unix\r\n>>> ")
    console.expect(re.compile(rb"MicroPython v?\S+ on [^\r\n]*\r\n>>> "), timeout=30)
    assert console.after.startswith(b"MicroPython v1.25.0")
    assert transport.peak_buffer <= SEARCH_WINDOW + 4096
    assert transport.peak_before <= 3 * BEFORE_KEEP + 4096 + 64
    _, dropped, _ = split_dropped(console.before)
    assert dropped > flood - 4 * BEFORE_KEEP


def test_waiting_in_slices_through_a_flood_stays_bounded_then_finds_the_prompt(tmp_path):
    """Like Board._wait_prompt: many short expects time out mid-flood, each failing with one line;
    the prompt at the end is still found, and no timeout copies the whole flood into ``before``."""
    flood = 30 * MiB

    class Paced(FloodTransport):
        def read(self, size, timeout):  # 1 MiB per expect call: it times out between them
            if self.pos and self.pos % MiB == 0 and self.pos < self.flood and not getattr(self, "paused", False):
                self.paused = True
                return b""
            self.paused = False
            return super().read(size, timeout)

    transport = Paced(flood, b"\r\n>>> ")
    console = Console(transport, tmp_path / "f.log", timeout=0.2, log_cap=MiB)
    transport.console = console
    timeouts = 0
    while True:
        try:
            console.expect_bytes(b">>> ", timeout=0.5, what="prompt")
            break
        except ConsoleTimeout as exc:
            timeouts += 1
            assert "\n" not in str(exc) and str(exc).startswith("flood0: no prompt within 0.5 s; console tail: ")
            assert len(console.before) <= 3 * BEFORE_KEEP + 4096 + 64
    assert timeouts >= 20
    assert transport.peak_before <= 3 * BEFORE_KEEP + 4096 + 64
    console.close()
    assert (tmp_path / "f.log").stat().st_size <= MiB


def test_flush_input_returns_a_clipped_flood_and_logs_it(tmp_path):
    console, _ = flooding_console(tmp_path, 10 * MiB, cap=MiB)
    junk = console.flush_input(limit=30)
    head, dropped, tail = split_dropped(junk)
    assert head == stream(0, BEFORE_KEEP) and tail == stream(10 * MiB - len(tail), len(tail))
    assert len(head) + dropped + len(tail) == 10 * MiB == console.received
    assert console.log_dropped > 0
    console.close()
    assert (tmp_path / "flood.log").stat().st_size <= MiB


def test_consumed_output_is_not_searched_again(tmp_path):
    """read_some and flush_input hand out or discard what is buffered: a later expect must not
    match a stale copy of it (pexpect keeps one in its text-since-the-last-match)."""
    console, _ = flooding_console(tmp_path, 0, b"xA>>> y")
    console.expect_exact(b"A", timeout=0.2)
    assert console.read_some(0.05) == b">>> y"
    with pytest.raises(pexpect.TIMEOUT):
        console.expect_exact(b">>> ", timeout=0.1)
    console, _ = flooding_console(tmp_path, 0, b"xA>>> y")
    console.expect_exact(b"A", timeout=0.2)
    assert console.flush_input() == b">>> y"
    with pytest.raises(pexpect.TIMEOUT):
        console.expect_exact(b">>> ", timeout=0.1)


def test_capped_log_keeps_head_and_newest_and_continues_after_a_restart(tmp_path):
    path = tmp_path / "b.log"
    cap = 64 * 1024
    log = CappedLog(path, cap)
    written = b"".join(f"{i:07d}\n".encode() for i in range(40000))  # 320 KB of numbered lines
    for i in range(0, len(written), 1000):
        log.write(written[i : i + 1000])
        assert log.size <= cap and path.stat().st_size == log.size
    log.close()
    head, dropped, tail = split_dropped(path.read_bytes())
    assert head == written[: cap // 4]
    assert tail == written[-len(tail) :] and len(tail) >= (cap - cap // 4 - 64) // 2
    assert len(head) + dropped + len(tail) == len(written)
    # a restarted board's console appends to the same file: the count carries on, one marker
    log = CappedLog(path, cap)
    log.write(b"x" * 100_000)
    log.write(b"boot again\n")
    log.close()
    head2, dropped2, tail2 = split_dropped(path.read_bytes())
    assert head2 == head and tail2.endswith(b"x" * 1000 + b"boot again\n")
    assert len(head2) + dropped2 + len(tail2) == len(written) + 100_011
    # one chunk bigger than the whole tail: its end is kept
    log = CappedLog(path, cap)
    log.write(bytes(range(256)) * 1000)
    log.close()
    _, _, tail3 = split_dropped(path.read_bytes())
    assert tail3 == (bytes(range(256)) * 1000)[-len(tail3) :]
    assert path.stat().st_size <= cap


def test_marker_text():
    assert dropped_marker(12345) == b"\n--- hil: 12345 bytes dropped ---\n"


def test_log_cap_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HIL_CONSOLE_LOG_MIB", raising=False)
    assert log_cap_from_env() == 20 * MiB
    monkeypatch.setenv("HIL_CONSOLE_LOG_MIB", "0.5")
    assert log_cap_from_env() == MiB // 2
    console = Console(FloodTransport(3 * MiB), tmp_path / "e.log", timeout=0.2)
    console.flush_input(limit=30)
    console.close()
    assert (tmp_path / "e.log").stat().st_size <= MiB // 2
    for bad in ("lots", "0.01"):
        monkeypatch.setenv("HIL_CONSOLE_LOG_MIB", bad)
        with pytest.raises(ConfigError, match="HIL_CONSOLE_LOG_MIB"):
            log_cap_from_env()
