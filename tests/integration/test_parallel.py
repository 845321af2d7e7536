"""Parallel runs over real boards (pytest-xdist, child pytest): scheduling by board, retries of
infrastructure errors on a fresh board, quarantine of a board that keeps failing."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from junitparser import Error, Failure, JUnitXml, Properties

from tests.conftest import REPO, write_target

BOARDS = ("mps2_an385", "microbit", "native")

SUITE = """
def test_prints(dut):
    assert dut.exec("print(6 * 7)") == "42\\n"

def test_evals(dut):
    assert dut.eval("[1, 'two']") == [1, "two"]

def test_banner(board):
    assert board.facts.banner.startswith("MicroPython")

def test_worker(dut, record_property):
    record_property("worker", __import__("os").environ.get("PYTEST_XDIST_WORKER", "-"))
    assert dut.exec("print('w')") == "w\\n"
"""

RETRY_SUITE = """
import os, signal
from pathlib import Path

FLAGS = Path(os.environ["HIL_TEST_FLAGS"])

def test_before(dut):
    assert dut.exec("print(1)") == "1\\n"

def test_killed_once(dut):
    flag = FLAGS / f"killed-{dut.name}"
    if dut.spec.launch.kind == "qemu" and not flag.exists():
        flag.write_text("killed")
        os.kill(dut.launcher.proc.pid, signal.SIGKILL)  # QEMU dies under the test
    assert dut.exec("print(6 * 7)") == "42\\n"

def test_fails_once(dut):
    flag = FLAGS / f"failed-{dut.name}"
    runs = int(flag.read_text()) + 1 if flag.exists() else 1
    flag.write_text(str(runs))
    assert dut.eval("1 + 1") == 3, "a wrong answer is a test failure: never retried"

def test_after(dut):
    assert dut.exec("print('still here')") == "still here\\n"
"""


def cases_of(path):
    """(name, board) -> (case, properties); fails on a duplicate."""
    seen = {}
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            node = case.child(Properties)
            props = {p.name: p.value for p in node} if node is not None else {}
            key = (case.name, props.get("board"))
            assert key not in seen, f"{key} reported twice"
            seen[key] = (case, props)
    return seen


def _run(pytester, *args, timeout=600):
    return pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider", timeout=timeout)


def test_two_workers_three_boards_every_test_once(pytester, no_leftovers):
    pytester.makepyfile(test_suite=SUITE)
    junit = pytester.path / "junit.xml"
    logs = pytester.path / "logs"
    boards = [f"--board={b}" for b in BOARDS]
    result = _run(pytester, "-n", "2", *boards, f"--junitxml={junit}", f"--hil-logs={logs}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    cases = cases_of(junit)
    names = ("test_prints", "test_evals", "test_banner", "test_worker")
    assert set(cases) == {(f"{n}[{b}]", b) for n in names for b in BOARDS}
    for (name, board), (case, props) in cases.items():
        assert props["board"] == board and not case.result, name
        assert props["micropython_version"].startswith("1.") and props["image_digest"]
    assert "42" in (cases[("test_prints[microbit]", "microbit")][0].system_out or "")  # console log kept
    # Scheduled by board (harness/pytest/scheduling.py): an emulated board's tests are split into a
    # run per worker; a worker that ran some of a board's tests booted it once, never again.
    used = {props["worker"] for (name, _), (_, props) in cases.items() if name.startswith("test_worker")}
    booted = {(w.name, log.name.removesuffix(".console.log")): log.read_text(errors="replace")
              for w in logs.iterdir() if w.is_dir() for log in w.glob("*.console.log")}  # fmt: skip
    assert {w for w, _ in booted} == {"gw0", "gw1"}  # both workers were used
    assert used <= {"gw0", "gw1"}
    for board in BOARDS:
        on = [w for w, b in booted if b == board]
        assert on, f"{board} never booted"
        for worker in on:
            assert booted[(worker, board)].count(f"boot {board} ---") == 1, f"{board} booted twice on {worker}"



@pytest.mark.parametrize("whole", [False, True])
def test_one_emulated_board_on_two_workers_is_split_between_them(pytester, no_leftovers, whole):
    """A board with more than a worker's share of the tests runs on both workers, each booting its
    own instance once; --hil-whole-boards keeps it on one worker (the other is never used).
    Balanced by count (these tests take milliseconds: by their durations a second boot would not
    pay, harness/pytest/durations.py)."""
    pytester.makepyfile(test_suite=SUITE)
    junit = pytester.path / "junit.xml"
    logs = pytester.path / "logs"
    extra = ["--hil-whole-boards"] if whole else ["--hil-durations=off"]
    result = _run(pytester, "-n", "2", "--board=native", f"--junitxml={junit}", f"--hil-logs={logs}", *extra)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    cases = cases_of(junit)
    assert len(cases) == 4 and all(not case.result for case, _ in cases.values())
    booted = {log.parent.name: log.read_text(errors="replace") for log in logs.glob("*/native.console.log")}
    assert len(booted) == (1 if whole else 2), sorted(booted)  # workers that booted native
    assert all(text.count("boot native ---") == 1 for text in booted.values())

def test_a_run_keeps_its_durations_for_the_next_ones_plan(pytester, no_leftovers):
    """Each board test's time and each board's boot go to --hil-durations, and a parallel run
    reads them back (harness/pytest/durations.py, scheduling.py)."""
    import json

    pytester.makepyfile(test_suite=SUITE)
    kept = pytester.path / "ci" / "durations.json"
    result = _run(pytester, "--board=native", f"--hil-durations={kept}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    saved = json.loads(kept.read_text())
    assert set(saved["tests"]) == {f"test_suite.py::{n}[native]" for n in ("test_prints", "test_evals",
                                                                             "test_banner", "test_worker")}  # fmt: skip
    assert all(took > 0 for took, _ in saved["tests"].values()) and 0 < saved["boots"]["native"][0] < 30
    again = _run(pytester, "-n", "2", "--board=native", f"--hil-durations={kept}")
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()[-3000:]
    assert json.loads(kept.read_text())["tests"].keys() == saved["tests"].keys()  # merged, not doubled


def test_infrastructure_error_is_retried_on_a_fresh_board(pytester, tmp_path, no_leftovers):
    pytester.makepyfile(test_retry=RETRY_SUITE)
    flags = tmp_path / "flags"
    flags.mkdir()
    junit = pytester.path / "junit.xml"
    logs = pytester.path / "logs"
    os.environ["HIL_TEST_FLAGS"] = str(flags)
    try:
        result = _run(pytester, "-n", "2", *(f"--board={b}" for b in BOARDS), f"--junitxml={junit}",
                      f"--hil-logs={logs}", "--hil-retries=1")  # fmt: skip
    finally:
        del os.environ["HIL_TEST_FLAGS"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # test_fails_once, and only it
    cases = cases_of(junit)
    assert len(cases) == 4 * len(BOARDS)  # nothing lost, nothing doubled
    for board in ("mps2_an385", "microbit"):
        case, props = cases[(f"test_killed_once[{board}]", board)]
        assert not case.result, f"{board}: the retry on a fresh board passes"
        assert props["hil_retried"] == "1"
        assert "BoardDied" in props["hil_first_error"] and "killed by signal 9" in props["hil_first_error"]
        assert "retry 1 of 1 on a fresh board" in case.system_out
        boots = [log.read_text(errors="replace").count(f"boot {board} ---")
                 for log in logs.glob(f"*/{board}.console.log")]
        assert max(boots) >= 2  # a new QEMU for the retry (on the worker that ran it: a board may run on both)
        assert not cases[(f"test_after[{board}]", board)][0].result
    case, props = cases[("test_killed_once[native]", "native")]
    assert not case.result and "hil_retried" not in props
    for board in BOARDS:
        case, props = cases[(f"test_fails_once[{board}]", board)]
        assert isinstance(case.result[0], Failure) and "hil_retried" not in props
        assert (flags / f"failed-{board}").read_text() == "1"  # ran once: failures are not retried
    out = result.stdout.str()
    assert "hil: retried after an infrastructure error" in out and "test_killed_once[microbit]" in out


def test_board_that_keeps_failing_is_quarantined(pytester, tmp_path, no_leftovers):
    targets = tmp_path / "targets"
    targets.mkdir()
    shutil.copy(REPO / "targets" / "native.toml", targets)
    # real QEMU with a kernel that is not there: it exits at every start. A wrapper counts starts.
    starts = tmp_path / "starts"
    wrapper = tmp_path / "qemu-counting"
    wrapper.write_text(f'#!/bin/sh\necho start >> {starts}\nexec qemu-system-arm "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    write_target(targets, "dead", f'[launch]\nkind = "qemu"\nbinary = "{wrapper}"\nmachine = "mps2-an385"\n'
                 'args = ["-kernel", "/nonexistent/hil-kernel.elf"]\n')  # fmt: skip
    pytester.makepyfile(test_five="\n".join(f"def test_{i}(dut):\n    dut.exec('pass')\n" for i in range(5)))
    junit = pytester.path / "junit.xml"
    result = _run(pytester, f"--targets={targets}", "--board=dead", "--board=native", f"--junitxml={junit}",
                  "--hil-retries=1", "--hil-quarantine-after=3")  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = cases_of(junit)
    assert all(not cases[(f"test_{i}[native]", "native")][0].result for i in range(5))  # others unaffected
    dead = [cases[(f"test_{i}[dead]", "dead")][0] for i in range(5)]
    assert all(isinstance(c.result[0], Error) for c in dead)
    assert "BootError: dead:" in dead[0].result[0].message  # the real boot failure comes first
    quarantined = [c for c in dead if "quarantined after 3 infrastructure errors" in c.result[0].message]
    assert len(quarantined) == 3
    assert starts.read_text().count("start") == 2  # test_0 and its retry; never booted again after that
    out = result.stdout.str()
    assert "hil: quarantined boards" in out and "QUARANTINED dead" in out



