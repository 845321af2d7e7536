"""`hil report`: read a run's JUnit back.

    hil report [JUNIT] [--html OUT.html]     board x suite matrix in the terminal (+ static HTML)
    hil report merge OUT.xml IN1.xml ...     merge JUnit files of separate CI jobs (one per board)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console as RichConsole
from rich.table import Table
from typer.core import TyperGroup

from harness.errors import HarnessError
from harness.report.junit import OUTCOMES, CaseResult, board_facts, cell_verdict, idle_pairings, matrix, read_cases

out = RichConsole()
DEFAULT_JUNIT = Path("hil-out/junit.xml")
_COLORS = {"passed": "green", "failed": "red", "error": "magenta", "xfailed": "yellow", "skipped": "yellow"}
_LABELS = {"passed": "pass", "failed": "fail", "error": "error", "xfailed": "xfail", "skipped": "skip"}


class _ShowByDefault(TyperGroup):
    """`hil report X.xml` means `hil report show X.xml`; `hil report merge ...` is the subcommand."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    cls=_ShowByDefault, add_completion=False, help="Board x suite matrix and HTML from a JUnit file; merge JUnit files."
)


def print_matrix(cases: list[CaseResult], console: RichConsole = out) -> None:
    grid = matrix(cases)
    suites = sorted({c.suite for c in cases})
    facts = board_facts(cases)
    table = Table(title="board x suite (pass / fail / error / skip)")
    table.add_column("board")
    for suite in suites:
        table.add_column(suite)
    table.add_column("boot")
    for board in sorted(grid):
        cells = []
        for suite in suites:
            cell = grid[board].get(suite)
            if not cell:
                cells.append("-")
                continue
            parts = [f"[{_COLORS[k]}]{cell[k]} {_LABELS[k]}[/]" for k in OUTCOMES if cell[k]]
            verdict = cell_verdict(cell)
            cells.append(f"[bold {_COLORS[verdict]}]{verdict.upper()}[/] " + " ".join(parts))
        boot = facts.get(board, {}).get("boot_seconds")
        table.add_row(board, *cells, f"{float(boot):.2f} s" if boot else "-")
    console.print(table)
    for _, f in sorted(facts.items()):
        if "quarantined" in f:
            console.print(f"[red]QUARANTINED[/red] {f['quarantined']}", highlight=False)


def print_idle_pairings(idle: dict[str, str], console: RichConsole = out) -> None:
    """Multi-board pairings that ran no case, one line each (not a table row of skips)."""
    if idle:
        console.print(f"{len(idle)} pairings not run:", highlight=False)
        for pairing, why in sorted(idle.items()):
            console.print(f"  {pairing}: {why}", highlight=False, markup=False)


@report_app.command()
def show(
    junit: Annotated[Path, typer.Argument(help="JUnit file of a run")] = DEFAULT_JUNIT,
    html: Annotated[Path | None, typer.Option("--html", help="also write a static HTML report here")] = None,
) -> None:
    """Print the board x suite matrix of JUNIT (default hil-out/junit.xml); --html writes the HTML report."""
    cases = read_cases(junit)
    if not cases:
        raise HarnessError(f"{junit}: has no test cases; check that the run collected tests")
    idle = idle_pairings(cases)
    print_matrix([c for c in cases if c.board not in idle])
    print_idle_pairings(idle)
    if html is not None:
        from harness.report.html import write_html

        write_html(junit, html, cases=cases)
        out.print(f"HTML: {html}", highlight=False, soft_wrap=True)


@report_app.command()
def merge(
    output: Annotated[Path, typer.Argument(help="merged JUnit file to write")],
    inputs: Annotated[list[Path], typer.Argument(help="JUnit files to merge (e.g. one per board job)")],
) -> None:
    """Merge JUnit files into OUTPUT: one <testsuite> per board, every test case exactly once."""
    from harness.report.junit import merge_junit

    if output in inputs:
        raise HarnessError(f"{output}: the output is also an input; write the merge to a new file")
    counts = merge_junit(output, inputs)
    summary = ", ".join(f"{board or '(no board)'}: {n}" for board, n in sorted(counts.items()))
    out.print(f"merged {len(inputs)} files into {output}: {sum(counts.values())} test cases ({summary})",
              highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
