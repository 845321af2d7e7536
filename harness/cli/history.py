"""`hil history`: what the recorded runs say (harness/history/).

    hil history runs                 the newest runs: id, time, label, commit, counts
    hil history flaky                tests that both passed and failed on a board with the same
                                     image and test code within the window, with their flip rate
    hil history show TEST            a test's last N outcomes per board (TEST: part of its id)

The database: --history (off|PATH|URL), else $HIL_HISTORY, else OUT/history.sqlite (--out, as
`hil run --out`; default hil-out)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console as RichConsole
from rich.markup import escape
from rich.table import Table

from harness.errors import HarnessError

out = RichConsole()
history_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="Recorded runs: flaky tests, a test's outcomes per board.")  # fmt: skip
_COLOURS = {"passed": "green", "failed": "red", "error": "magenta", "xfailed": "yellow", "skipped": "yellow"}
_MARKS = {"passed": "P", "failed": "F", "error": "E", "xfailed": "x", "skipped": "s"}

HistoryOpt = Annotated[str | None, typer.Option("--history", help="off|PATH|URL (default $HIL_HISTORY or "
                                                "OUT/history.sqlite)")]  # fmt: skip
OutOpt = Annotated[Path, typer.Option("--out", help="the runs' output folder (as hil run --out)")]


def _store(history: str | None, out_dir: Path):
    from harness.history.store import open_store, resolve_url

    url = resolve_url(history if history is not None else os.environ.get("HIL_HISTORY", ""), out_dir)
    if url is None:
        raise HarnessError("history is switched off (--history off or HIL_HISTORY=off): give a PATH or URL")
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    if path is not None and not Path(path).exists():
        raise HarnessError(f"{path}: no run history here; run `hil run` first or give --history PATH|URL")
    return open_store(url)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


@history_app.command()
def runs(
    history: HistoryOpt = None,
    out_dir: OutOpt = Path("hil-out"),
    limit: Annotated[int, typer.Option("-n", help="how many runs")] = 20,
) -> None:
    """The newest runs, newest first (their ids are what --baseline ID names)."""
    from harness.history.queries import runs_table

    store = _store(history, out_dir)
    try:
        rows = runs_table(store, limit)
    finally:
        store.close()
    table = Table(title="runs")
    for col in ("id", "started", "label", "commit", "host", "status", "pass", "fail", "error", "xfail", "skip"):
        table.add_column(col)
    for row in rows:
        commit = (row["git_commit"] or "-")[:10] + ("+dirty" if row["git_dirty"] else "")
        c = row["counts"]
        table.add_row(
            str(row["id"]), _when(row["started"]), escape(row["label"] or "-"), commit, escape(row["host"] or "-"),
            str(row["exit_status"]) if row["exit_status"] is not None else "-",
            *(str(c.get(k, 0)) for k in ("passed", "failed", "error", "xfailed", "skipped")),
        )  # fmt: skip
    out.print(table)


@history_app.command()
def flaky(
    history: HistoryOpt = None,
    out_dir: OutOpt = Path("hil-out"),
    window: Annotated[int, typer.Option("--window", help="look at the N newest runs")] = 30,
    board: Annotated[str | None, typer.Option("--board", "-b", help="only this board")] = None,
) -> None:
    """Tests that both passed and failed on a board, for the same image digest and test code, within
    the window; flip rate: how often the outcome changed from one run to the next."""
    from harness.history.flaky import flaky_tests
    from harness.history.queries import recent_run_ids, results_of

    store = _store(history, out_dir)
    try:
        found = flaky_tests(results_of(store, recent_run_ids(store, window)))
    finally:
        store.close()
    found = [g for g in found if board is None or g.board == board]
    if not found:
        out.print(f"no flaky test in the last {window} runs", highlight=False)
        return
    table = Table(title=f"flaky tests (last {window} runs)")
    for col in ("test", "board", "flip rate", "failed", "runs", "outcomes", "image", "code"):
        table.add_column(col)
    for g in found:
        table.add_row(escape(g.nodeid), escape(g.board or "-"), f"{g.flip_rate:.2f}", str(g.failures), str(g.runs),
                      _strip(g.outcomes), (g.image_digest or "-")[:12], (g.code_hash or "-")[:8])  # fmt: skip
    out.print(table)


def _strip(outcomes: list[str]) -> str:
    return "".join(f"[{_COLOURS.get(o, 'white')}]{_MARKS.get(o, '?')}[/]" for o in outcomes)


@history_app.command()
def show(
    test: Annotated[str, typer.Argument(help="the test: its pytest id or a part of it (e.g. test_hello)")],
    history: HistoryOpt = None,
    out_dir: OutOpt = Path("hil-out"),
    last: Annotated[int, typer.Option("-n", help="outcomes per board")] = 10,
    window: Annotated[int, typer.Option("--window", help="look at the N newest runs")] = 200,
) -> None:
    """TEST's last N outcomes per board (oldest left), with the run, label and first error."""
    from harness.history.queries import recent_run_ids, results_of

    store = _store(history, out_dir)
    try:
        results = results_of(store, recent_run_ids(store, window), nodeid_like=test)
    finally:
        store.close()
    if not results:
        raise HarnessError(f"no recorded result of a test matching {test!r} in the last {window} runs")
    by_key: dict[tuple[str, str], list] = {}
    for r in results:
        by_key.setdefault((r.board, r.nodeid), []).append(r)
    for (board, nodeid), rows in sorted(by_key.items()):
        rows = rows[-last:]
        table = Table(title=f"{escape(nodeid)} on {escape(board or '(no board)')}: {_strip([r.outcome for r in rows])}")
        for col in ("run", "started", "label", "outcome", "baseline", "time", "retried", "image", "first error"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                str(r.run_id), _when(r.started), escape(r.label or "-"),
                f"[{_COLOURS.get(r.outcome, 'white')}]{r.outcome}[/]",
                r.baseline_label or "-", f"{r.duration:.2f} s", "yes" if r.retried else "",
                (r.image_digest or "-")[:12], escape((r.first_error or "")[:100]),
            )  # fmt: skip
        out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(history_app, name="history")
