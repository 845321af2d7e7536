"""Scheduling under pytest-xdist: unless ``--dist`` is given, every test of a board goes to the
worker that has it booted, so each worker boots a board once."""

from __future__ import annotations

import pytest

from harness.pytest.selection import selected_boards
from harness.pytest.state import DIST_BY_BOARD


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # Before xdist turns "-n N without --dist" into --dist load: remember to schedule by board instead.
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", None) == "no":
        config.stash[DIST_BY_BOARD] = True


def board_of_nodeid(nodeid: str, names: list[str]) -> str | None:
    """The board parameter in a test id like ``suite.py::test_x[native]`` or ``...[3-native]``."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    params = nodeid[nodeid.index("[", nodeid.rfind("::") + 2 if "::" in nodeid else 0) + 1 : -1]
    for name in sorted(names, key=len, reverse=True):  # longest first: "esp32-1" before "esp32"
        if params == name or params.startswith(name + "-") or params.endswith("-" + name) or f"-{name}-" in params:
            return name
    return None


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if not config.stash.get(DIST_BY_BOARD, False) or config.getvalue("dist") != "load":
        return None  # the user chose a --dist mode: respect it
    from xdist.scheduler import LoadScopeScheduling

    names = selected_boards(config)

    class BoardScheduling(LoadScopeScheduling):
        """One work unit per board: the worker that boots a board runs all of its tests."""

        def _split_scope(self, nodeid: str) -> str:
            board = board_of_nodeid(nodeid, names)
            return f"board:{board}" if board else super()._split_scope(nodeid)

    return BoardScheduling(config, log)
