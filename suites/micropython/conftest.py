"""MicroPython's own test suite (tests/basics, float, extmod, ... of the MicroPython source the mps2
build fetches) as a harness suite: each test file is a case on every selected board.

    hil run --suite suites/micropython --board native --board mps2_an385 -n 2 --mp-tests basics,float
    make mptests MP_TESTS=upstream

Which directories: --mp-tests (or $HIL_MP_TESTS), comma-separated; default basics; "upstream" is
run-tests.py's own per-platform set. The suite is collected only when asked for (the suite path
given, --mp-tests or $HIL_MP_TESTS set), so a plain `hil run` over suites/ does not include it.
Per-test timeout: --mp-timeout (or $HIL_MP_TIMEOUT), default 30 s as run-tests.py's TEST_TIMEOUT.
Expected failures: expected_failures.toml, keyed by the test's path under tests/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mp_features import probe
from mp_run import run_source
from mp_tree import TreeMissing, check_dirs, parse_selection, test_files, tests_dir

from harness.pytest.expectations import load
from harness.pytest.selection import named_in_run
from harness.pytest.state import board_param

HERE = Path(__file__).resolve().parent
TEST_MODULE = "test_micropython.py"
DEFAULT_TIMEOUT = 30.0  # run-tests.py's TEST_TIMEOUT (L19)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("micropython", "MicroPython's own tests (suites/micropython)")
    group.addoption("--mp-tests", default=None, metavar="DIRS",
                    help="tests/ directories to run, comma-separated (default basics; 'upstream': run-tests.py's set)")
    group.addoption("--mp-timeout", type=float, default=None, metavar="S", help="per-test timeout (default 30 s)")


def _option(config: pytest.Config, name: str, env: str) -> str | None:
    try:
        value = config.getoption(name)
    except ValueError:  # this conftest was not an initial one: its options were never added
        value = None
    return value if value is not None else os.environ.get(env)


def selection(config: pytest.Config) -> str | None:
    return _option(config, "mp_tests", "HIL_MP_TESTS")


def timeout(config: pytest.Config) -> float:
    value = _option(config, "mp_timeout", "HIL_MP_TIMEOUT")
    return float(value) if value else DEFAULT_TIMEOUT


def _asked_for(config: pytest.Config) -> bool:
    """The run names this suite (a path in it, or a selection): a plain run over suites/ skips it."""
    return bool(selection(config)) or named_in_run(config, HERE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name == TEST_MODULE and collection_path.parent == HERE and not _asked_for(config):
        return True
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mp_test" not in metafunc.fixturenames:
        return
    try:
        tests = tests_dir()
    except TreeMissing as exc:
        pytest.skip(str(exc), allow_module_level=True)
    dirs = parse_selection(selection(metafunc.config))
    try:
        check_dirs(tests, dirs)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    files = test_files(tests, dirs)
    metafunc.parametrize("mp_test", files, ids=files)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """expected_failures.toml, keyed by test path ("basics/builtin_help.py"), per board section."""
    data = load(HERE)
    for item in items:
        callspec = getattr(item, "callspec", None)
        board = board_param(item)
        if callspec is None or board is None or "mp_test" not in callspec.params:
            continue
        test = callspec.params["mp_test"]
        for section in [k for k in data if board in (b.strip() for b in k.split(","))] + ["*"]:
            entry = data.get(section, {}).get(test)
            if entry is not None:
                entry = entry if isinstance(entry, dict) else {"reason": entry}
                reason, strict = entry["reason"], entry.get("strict", True)
                item.add_marker(pytest.mark.xfail(reason=f"{board}: {reason}", strict=strict))
                break


@pytest.fixture(scope="session")
def mp_tests_dir() -> Path:
    return tests_dir()


@pytest.fixture(scope="session")
def mp_features(board, mp_tests_dir):
    """run-tests.py's feature checks (tests/feature_check), run once per board through its REPL;
    the board is soft-reset afterwards so no test sees what they defined."""
    features = probe(lambda src: run_source(board, src), mp_tests_dir / "feature_check")
    if board.spec.console.reset == "soft":
        board.soft_reset()
    return features


@pytest.fixture(scope="session")
def mp_selection(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return parse_selection(selection(request.config))


@pytest.fixture
def mp_timeout(request: pytest.FixtureRequest) -> float:
    return timeout(request.config)
