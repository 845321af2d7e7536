"""Meta-tests of MicroPython's own test suite (suites/micropython) on real boards: it fails a test
file whose output does not match its .exp (as a test failure, not an error), passes correct ones
(.exp or CPython-derived), honours a test's SKIP, stays out of a plain run over suites/, skips with
one line when there is no MicroPython source, and its expected failures name real test files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO as ROOT

SUITE = ROOT / "suites" / "micropython"
MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which("micropython")
needs_micropython = pytest.mark.skipif(MICROPYTHON is None, reason="micropython (unix port) not installed")

# planted test files: name -> (source, .exp or None for CPython's output)
PLANTED = {
    "good.py": ("print(sum(range(10)))\n", "45\n"),
    "from_cpython.py": ("print([1, 2, 3][::-1], 'x'.join('ab'))\n", None),
    "wrong.py": ("print(6 * 7)\n", "41\n"),  # the board prints 42: the suite must fail it
    "crash.py": ("print('start')\nraise ValueError('planted')\n", "start\ndone\n"),
    "skipped.py": ("print('SKIP')\nraise SystemExit\n", "never\n"),
}
EXPECTED = {"good.py": "passed", "from_cpython.py": "passed", "wrong.py": "failure", "crash.py": "failure",
            "skipped.py": "skipped"}  # fmt: skip


def real_tests_dir() -> Path:
    sys.path.insert(0, str(SUITE))
    try:
        from mp_tree import TreeMissing, tests_dir

        try:
            return tests_dir()
        except TreeMissing as exc:
            pytest.skip(str(exc))
    finally:
        sys.path.remove(str(SUITE))


def planted_tree(tmp_path: Path, planted: dict[str, tuple[str, str | None]] = PLANTED) -> Path:
    """A MicroPython tree with the real feature checks and one planted test directory."""
    src = tmp_path / "src"
    tests = src / "tests"
    real = real_tests_dir()
    shutil.copytree(real / "feature_check", tests / "feature_check")
    shutil.copy2(real / "run-tests.py", tests / "run-tests.py")
    (tests / "planted").mkdir()
    for name, (source, exp) in planted.items():
        (tests / "planted" / name).write_text(source)
        if exp is not None:
            (tests / "planted" / f"{name}.exp").write_text(exp)
    return src


def run_suite(tmp_path: Path, board: str, env_extra: dict[str, str], *args: str) -> tuple[dict[str, str], str]:
    junit = tmp_path / f"junit-{board}.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIL_MP_") and k != "PYTEST_ADDOPTS"}
    env |= env_extra
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "--board", board, "-p", "no:cacheprovider", "-q", "-rs",
           f"--junitxml={junit}", f"--hil-logs={tmp_path / 'logs'}", *args]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    outcomes = {}
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
            outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    return outcomes, proc.stdout + proc.stderr


@pytest.mark.parametrize("target", [pytest.param("native", marks=needs_micropython), "mps2_an385"])
def test_suite_fails_wrong_output_and_passes_right_output(tmp_path, target):
    src = planted_tree(tmp_path)
    outcomes, text = run_suite(tmp_path, target, {"HIL_MP_SRC": str(src)}, "--mp-tests=planted")
    got = {name.split("[", 1)[1].split("-", 1)[0].removeprefix("planted/"): v for name, v in outcomes.items()}
    assert got == EXPECTED, text[-3000:]
    assert "41" in text and "+42" in text  # the failure shows the diff against the .exp


@needs_micropython
def test_a_runaway_or_dying_test_fails_alone_and_the_next_one_runs(tmp_path):
    # the unix port's process killed from inside (as a segfault would end it): the harness restarts
    # the board; a loop past --mp-timeout is interrupted; neither hangs the suite or the next test
    planted = {
        "a_runaway.py": ("while True:\n    pass\n", "never\n"),
        "b_dies.py": ("import os\nos.system('kill -9 $PPID')\nprint('alive')\n", "never\n"),
        "c_after.py": ("print('fine')\n", "fine\n"),
    }
    src = planted_tree(tmp_path, planted)
    outcomes, text = run_suite(tmp_path, "native", {"HIL_MP_SRC": str(src)}, "--mp-tests=planted", "--mp-timeout=3")
    got = {name.split("[", 1)[1].split("-", 1)[0].removeprefix("planted/"): v for name, v in outcomes.items()}
    assert got["a_runaway.py"] == "failure" and "ExecTimeout" in text, text[-3000:]
    assert got["b_dies.py"] in ("failure", "error"), text[-3000:]  # an error: the board died (infrastructure)
    assert got["c_after.py"] == "passed", text[-3000:]


def test_suite_skips_with_one_line_without_micropython_source(tmp_path):
    outcomes, text = run_suite(tmp_path, "native", {"HIL_MP_SRC": str(tmp_path / "nowhere")}, "--mp-tests=basics")
    assert "SKIPPED" in text and "HIL_MP_SRC=" in text and "no tests/run-tests.py there" in text, text[-2000:]
    assert "Traceback" not in text and set(outcomes.values()) == {"skipped"}, outcomes


def test_plain_run_over_suites_does_not_collect_it():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIL_MP_") and k != "PYTEST_ADDOPTS"}
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "suites"), "--board", "native", "--collect-only", "-q",
           "-p", "no:cacheprovider"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "suites/smoke" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "test_micropython" not in proc.stdout


def test_expected_failures_name_real_test_files():
    tests = real_tests_dir()
    data = tomllib.loads((SUITE / "expected_failures.toml").read_text())
    boards = {p.stem for p in (ROOT / "targets").glob("*.toml")}
    for section, entries in data.items():
        assert section == "*" or all(b.strip() in boards for b in section.split(",")), section
        for test, reason in entries.items():
            assert (tests / test).is_file(), f"[{section}] {test}: no such test file"
            assert len(reason if isinstance(reason, str) else reason["reason"]) > 20, test


def test_skip_data_matches_the_pinned_run_tests_py():
    # mp_rules.py keeps run-tests.py's tables as data: when the pinned source changes, this says so
    import ast

    tests = real_tests_dir()
    module = ast.parse((tests / "run-tests.py").read_text())
    tables = {t.id: n.value for n in module.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}  # fmt: skip
    sys.path.insert(0, str(SUITE))
    try:
        import mp_rules
    finally:
        sys.path.remove(str(SUITE))
    upstream_skips = ast.literal_eval(tables["platform_tests_to_skip"])
    assert {k: tuple(v) for k, v in upstream_skips.items()} == mp_rules.PLATFORM_SKIPS
    assert ast.literal_eval(tables["PC_PLATFORMS"]) == mp_rules.PC_PLATFORMS
    special = {ast.literal_eval(e) for e in tables["special_tests"].generators[0].iter.elts}
    assert special == mp_rules.SPECIAL_TESTS
