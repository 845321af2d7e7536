"""The evidence journal: entries in time order, sliced by time, bounded by bytes with the drops counted."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.report.journal import BOARD_TO_HOST, ENTRY_OVERHEAD, HARNESS, HOST_TO_BOARD, Journal, cap_from_env


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_entries_are_sliced_from_a_time_on():
    journal = Journal(cap=1 << 20, clock=Clock())
    journal.add(HOST_TO_BOARD, b"\x05A\x01")  # t=101
    journal.event("soft reset fk")  # t=102
    journal.add(BOARD_TO_HOST, b"R\x01")  # t=103
    span = journal.since(102.0)
    assert [(e.t, e.source, e.payload) for e in span.entries] == [
        (102.0, HARNESS, "soft reset fk"), (103.0, BOARD_TO_HOST, b"R\x01"),
    ]  # fmt: skip
    assert span.dropped == 0 and len(journal) == 3
    assert journal.since(200.0).entries == []


def test_a_clock_stepping_back_keeps_the_order():
    journal = Journal(cap=1 << 20)
    journal.add(HARNESS, "a", t=50.0)
    journal.add(HARNESS, "b", t=49.0)  # NTP stepped the wall clock back
    assert [e.t for e in journal.since(0).entries] == [50.0, 50.0]


def test_the_cap_drops_the_oldest_and_a_slice_says_so():
    cap = 10 * (100 + ENTRY_OVERHEAD)
    journal = Journal(cap=cap, clock=Clock())
    for _ in range(25):
        journal.add(BOARD_TO_HOST, b"x" * 100)
    assert len(journal) == 10 and journal.dropped == 15  # memory stays bounded by the cap
    assert journal.since(0).dropped == 15  # the span reached back into what was dropped
    assert journal.since(journal.since(0).entries[0].t).dropped == 0  # a span after the drops is whole


def test_one_byte_reads_are_bounded_too():
    journal = Journal(cap=100 * (1 + ENTRY_OVERHEAD), clock=Clock())
    for _ in range(1000):
        journal.add(BOARD_TO_HOST, b"x")
    assert len(journal) == 100


def test_cap_from_env(monkeypatch):
    monkeypatch.delenv("HIL_JOURNAL_MIB", raising=False)
    assert cap_from_env() == 8 * 1024 * 1024
    monkeypatch.setenv("HIL_JOURNAL_MIB", "0.5")
    assert cap_from_env() == 512 * 1024
    for bad in ("lots", "0.01"):
        monkeypatch.setenv("HIL_JOURNAL_MIB", bad)
        with pytest.raises(ConfigError, match="HIL_JOURNAL_MIB"):
            cap_from_env()
