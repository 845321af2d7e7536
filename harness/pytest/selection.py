"""Which boards a run uses, one test per board, and capability skips decided at collection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.config.boards import BoardSpec, board_files, load_all
from harness.errors import ConfigError
from harness.pytest.state import POOL, SELECTED, board_param


def selected_boards(config: pytest.Config) -> list[str]:
    """The boards of this run (worked out once per run: every test function asks)."""
    if (known := config.stash.get(SELECTED, None)) is not None:
        return known
    names = config.getoption("board") or [n for n in os.environ.get("HIL_BOARDS", "").split(",") if n]
    if names:
        names = list(dict.fromkeys(names))
    else:
        try:
            names = [name for name, spec in load_all().items() if spec.default]
        except ConfigError:  # a broken file: run every file's name so the error lands on its tests
            names = [p.stem for p in board_files()]
    config.stash[SELECTED] = names
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "board" in metafunc.fixturenames:
        names = selected_boards(metafunc.config)
        metafunc.parametrize("board", names, indirect=True, scope="session", ids=names)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, at collection, tests whose board lacks a required capability: no boot wasted."""
    specs: dict[str, list[BoardSpec] | None] = {}
    every: dict[str, BoardSpec] | None = None  # every board file, read once if a case skips
    for item in items:
        name = board_param(item)
        if name is None:
            continue
        if name not in specs:
            try:
                specs[name] = config.stash[POOL].candidates(name)
            except ConfigError:
                specs[name] = None  # the board fixture reports it as an error on each test
        boards = specs[name]
        if boards is None:
            continue
        only = item.get_closest_marker("boards")
        if only and not any(spec.name in only.args for spec in boards):
            item.add_marker(pytest.mark.skip(reason=f"only for boards {', '.join(only.args)}"))
        for marker in item.iter_markers("requires"):
            # a tag may lease any of several boards: every one of them must have the capability
            missing = sorted({cap for spec in boards for cap in marker.args if not spec.capabilities.has(cap)})
            if missing:
                if every is None:
                    every = _every_board()
                reason = f"board {name} lacks capability: {', '.join(missing)}{_runs_on(boards, missing, every)}"
                item.add_marker(pytest.mark.skip(reason=reason))


def _every_board() -> dict[str, BoardSpec]:
    try:
        return load_all()
    except ConfigError:  # a broken file is reported on its own tests
        return {}


def _runs_on(boards: list[BoardSpec], missing: list[str], every: dict[str, BoardSpec]) -> str:
    """Where a skipped case does run: the boards built the same way (same image builder and
    machine) that have what is missing, e.g. mps2_an385 -> mps2_an385_tap for "tap". Boards with no
    image of ours (builder "none": host processes, serial devices) are not alike by that measure."""
    builds = {(b.image.builder, getattr(b.launch, "machine", "")) for b in boards if b.image.builder != "none"}
    others = sorted(n for n, spec in every.items() if spec not in boards
                    and (spec.image.builder, getattr(spec.launch, "machine", "")) in builds
                    and all(spec.capabilities.has(cap) for cap in missing))  # fmt: skip
    return f" (runs on {', '.join(others)})" if others else ""


def named_in_run(config: pytest.Config, directory: Path) -> bool:
    """The run names ``directory`` (or a path inside it) on its command line. Opt-in suites (slow,
    or needing boards a default run does not have) skip a plain run over suites/ by this."""
    directory = directory.resolve()
    for arg in config.args:
        path = Path(str(arg).split("::", 1)[0]).resolve()
        if path == directory or directory in path.parents:
            return True
    return False
