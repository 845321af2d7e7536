"""A board's evidence journal: timestamped entries (console bytes both ways, harness events, CAN
frames) kept in memory, bounded, so a failing test's slice of it can be put on one timeline
(harness/report/timeline.py).

Each entry is (wall-clock time, source, payload). The journal keeps at most ``cap`` bytes (a
payload's size plus a fixed overhead per entry, so a flood of one-byte reads is bounded too);
past it the oldest entries go and are counted, so a slice can say how many it lost."""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from harness.errors import ConfigError

CAP_ENV = "HIL_JOURNAL_MIB"
DEFAULT_CAP = 8 * 1024 * 1024
ENTRY_OVERHEAD = 96  # bytes an entry costs beyond its payload (tuple, float, str refs)

# sources; the timeline prints them as they are
HOST_TO_BOARD = "host>board"
BOARD_TO_HOST = "board>host"
HARNESS = "harness"
NET = "net"
CAN = "can"


class Entry(NamedTuple):  # a tuple: made for every console chunk, so cheap to make
    t: float  # time.time() when it happened
    source: str
    payload: Any  # bytes (console), str (events), or a source's own record (a can.Message)
    cost: int = 0  # bytes it counts for against the journal's cap


@dataclass
class Slice:
    entries: list[Entry]
    dropped: int  # entries of the requested span the cap had already dropped (0: complete)


def cap_from_env() -> int:
    """The journal cap in bytes: HIL_JOURNAL_MIB (MiB, may be fractional), default 8."""
    raw = os.environ.get(CAP_ENV, "").strip()
    if not raw:
        return DEFAULT_CAP
    try:
        cap = int(float(raw) * 1024 * 1024)
    except ValueError:
        raise ConfigError(f"{CAP_ENV}={raw!r}: give the evidence journal cap in MiB, e.g. 8") from None
    if cap < 64 * 1024:
        raise ConfigError(f"{CAP_ENV}={raw!r}: the evidence journal cap must be at least 0.0625 MiB (64 KiB)")
    return cap


class Journal:
    """Entries in time order (appends happen as things happen), the oldest dropped past ``cap``."""

    def __init__(self, cap: int | None = None, clock=time.time) -> None:
        self.cap = cap or cap_from_env()
        self.clock = clock
        self._entries: deque[Entry] = deque()
        self._size = 0
        self.dropped = 0  # entries dropped so far
        self.last_dropped_t = float("-inf")  # the newest dropped entry's time

    def add(self, source: str, payload: Any, size: int | None = None, t: float | None = None) -> None:
        if t is None:
            t = self.clock()
        entries = self._entries
        if entries and t < entries[-1].t:  # a clock step back: keep the order
            t = entries[-1].t
        if size is None:
            size = len(payload) if type(payload) in (bytes, str) else 64
        cost = size + ENTRY_OVERHEAD
        entries.append(Entry(t, source, payload, cost))
        self._size += cost
        while self._size > self.cap and len(entries) > 1:
            old = entries.popleft()
            self._size -= old.cost
            self.dropped += 1
            self.last_dropped_t = old.t

    def event(self, text: str) -> None:
        """A harness event (boot, soft reset, restart, retry, lease)."""
        self.add(HARNESS, text)

    def since(self, t: float) -> Slice:
        """The entries at or after ``t``; ``dropped`` is how many of them the cap dropped (a
        count of all dropped entries when some dropped one was that recent)."""
        entries = list(self._entries)
        start = bisect_left([e.t for e in entries], t)
        return Slice(entries[start:], self.dropped if self.last_dropped_t >= t else 0)

    def __len__(self) -> int:
        return len(self._entries)
