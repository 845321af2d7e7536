"""MicroPython's own multi-board tests (tests/multi_net of the MicroPython source the mps2 build
fetches) through the harness: each test file is a case on every pairing of the selected tap boards
(the duts fixture, harness/pytest/multi.py), run with run-multitests.py's protocol
(mm_protocol.py) and judged as it judges them (the .exp file, else the CPython run: mm_truth.py).

    hil run --suite suites/micropython_multi --board mps2_an385_tap --board qemu_x86_tap -n 2
    make mpmulti

Opt-in, like suites/micropython (suites/multi runs in every run): a plain run over suites/ skips it; naming the
suite runs it. The tree: suites/micropython/mp_tree.py (HIL_MP_SRC=DIR for another checkout).
Silence limit per instance: --mp-multi-timeout (or $HIL_MP_MULTI_TIMEOUT), default 30 s
(run-multitests.py: 10 s, for real boards; TCG boards on a loaded host need more).
Expected failures: expected_failures.toml, sections named by pairing id (or "*"), keys the test
path under tests/ ("multi_net/tcp_client_rst.py")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "micropython"))  # mp_tree: where the MicroPython tree comes from

from mp_tree import TreeMissing, tests_dir  # noqa: E402

from harness.pytest.expectations import load  # noqa: E402
from harness.pytest.multi import pairing_id  # noqa: E402
from harness.pytest.selection import named_in_run  # noqa: E402

TEST_MODULE = "test_micropython_multi.py"
DIRS = ("multi_net",)  # multi_bluetooth/espnow/wlan/pyb_can need radios or pyb.CAN the boards lack
DEFAULT_TIMEOUT = 30.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("micropython_multi", "MicroPython's multi-board tests (suites/micropython_multi)")
    group.addoption("--mp-multi-timeout", type=float, default=None, metavar="S",
                    help="seconds an instance may stay silent (default 30; run-multitests.py: 10)")


def timeout(config: pytest.Config) -> float:
    try:
        value = config.getoption("mp_multi_timeout")
    except ValueError:  # this conftest was not an initial one: its options were never added
        value = None
    value = value if value is not None else os.environ.get("HIL_MP_MULTI_TIMEOUT")
    return float(value) if value else DEFAULT_TIMEOUT


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name == TEST_MODULE and collection_path.parent == HERE and not named_in_run(config, HERE):
        return True
    return None


def test_files(tests: Path) -> list[str]:
    return sorted(str(p.relative_to(tests)) for d in DIRS for p in (tests / d).glob("*.py"))


@pytest.hookimpl(trylast=True)  # after multi.py's: the pairing leads the id (scheduling by board)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mm_test" not in metafunc.fixturenames:
        return
    try:
        files = test_files(tests_dir())
    except TreeMissing as exc:
        pytest.skip(str(exc), allow_module_level=True)
    metafunc.parametrize("mm_test", files, ids=files)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """expected_failures.toml: [pairing id] or ["*"] -> {"multi_net/x.py" = reason}."""
    data = load(HERE)
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "mm_test" not in params or "duts" not in params:
            continue
        ident = pairing_id(tuple(params["duts"]))
        for section in [k for k in data if ident in (p.strip() for p in k.split(","))] + ["*"]:
            entry = data.get(section, {}).get(params["mm_test"])
            if entry is not None:
                entry = entry if isinstance(entry, dict) else {"reason": entry}
                reason, strict = f"{ident}: {entry['reason']}", entry.get("strict", True)
                item.add_marker(pytest.mark.xfail(reason=reason, strict=strict))
                break


@pytest.fixture(scope="session")
def mm_tests_dir() -> Path:
    return tests_dir()


@pytest.fixture
def mm_timeout(request: pytest.FixtureRequest) -> float:
    return timeout(request.config)
