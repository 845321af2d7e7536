"""What the plugin's parts share for one pytest process, kept on ``config.stash`` (never in module
globals: pytest.main may run twice in one process, and each xdist worker is its own process)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness.lab.pool import BoardPool


@dataclass
class RunState:
    """Per pytest process (each xdist worker has its own, and boots its own instance of a board whose
    tests were split across workers: see scheduling.py)."""

    infra_errors: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)


POOL = pytest.StashKey[BoardPool]()
STATE = pytest.StashKey[RunState]()
INFRA_ERROR = pytest.StashKey[str]()  # on an item: the retriable infrastructure error of this attempt
DIST_BY_BOARD = pytest.StashKey[bool]()
SELECTED = pytest.StashKey[list[str]]()  # the run's boards (selection.selected_boards)
CONSOLE_SECTION = "hil console"


def board_param(item: pytest.Item) -> str | None:
    """The board (or tag:) a test item runs on: its ``board`` parameter, if it has one."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("board") if callspec else None
