"""Boards as fixtures: ``board`` (booted once per session and board), ``dut`` (the same board,
soft-reset before each test, its console text and packet capture attached to the test)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.board import Board
from harness.io.console import Console
from harness.lab.pool import BoardPool
from harness.pytest import evidence
from harness.pytest.state import CONSOLE_SECTION, POOL, board_param

SECTION_BYTES = 20000  # console text attached to one test's report, at most


@pytest.fixture(scope="session")
def board_pool(request: pytest.FixtureRequest) -> BoardPool:
    pool = request.config.stash[POOL]
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest, board_pool: BoardPool) -> Board:
    """The board named by the test's parameter, booted once for the session."""
    name = request.param
    yield board_pool.get(name)
    board_pool.release(name)


@pytest.fixture(autouse=True)
def _hil_fresh_board(request: pytest.FixtureRequest) -> None:
    """Before each board test: a board that died or broke in an earlier test is restarted."""
    name = board_param(request.node)
    if name is not None and "board" in request.fixturenames:
        evidence.attach(request.node, request.getfixturevalue("board"))  # whose journal its timeline slices
        request.config.stash[POOL].ensure_fresh(name)


@pytest.fixture
def dut(request: pytest.FixtureRequest, board: Board) -> Board:
    """The board, soft-reset to a clean interpreter before the test; the test's console output is
    attached to its report and the board's facts to its JUnit properties."""
    item = request.node
    if board.spec.console.reset == "soft" and not board.fresh:
        board.soft_reset()
    board.fresh = False
    mark = ConsoleMark.of(board)
    wall = time.time()
    capture = _start_capture(board, item)
    if capture:  # QEMU opened the pcap and read the clock together (its mtime; else our time before)
        started = capture[1].stat().st_mtime if capture[1].exists() else wall
        item.stash[evidence.PCAP_SHIFT] = evidence.capture_clock(board, started)
        item.stash[evidence.PCAP_STARTED] = wall
    yield board
    if capture:
        _stop_capture(board, item, *capture)
    evidence.write_can_log(item, board.journal, board.log_dir)
    if text := mark.text_since(board):
        item.add_report_section("call", CONSOLE_SECTION, printable(text))


@dataclass
class ConsoleMark:
    """Where a test's console output starts: in the board's console and in its (capped) log."""

    console: Console | None
    received: int  # bytes the console had received
    dropped: int  # bytes its capped log had dropped
    offset: int  # the log file's size

    @classmethod
    def of(cls, board: Board) -> ConsoleMark:
        console = board.console
        offset = board.console_log.stat().st_size if board.console_log.exists() else 0
        return cls(console, console.received if console else 0, console.log_dropped if console else 0, offset)

    def text_since(self, board: Board) -> str:
        """The console text since the mark (at most SECTION_BYTES, its end); "" if the board said
        nothing. A board restarted meanwhile has a new console: then the log's growth decides."""
        console = board.console
        if console is None or not board.console_log.exists():
            return ""
        same = console is self.console
        new = console.received - self.received if same else 0
        with open(board.console_log, "rb") as fh:
            size = fh.seek(0, 2)
            offset = self.offset
            if same and (console.log_dropped != self.dropped or size < offset):
                offset = size - min(max(new, 0), size)  # the capped log dropped bytes: its end is this test's
            if (same and new <= 0) or size <= offset:
                return ""
            fh.seek(max(offset, size - SECTION_BYTES))
            return fh.read().decode("utf-8", "replace").replace("\r", "")


def _start_capture(board: Board, item: pytest.Item) -> tuple[str, Path] | None:
    """Per-test pcap of the board's traffic (QEMU filter-dump on its netdev), when it has a network."""
    if board.launcher is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-150:]
    path = board.log_dir / "pcaps" / f"{safe}.pcap"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    ident = board.launcher.start_capture(path)
    return (ident, path) if ident else None


def _stop_capture(board: Board, item: pytest.Item, ident: str, path: Path) -> None:
    if board.launcher is not None:
        board.launcher.stop_capture(ident)
    if path.exists():
        item.user_properties.append(("pcap", str(path)))


def printable(text: str) -> str:
    """Console text fit for XML and HTML: control bytes (raw REPL framing) shown as ^A, ^D."""
    return "".join(c if c in "\n\t" or " " <= c != "\x7f" else f"^{chr(ord(c) + 64)}" if c < " " else "?"
                   for c in text)


def board_properties(board: Board) -> dict[str, str]:
    f = board.facts
    props = {
        "board": board.name,
        "micropython_version": f.version,
        "banner": f.banner,
        "image_digest": f.image_digest,
        "boot_seconds": f"{f.boot_seconds:.3f}",
        "console_log": str(board.console_log),
    }
    if f.boot_kind:  # how the board running this test started: restored from a snapshot, or cold (and why)
        props["boot_kind"] = f.boot_kind
        if f.boot_note:
            props["boot_note"] = f.boot_note
        if f.snapshot_fallbacks:
            props["snapshot_fallbacks"] = str(f.snapshot_fallbacks)
    return props
