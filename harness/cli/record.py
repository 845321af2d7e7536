"""`hil record BOARD FILE`: a console session of a real (or emulated) board, kept as a file that
plays back as that board (``replay:FILE``, harness/io/recording.py).

    hil record mps2_an385 session.hilrec                 # the default session (exec path, exception, soft reset)
    hil record native s.hilrec -c "print(1)" -c "<soft_reset>" -c "import sys; print(sys.path)"

The board boots as usual; the recording starts at its friendly prompt, with a REPL client of its
own, so a replay needs nothing but the file. The harness's unit tests of the REPL client run on
such recordings of every board (tests/unit/io/recordings/, remade with `make recordings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console as RichConsole

from harness.config.boards import find_board

err = RichConsole(stderr=True)


def record(
    board: str,
    out: Path,
    code: Annotated[list[str] | None, typer.Option(
        "-c", "--code", help="code to run (repeatable, in order); \"<soft_reset>\" for a soft reset; "
        "default: a session of the whole exec path")] = None,
) -> None:
    """Record a console session of BOARD into OUT: every byte both ways, with timestamps, and what
    each step gave (a test vector for the REPL client)."""
    from harness.board import Board
    from harness.io.recording import DEFAULT_SESSION, RecordingTransport, record_session
    from harness.io.repl import RawRepl, client_settings

    spec = find_board(board)
    with Board(spec, log=lambda m: err.print(m, highlight=False)) as b:
        assert b.console and b.repl
        b.repl.exit_raw()
        b.console.flush_input()
        settings = client_settings(spec.console)
        # the board's write pacing changes what the client sends (see RawRepl.send_code): kept too
        pacing = {"write_chunk": spec.console.write_chunk, "write_gap_ms": spec.console.write_gap_ms}
        recorder = RecordingTransport(b.console.transport, out, board=spec.name, header=settings | pacing)
        b.console.transport = recorder
        try:
            steps = record_session(RawRepl(b.console, **settings), recorder, code or DEFAULT_SESSION)
        finally:
            b.console.transport = recorder.inner
            recorder.finish()
    err.print(f"{board}: {len(steps)} steps recorded in {out} (replay it as port replay:{out})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(name="record")(record)
