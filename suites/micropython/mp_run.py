"""Run a test's source on a board the way run-tests.py records a target run."""

from __future__ import annotations

from harness.io.repl import BoardException

CRASH = "CRASH"  # run-tests.py's marker for code that raised (L328-330, L455)


def run_source(board, source: str, timeout: float | None = None) -> str:
    """The output; when the code raised, the output, the traceback and CRASH (L319-331). A runaway
    test raises the harness's ExecTimeout (a failure; the board is restarted if Ctrl-C fails)."""
    try:
        return board.exec(source, timeout)
    except BoardException as exc:
        return getattr(exc, "output", "") + exc.board_traceback.replace("\r\n", "\n") + CRASH
