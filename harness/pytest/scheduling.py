"""Scheduling under pytest-xdist (``-n N`` without ``--dist``): tests are handed out in work units
of one board each, so a worker boots a board once and runs a run of its tests on it.

A board that is one device (a serial board) is one unit: every test of it runs on one worker.
A board that is a cheap copy (QEMU or a host process, see harness/lab/pool.py) may be cut into
runs on several workers, each booting its own instance, where that balances the workers' time:
the plan (work_units) times tests by their last durations (harness/pytest/durations.py) and
cuts a board only where a worker would otherwise run past its fair share by more than a boot.
Whole boards as units left one worker idling while another ran a big board (a single-board run
with ``-n 2``), or ran two of three equal boards (the smoke suite). Tap boards stay whole (their
segment's namespace is named per process, not per instance), as do boards with multi-board pairings.

Units go out in the plan's order, a board's units one after another, so a worker moves from
board to board without ever coming back to one it left (that would tear it down and boot it
again: the ``board`` fixture is session-scoped per board)."""

from __future__ import annotations

import os
import shlex
from bisect import bisect_left
from collections.abc import Callable, Sequence
from itertools import accumulate

import pytest

from harness.errors import ConfigError
from harness.pytest.durations import Durations, durations_path, load
from harness.pytest.selection import selected_boards
from harness.pytest.state import DIST_BY_BOARD, POOL


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("hil").addoption(
        "--hil-whole-boards", action="store_true", default=False,
        help="under -n, keep every board's tests on one worker (one instance per board), even emulated ones",
    )  # fmt: skip


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # "-n N" without a --dist mode: schedule by board (xdist makes it --dist load, and its hook may
    # run before this one: plugins are ordered by where they sit on sys.path, which `python -m
    # pytest` changes, so the option's value cannot say whether the user chose it)
    if getattr(config.option, "numprocesses", None) and not dist_chosen(config):
        config.stash[DIST_BY_BOARD] = True


def dist_chosen(config: pytest.Config) -> bool:
    """Whether the command line, PYTEST_ADDOPTS or the ini addopts name an xdist --dist mode."""
    args = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
            *config.getini("addopts")]  # fmt: skip
    return any(str(a) in ("--dist", "-d") or str(a).startswith("--dist=") for a in args)


def board_of_nodeid(nodeid: str, names: list[str]) -> str | None:
    """The board parameter in a test id like ``suite.py::test_x[native]`` or ``...[3-native]``."""
    params = _params(nodeid)
    return None if params is None else _board_in(params, names)


def _params(nodeid: str) -> str | None:
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    return nodeid[nodeid.index("[", nodeid.rfind("::") + 2 if "::" in nodeid else 0) + 1 : -1]


def _board_in(params: str, names: list[str]) -> str | None:
    for name in sorted(names, key=len, reverse=True):  # longest first: "esp32-1" before "esp32"
        if params == name or params.startswith(name + "-") or params.endswith("-" + name) or f"-{name}-" in params:
            return name
    return None


def boards_in(params: str, names: list[str]) -> list[str]:
    """Every board named in a test's parameters, in the order found: ``3-native`` -> [native],
    a multi-board pairing ``a_tap-b_tap`` -> [a_tap, b_tap]."""
    found: list[str] = []
    while params and (name := _board_in(params, names)) is not None:
        found.append(name)
        if params == name:
            params = ""
        elif params.startswith(name + "-"):
            params = params[len(name) + 1 :]
        elif params.endswith("-" + name):
            params = params[: -len(name) - 1]
        else:
            params = params.replace(f"-{name}-", "-", 1)
    return found


def work_units(
    nodeids: Sequence[str], names: list[str], workers: int, splittable: Callable[[str], bool],
    last: Durations | None = None,
) -> dict[str, tuple[str, int]]:  # fmt: skip
    """nodeid -> (board, chunk) for every board test, in the order the units should go out.

    The plan follows what xdist will do with it (a free worker takes the next unit): boards go
    largest first (by last run's durations, else by test count) to the worker that frees up
    first. A splittable board that would take that worker past its fair share of the run (all
    tests and boots / ``workers``) by more than a boot is cut: the first run of its tests fills the
    share, the rest goes on to the next worker. So three smoke boards on two workers split the
    third between them, and one big board is shared by all. Anything else (a device, a board with
    a multi-board pairing among its tests: its boards are leased by the worker that runs it,
    harness/pytest/multi.py) is one unit."""
    tests: dict[str, list[str]] = {}
    whole: set[str] = set()
    for nodeid in nodeids:
        board = board_of_nodeid(nodeid, names)
        if board is None:
            continue
        tests.setdefault(board, []).append(nodeid)
        if len(boards_in(_params(nodeid) or "", names)) > 1:  # a pairing: kept with its first board
            whole.add(board)
    cost, boot = (last or Durations()).estimates(tests)
    size = {board: sum(cost[n] for n in ids) for board, ids in tests.items()}
    # each worker's fair share: every test and boot, and a boot for each of the (at most
    # workers - 1) cuts that pay a second boot of a board
    mean_boot = sum(boot.values()) / len(boot) if boot else 0.0
    share = (sum(size.values()) + sum(boot.values()) + (workers - 1) * mean_boot) / max(workers, 1)
    free = [0.0] * max(workers, 1)  # when each worker would be done with what it was given
    units: dict[str, tuple[str, int]] = {}
    for board in sorted(tests, key=lambda b: -size[b]):
        ids, chunk = tests[board], 0
        may_split = workers > 1 and board not in whole and splittable(board)
        while ids:
            w = free.index(min(free))
            room = share - free[w] - boot[board]
            filled = list(accumulate(cost[n] for n in ids))  # filled[k]: the first k + 1 tests' time
            take = len(ids)
            if may_split and room > 0 and filled[-1] > room + boot[board]:
                # the run of its tests that comes nearest to filling the share
                take = min(len(ids), bisect_left(filled, room) + 1)  # the first run that fills it
                if take > 1 and room - filled[take - 2] < filled[take - 1] - room:
                    take -= 1  # one test fewer falls short by less than the last one overshoots
            for nodeid in ids[:take]:
                units[nodeid] = (board, chunk)
            free[w] += boot[board] + filled[take - 1]
            ids, chunk = ids[take:], chunk + 1
    return units


def unit_order(units: dict[str, tuple[str, int]]) -> Callable[[str], tuple]:
    """Sort key for scope names ``board:NAME#K``: the plan's order (work_units), then anything
    else in its original order."""
    place = {f"board:{board}#{chunk}": i for i, (board, chunk) in enumerate(dict.fromkeys(units.values()))}

    def key(scope: str) -> tuple:
        return (0, place[scope]) if scope in place else (1, 0)

    return key


def _splittable(config: pytest.Config) -> Callable[[str], bool]:
    """Whether each worker may start its own copy of ``board``: every board it may lease is
    emulated (not one device on a bench) and off any tap segment."""

    def ok(board: str) -> bool:
        try:
            specs = config.stash[POOL].candidates(board)
        except (ConfigError, KeyError):
            return False  # the board fixture reports the error; keep its tests together
        return bool(specs) and all(not s.launch.physical and s.network.mode != "tap" for s in specs)

    return ok


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if not config.stash.get(DIST_BY_BOARD, False) or config.getvalue("dist") != "load":
        return None  # the user chose a --dist mode: respect it
    from xdist.scheduler import LoadScopeScheduling

    names = selected_boards(config)
    timings = durations_path(config)
    splittable = (lambda board: False) if config.getoption("hil_whole_boards") else _splittable(config)

    class BoardScheduling(LoadScopeScheduling):
        """Work units of one board each (a cheap board bigger than a worker's share split)."""

        units: dict[str, tuple[str, int]] | None = None
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            if self.units is None:  # the collection is known once scopes are asked for
                self.units = work_units(self.collection or [], names, len(self.nodes), splittable, load(timings))
            if nodeid in self.units:
                board, chunk = self.units[nodeid]
                return f"board:{board}#{chunk}"
            return super()._split_scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self.ordered and self.units is not None:
                # xdist orders units by size alone, which can interleave boards' chunks
                self.ordered = True
                key = unit_order(self.units)
                queue = sorted(self.workqueue.items(), key=lambda item: key(item[0]))
                self.workqueue.clear()
                self.workqueue.update(queue)
            super()._assign_work_unit(node)

    return BoardScheduling(config, log)
