"""One evidence timeline per failing test: the board's console bytes both ways and the harness's
events (boot, soft reset, restart, retry, lease: the board's journal, harness/report/journal.py),
the packets of the test's pcap and the CAN frames that crossed its bus, merged in time order
(harness/report/timeline.py) into the test's JUnit <system-out> and the HTML report.

``--hil-timeline failed`` (the default; $HIL_TIMELINE) builds it for failing and erroring tests
only, ``all`` for every board test, ``off`` never. The span is the test's: from its setup (a retried
test: from its first attempt's, so the retry is on it) to its teardown. The CAN frames of the span
are also written with python-can's logger, one .asc per test (JUnit property ``can_log``), for
every board test that has any, like its pcap."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from harness.board import Board
from harness.pytest.state import INFRA_ERROR, board_param
from harness.report.journal import CAN, HARNESS, Entry, Journal
from harness.report.timeline import TIMELINE_HEADER, merge

MODES = ("failed", "all", "off")
MODE_ENV = "HIL_TIMELINE"
TIMELINE_SECTION = "hil timeline"
CAN_LOG_PROPERTY = "can_log"

START = pytest.StashKey[float]()  # when the test's span began (time.time())
BOARDS = pytest.StashKey[list[Board]]()  # the boards it ran on (a retry may lease a new one)
LABELS = pytest.StashKey[dict[int, str]]()  # id(board) -> its role, on a multi-board test's boards
NOTES = pytest.StashKey[list[Entry]]()  # harness events of the test itself (a retry), not of a board
FAILED = pytest.StashKey[bool]()  # some phase of it failed
PCAP_SHIFT = pytest.StashKey[float | None]()  # its pcap's clock to the host's (None: unknown)
PCAP_STARTED = pytest.StashKey[float]()  # when its capture began (time.time())


def pytest_addoption(parser: pytest.Parser) -> None:
    default = os.environ.get(MODE_ENV, "").strip() or "failed"
    if default not in MODES:
        raise pytest.UsageError(f"{MODE_ENV}={default!r}: use one of {', '.join(MODES)}")
    group = parser.getgroup("hil")
    group.addoption(
        "--hil-timeline", choices=MODES, default=default,
        help="evidence timeline (console both ways, harness events, packets, CAN frames) in JUnit <system-out> "
             "and the HTML report: for failed tests (default), all board tests, or off ($HIL_TIMELINE)",
    )  # fmt: skip


def begin(item: pytest.Item) -> None:
    """The test's span starts now, unless an earlier attempt of it started it."""
    item.stash.setdefault(START, time.time())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A board test's span starts before its fixtures: the first test of a board has its lease and boot on it."""
    if board_param(item) is not None:
        begin(item)


def attach(item: pytest.Item, board: Board, label: str | None = None) -> None:
    """The test runs on ``board``: its journal is sliced for the timeline. ``label``: the board's
    role in a multi-board test (its lines say which board spoke)."""
    boards = item.stash.setdefault(BOARDS, [])
    if all(b is not board for b in boards):
        boards.append(board)
    if label is not None:
        item.stash.setdefault(LABELS, {})[id(board)] = label


def note(item: pytest.Item, text: str) -> None:
    """A harness event of the test (a retry, a quarantine): on its timeline whatever board it ends on."""
    item.stash.setdefault(NOTES, []).append(Entry(time.time(), HARNESS, text))


def capture_clock(board: Board, dump_started: float) -> float | None:
    """Seconds to add to a pcap timestamp from QEMU's filter-dump to get the host's wall clock.
    QEMU stamps a packet with the whole second its dump began (``dump_started``: the file's mtime
    right after it was opened, when QEMU also read the clock) plus its virtual clock, which on a
    cold-booted machine starts when the machine starts running: just before the launcher hands its
    console over (``console_opened_at``), so packets show a few ms late at most, never early. The
    virtual clock stands still while the machine is paused, as it is to save a snapshot, and a
    restored one carries the saved clock on: on a board with snapshots the mapping is unknown (None)."""
    launcher = board.launcher
    if launcher is None or launcher.restored or board.spec.snapshot.enabled or not board.console_opened_at:
        return None
    return board.console_opened_at - int(dump_started)


def write_can_log(item: pytest.Item, journal: Journal, log_dir: Path) -> None:
    """The span's CAN frames to <log_dir>/can/<test>.asc with python-can's logger; a JUnit property."""
    frames = [e.payload for e in journal.since(item.stash.get(START, time.time())).entries if e.source == CAN]
    if not frames:
        return
    from harness.net.canlog import write_log  # python-can: imported only where frames were seen

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-150:]
    path = log_dir / "can" / f"{safe}.asc"
    path.unlink(missing_ok=True)
    write_log(path, frames)
    item.user_properties.append((CAN_LOG_PROPERTY, str(path)))


def timeline_text(item: pytest.Item, boards: list[Board]) -> str:
    start = item.stash.get(START, time.time())
    spans = [board.journal.since(start) for board in boards]
    labels = item.stash.get(LABELS, {})
    # a multi-board test's boards: each board's console lines put together apart, named by role
    roles = [(labels[id(b)], span.entries) for b, span in zip(boards, spans, strict=True) if id(b) in labels]
    mixed = [e for b, span in zip(boards, spans, strict=True) if id(b) not in labels for e in span.entries]
    entries = sorted(mixed + item.stash.get(NOTES, []), key=lambda e: e.t)
    pcap = next((Path(v) for k, v in reversed(item.user_properties) if k == "pcap"), None)
    shift = item.stash.get(PCAP_SHIFT, None)
    notes = []
    if pcap is not None and shift is None:
        first = _first_packet_time(pcap)
        shift = item.stash.get(PCAP_STARTED, start) - first if first is not None else 0.0
        notes.append("packet times: QEMU's clock is not the host's on a board with snapshots (paused to save one, "
                     "or restored); the first packet is put where the capture began, the rest keep their spacing")
    text = merge(entries, start, pcap=pcap if pcap and pcap.exists() else None, pcap_shift=shift or 0.0,
                 dropped=sum(span.dropped for span in spans), boards=roles)  # fmt: skip
    return "".join(f"--- hil: {note} ---\n" for note in notes) + text


def _first_packet_time(pcap: Path) -> float | None:
    from harness.report.timeline import pcap_lines

    lines = [line for line in pcap_lines(pcap) if line.t != float("-inf")] if pcap.exists() else []
    return lines[0].t if lines else None


def _boards_of(item: pytest.Item) -> list[Board]:
    return [b for b in item.stash.get(BOARDS, []) if isinstance(getattr(b, "journal", None), Journal)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.stash[FAILED] = True
    if report.when != "teardown":
        return
    mode = item.config.getoption("hil_timeline", "failed")
    boards = _boards_of(item)
    failed = item.stash.get(FAILED, False)
    try:
        if not boards or mode == "off" or (mode == "failed" and not failed):
            return
        report.sections.append((TIMELINE_SECTION, TIMELINE_HEADER + timeline_text(item, boards)))
    finally:
        # a retry's span starts with the first attempt, on whichever boards: the retry is on it
        kept = (START, BOARDS, LABELS, NOTES) if _retrying(item) else ()
        for key in (START, BOARDS, LABELS, NOTES, FAILED, PCAP_SHIFT, PCAP_STARTED):
            if key in item.stash and key not in kept:
                del item.stash[key]


def _retrying(item: pytest.Item) -> bool:
    """This attempt ended with an infrastructure error the retry loop may run again (retry.py)."""
    return INFRA_ERROR in item.stash
