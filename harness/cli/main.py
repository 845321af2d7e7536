"""The `hil` command: list boards, build images, boot a board to an interactive console, run suites.

User mistakes (bad target file, unknown board, missing port) end in one line on stderr and
exit status 2, never a traceback."""

from __future__ import annotations

import atexit
import os
import select
import signal
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console as RichConsole
from rich.table import Table

from harness.cache import disk_errors
from harness.config.boards import board_files, find_board, installation_problems, load_board, targets_dir
from harness.errors import ConfigError, HarnessError
from harness.paths import resource

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Hardware-in-the-loop tests for MicroPython boards.")
out = RichConsole()
err = RichConsole(stderr=True)
DEFAULT_SUITES = ["suites"]


@app.command()
def boards() -> None:
    """Table of boards and their capabilities (every target file is validated)."""
    table = Table(title=f"boards in {targets_dir()}")
    for col in ("board", "launch", "image", "capabilities", "heap", "description"):
        table.add_column(col)
    problems = []
    for path in board_files():
        try:
            spec = load_board(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        problems += installation_problems(spec)  # e.g. launch.binary not on PATH
        where = spec.launch.describe()
        table.add_row(
            spec.name, f"{spec.launch.kind}: {where}", spec.image.builder,
            ", ".join(spec.capabilities.listed()) or "-",
            f"{spec.capabilities.heap_kb} KB" if spec.capabilities.heap_kb else "-", spec.description,
        )  # fmt: skip
    out.print(table)
    for problem in problems:
        err.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)


@app.command()
def build(board: str) -> None:
    """Build (or fetch from the cache) BOARD's image."""
    from harness.board import Board

    b = Board(find_board(board), log=lambda m: err.print(m, highlight=False))
    started = time.monotonic()
    try:
        with err.status(f"building {board}..."):
            image = b.build()
    finally:
        b.stop()
    state = "cached" if image.cached else f"built in {time.monotonic() - started:.1f} s"
    out.print(f"{board}: image {image.digest} ({state})")
    for key, path in image.files.items():
        out.print(f"  {key}: {path}")


@app.command()
def boot(
    board: str,
    command: Annotated[str | None, typer.Option("-c", help="run this code and exit instead of an interactive console")]
    = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="seconds -c code may run (default: the "
                                                  "board's console.exec_timeout)")] = None,
) -> None:
    """Boot BOARD and attach to its console (Ctrl-] exits and stops the board)."""
    from harness.board import Board

    b = Board(find_board(board), log=lambda m: err.print(m, highlight=False))
    try:
        with err.status(f"booting {board}..."):
            b.start()
        f = b.facts
        err.print(f"{board}: {f.banner} (ready in {f.boot_seconds:.2f} s, heap {f.heap_bytes} B)", highlight=False)
        if command is not None:
            _run_code(b, command, timeout)
            return
        b.repl.exit_raw()
        err.print("console attached: Ctrl-] to exit", highlight=False)
        _interactive(b)
    finally:
        b.stop()


def _run_code(b, code: str, timeout: float | None) -> None:
    """``hil boot -c``: the board's output on stdout; when the code raises, the board's own traceback
    on stderr and status 1 (as the micropython command does), never the host's."""
    from harness.io.repl import BoardException, ExecTimeout

    try:
        text = b.exec(code, timeout)
    except BoardException as exc:
        _stdout(exc.output)
        sys.stderr.write(exc.board_traceback.replace("\r", "").strip("\n") + "\n")
        sys.stderr.flush()
        raise typer.Exit(1) from None
    except ExecTimeout as exc:
        _stdout(exc.output)  # what it printed before it was stopped
        limit = timeout if timeout is not None else b.spec.console.exec_timeout
        printed = "its output so far is above" if exc.output else "it printed nothing"
        err.print(
            f"hil: error: ExecTimeout: {b.name}: the code ran past {limit:g} s and was interrupted ({printed}); "
            "give it longer with --timeout SECONDS",
            highlight=False, soft_wrap=True, markup=False,
        )  # fmt: skip
        raise typer.Exit(1) from None
    sys.stdout.write(text)


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _interactive(b) -> None:
    """Bridge the terminal and the board console until Ctrl-] or the board goes away."""
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    if saved:
        tty.setraw(stdin)
    try:
        while b.alive():
            ready, _, _ = select.select([stdin], [], [], 0.05)
            if ready:
                data = os.read(stdin, 1024)
                if not data or b"\x1d" in data:
                    break
                b.console.send(data)
            chunk = b.console.read_some(0)
            if chunk:
                os.write(sys.stdout.fileno(), chunk)
    finally:
        if saved:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        sys.stdout.write("\r\n")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    board: Annotated[list[str] | None, typer.Option("--board", "-b", help="board (repeatable)")] = None,
    suite: Annotated[list[str] | None, typer.Option("--suite", "-s", help="suite dir or file (repeatable)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="where reports go")] = Path("hil-out"),
    workers: Annotated[str | None, typer.Option("-n", help="pytest-xdist workers (e.g. 2 or auto)")] = None,
) -> None:
    """Run conformance suites on boards; write JUnit + HTML and print a per-board verdict table.
    Extra arguments go to pytest."""
    import pytest

    out_dir.mkdir(parents=True, exist_ok=True)
    junit, html = out_dir / "junit.xml", out_dir / "report.html"
    junit.unlink(missing_ok=True)
    root = resource("suites").parent
    args = [str(root / s) if not Path(s).exists() else s for s in (suite or DEFAULT_SUITES)]
    args += [f"--board={b}" for b in board or []]
    html.unlink(missing_ok=True)
    args += [f"--junitxml={junit}", f"--hil-logs={out_dir / 'logs'}"]
    args += ["-p", "no:cacheprovider", f"--rootdir={root}", *ctx.args]
    if workers:
        args += ["-n", workers]
    code: int = pytest.ExitCode.INTERRUPTED
    try:
        code = int(pytest.main(args))  # a Ctrl-C in a test: pytest writes JUnit and returns INTERRUPTED
    except KeyboardInterrupt:  # a second Ctrl-C while pytest was winding down
        code = pytest.ExitCode.INTERRUPTED
    finally:
        # Reports are written on any way out, and a further Ctrl-C cannot cut them short.
        interrupted = code == pytest.ExitCode.INTERRUPTED
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            _write_reports(junit, html, interrupted)
        finally:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        err.print("hil: interrupted: the verdicts cover the tests that ran before Ctrl-C", highlight=False)
        sys.exit(130)
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        err.print("error: no tests were collected: check --suite and --board", highlight=False)
    # sys.exit, not typer.Exit: main() runs the app with standalone_mode=False, where click turns
    # typer.Exit into a return value and the status would be lost (CI must see failures).
    sys.exit(code)


def _write_reports(junit: Path, html: Path, interrupted: bool) -> None:
    if not junit.exists():
        return
    from harness.cli.report import print_idle_pairings, print_matrix
    from harness.report.html import write_html
    from harness.report.junit import idle_pairings, read_cases, tally_by_board

    cases = read_cases(junit)
    try:
        write_html(junit, html, cases=cases)  # first: harness/report/html.py, static and self-contained
    finally:
        idle = idle_pairings(cases)
        shown = [c for c in cases if c.board not in idle]  # pairings that ran nothing: one line each
        _print_verdicts(tally_by_board(shown, interrupted=interrupted))
        if shown:
            print_matrix(shown)
        print_idle_pairings(idle)
        out.print(f"JUnit: {junit}   HTML: {html}")


def _print_verdicts(tallies) -> None:
    table = Table(title="per-board verdict")
    for col in ("board", "verdict", "passed", "failed", "errors", "xfail", "skipped", "first problem"):
        table.add_column(col)
    colors = {"PASS": "green", "FAIL": "red", "ERROR": "magenta", "SKIP": "yellow", "INTERRUPTED": "red"}
    for name, t in sorted(tallies.items()):
        v = t.verdict
        table.add_row(
            name, f"[{colors[v]}]{v}[/]", str(t.passed), str(t.failed), str(t.errors), str(t.xfailed), str(t.skipped),
            (t.reasons[0][:100] if t.reasons else ""),
        )  # fmt: skip
    out.print(table)


def _register_extensions() -> None:
    """Command groups that live in their own modules (reports, real devices)."""
    import importlib

    for name in ("harness.cli.report", "harness.cli.devices", "harness.cli.history", "harness.cli.record"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


_register_extensions()


def main() -> None:
    try:
        with disk_errors():  # a read-only or full disk outside the image cache (reports, logs, ...)
            code = app(standalone_mode=False)  # typer.Exit(n) comes back as n without standalone mode
        if isinstance(code, int) and code:
            sys.exit(code)
    except HarnessError as exc:
        err.print(f"hil: error: {exc}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("hil: interrupted", highlight=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here with standalone_mode=False
        # typer ships its own copy of click: recognise its usage errors by shape, not by class
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise


def script() -> NoReturn:
    """The ``hil`` console script: main(), then out without the interpreter's teardown. Freeing a
    run's ~200,000 objects module by module took 0.4 s after the last line was printed; by now
    every report, log and database write is closed, and the atexit hooks (process groups,
    labgrid places) still run."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    script()
