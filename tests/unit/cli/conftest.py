"""The ``hil`` fixture: the CLI run in-process, as its console script runs it."""

from __future__ import annotations

import sys

import pytest
from rich.console import Console as RichConsole

from harness.cli import history, report
from harness.cli import main as cli


@pytest.fixture
def hil(monkeypatch, capsys):
    """``hil ARGS`` through main() as the console script runs it: (status, stdout, stderr), with
    wide consoles so one-line messages stay one line."""
    monkeypatch.setattr(cli, "out", RichConsole(width=250, force_terminal=False))
    monkeypatch.setattr(cli, "err", RichConsole(width=250, stderr=True, force_terminal=False))
    monkeypatch.setattr(report, "out", RichConsole(width=250, force_terminal=False))
    monkeypatch.setattr(history, "out", RichConsole(width=250, force_terminal=False))
    monkeypatch.delenv("HIL_HISTORY", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["hil", *args])
        try:
            cli.main()
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
