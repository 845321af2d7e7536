"""Where MicroPython's tests/ come from, and which test files a selection names.

The tree is Debian's ``micropython`` source package at the version the mps2 build pins
(targets/mps2_an385.toml image.source_version), fetched and extracted by the same function the
image builder calls (harness/images/debian_source.py source_tree, cached under the image cache).
HIL_MP_SRC=DIR points at another MicroPython checkout instead (DIR/tests/run-tests.py)."""

from __future__ import annotations

import os
from pathlib import Path

from mp_rules import REPL_UNFIT_DIRS, UPSTREAM_DIRS

SOURCE_BOARD = "mps2_an385"  # whose image.source_version pins the tree
# Default selection: run-tests.py's first directory; keeps a run to about a minute per board
DEFAULT_DIRS = ("basics",)
UPSTREAM = "upstream"  # run-tests.py's own per-platform default directories (mp_rules.platform_dirs)
HOW_TO_GET = (
    "get it with `hil build mps2_an385` (fetches Debian's micropython source package into the image cache), "
    "or set HIL_MP_SRC to a MicroPython source tree"
)


class TreeMissing(Exception):
    """No MicroPython tests/ to run (one line, saying how to get them)."""


def tests_dir() -> Path:
    """The tests/ directory of the MicroPython source (fetched once, then from the cache)."""
    override = os.environ.get("HIL_MP_SRC")
    if override:
        tests = Path(override) / "tests"
        if not (tests / "run-tests.py").is_file():
            raise TreeMissing(f"HIL_MP_SRC={override}: no tests/run-tests.py there; point it at a MicroPython tree")
        return tests
    from harness.config.boards import find_board
    from harness.errors import HarnessError
    from harness.images.debian_source import source_tree

    try:
        spec = find_board(SOURCE_BOARD)
        options = dict(spec.image.options)
        tree = source_tree("micropython", str(options["source_version"]), options, log=lambda m: None)
    except (HarnessError, KeyError, OSError) as exc:
        raise TreeMissing(f"MicroPython's tests/ are not available ({exc}); {HOW_TO_GET}") from None
    return tree / "tests"


def parse_selection(text: str | None) -> tuple[str, ...]:
    """'basics,float' -> ("basics", "float"); empty -> DEFAULT_DIRS; 'upstream' is kept as a word."""
    names = tuple(dict.fromkeys(p.strip().strip("/") for p in (text or "").split(",") if p.strip()))
    return names or DEFAULT_DIRS


def check_dirs(tests: Path, dirs: tuple[str, ...]) -> None:
    """A named directory that does not exist or cannot run through the REPL: one clear line."""
    for d in dirs:
        if d == UPSTREAM:
            continue
        if d in REPL_UNFIT_DIRS:
            raise ValueError(f"--mp-tests {d}: run-tests.py runs {d}/ as separate unix processes, not through a REPL")
        if not (tests / d).is_dir():
            known = ", ".join(sorted(p.name for p in tests.iterdir() if p.is_dir() and any(p.glob("*.py"))))
            raise ValueError(f"--mp-tests {d}: no such directory in {tests} (some there: {known})")


def test_files(tests: Path, dirs: tuple[str, ...]) -> list[str]:
    """Test paths relative to tests/ ("basics/int1.py"), sorted as run-tests.py sorts them (L1290).
    'upstream' stands for every directory some platform runs by default (the board's own set is
    applied per board, see mp_rules.platform_dirs)."""
    from mp_features import ASM_ARCHES
    from mp_rules import PLATFORM_DIRS

    wanted: list[str] = []
    for d in dirs:
        if d == UPSTREAM:
            extra = [x for ds in PLATFORM_DIRS.values() for x in ds] + [f"inlineasm/{a}" for a in ASM_ARCHES]
            wanted += [x for x in (*UPSTREAM_DIRS, *extra) if x not in REPL_UNFIT_DIRS]
        else:
            wanted.append(d)
    files = {str(p.relative_to(tests)) for d in dict.fromkeys(wanted) for p in (tests / d).glob("*.py")}
    return sorted(files)


def selected_for(test: str, dirs: tuple[str, ...], board_dirs: tuple[str, ...]) -> bool:
    """Whether a collected test runs on a board: its directory was named, or 'upstream' was and
    run-tests.py runs that directory on the board's platform (``board_dirs``)."""
    directory = test.rsplit("/", 1)[0]
    return directory in dirs or (UPSTREAM in dirs and directory in board_dirs)
