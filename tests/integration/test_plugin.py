"""The pytest plugin end to end, in a child pytest: fixtures on real boards, capability skips,
and JUnit that keeps infrastructure errors apart from test failures."""

from __future__ import annotations

import shutil

import pytest
from junitparser import Error, Failure, JUnitXml, Properties, Skipped

from tests.conftest import REPO, write_target

SUITE = """
import os, signal
import pytest

def test_passes(dut):
    assert dut.exec("print('ok')") == "ok\\n"

def test_fails(dut):
    assert dut.eval("1 + 1") == 3

@pytest.mark.requires("can")
def test_needs_can(dut):
    pass

def test_board_dies(dut):
    if dut.spec.launch.kind != "qemu":
        pytest.skip("only QEMU boards are killed here")
    os.kill(dut.launcher.proc.pid, signal.SIGKILL)
    dut.exec("print(1)")
"""


def _cases(xml_path):
    cases = {}
    for suite in JUnitXml.fromfile(str(xml_path)):
        for case in suite:
            props = case.child(Properties)
            cases[case.name] = (case, {p.name: p.value for p in props} if props is not None else {})
    return cases


@pytest.fixture
def targets(tmp_path):
    directory = tmp_path / "targets"
    directory.mkdir()
    for name in ("native", "microbit"):
        shutil.copy(REPO / "targets" / f"{name}.toml", directory)
    write_target(directory, "broken", '[launch]\nkind = "qemu"\nmachine = "microbit"\nbaud = 9\n')
    write_target(directory, "unplugged", '[launch]\nkind = "serial"\nport = "/dev/ttyHILGONE"\n')
    return directory


def test_junit_separates_errors_from_failures(pytester, targets, no_leftovers):
    pytester.makepyfile(test_suite=SUITE)
    # conftests in other folders, as suites/ has one per suite: pytest then reports this folder's
    # tests through a hook subset that hashes every plugin (the plugin's objects must be hashable)
    for other in ("other_a", "other_b"):
        (pytester.path / other).mkdir()
        (pytester.path / other / "conftest.py").write_text("")
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        f"--targets={targets}", "--board=native", "--board=microbit", "--board=broken", "--board=unplugged",
        f"--junitxml={junit}", f"--hil-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = _cases(junit)

    case, props = cases["test_passes[native]"]
    assert props["board"] == "native" and props["micropython_version"].startswith("1.")
    assert not case.result and "ok" in (case.system_out or "")

    case, _ = cases["test_fails[microbit]"]
    assert isinstance(case.result[0], Failure)  # the firmware's answer was wrong: a test failure

    case, _ = cases["test_board_dies[microbit]"]
    assert isinstance(case.result[0], Error)  # QEMU died: infrastructure, not a failure
    assert "QEMU was killed by signal 9" in case.result[0].message

    case, props = cases["test_passes[broken]"]
    assert isinstance(case.result[0], Error) and props["board"] == "broken"
    assert "broken.toml: unknown key 'launch.baud'" in case.result[0].message

    case, _ = cases["test_passes[unplugged]"]
    assert isinstance(case.result[0], Error)
    assert "serial port /dev/ttyHILGONE does not exist" in case.result[0].message

    case, _ = cases["test_needs_can[native]"]
    assert isinstance(case.result[0], Skipped) and "lacks capability: can" in case.result[0].message

    # User mistakes are one line in the terminal, not a traceback of the harness's internals.
    assert "harness/board.py" not in result.stdout.str() and "harness/config/boards.py" not in result.stdout.str()


