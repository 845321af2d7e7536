"""Crashes recognised by their signature (console.crash / console.crash_cpu in the target file):
real firmware faulting on real QEMU fails its test at once as BoardCrashed, with the dump, as a
test failure (the code under test crashed the board), and the next test gets a restarted board."""

from __future__ import annotations

import time

import pytest
from junitparser import Failure

from harness.board import Board
from harness.config.boards import find_board
from harness.errors import BoardCrashed
from harness.report.html import write_html
from tests.conftest import REPO
from tests.integration.test_parallel import _run, cases_of

# mps2_an385: a load from an address with nothing behind it is a BusFault, escalated to HardFault;
# ports/qemu's handler prints the registers. micro:bit 1.9.2: a store to 0x60000000 HardFaults too,
# but its handler prints nothing (found by QEMU's view of the CPU: in the handler, IPSR 3).
# qemu_x86: the kernel crashes, and QEMU ends (matched in the launcher's account of its exit).
FAULT = {
    "mps2_an385": "import machine\nprint('about to fault')\nmachine.mem32[0xF0000000]",
    "microbit": "import machine\nprint('about to fault')\nmachine.mem32[0x60000000] = 1",
    # the Linux guest: a kernel crash (sysrq c); panic=-1 reboots, -no-reboot makes that QEMU's exit
    "qemu_x86": "import os\nprint('about to fault')\nos.system('echo c > /proc/sysrq-trigger')",
}
SIGNATURE = {"mps2_an385": "HardFault exception caught:", "microbit": "CPU state XPSR=",
             "qemu_x86": "QEMU exited with status"}  # fmt: skip
DUMP_LINE = {"mps2_an385": "R12:  ", "microbit": "R15=", "qemu_x86": "QEMU exited with status 0"}

CRASH_SUITE = """
import os, time
from pathlib import Path

FAULT = {fault!r}

def test_a_crash(dut):
    started = time.monotonic()
    try:
        dut.exec(FAULT[dut.name])
    finally:
        Path(os.environ["HIL_TEST_FLAGS"], "took").write_text(str(time.monotonic() - started))

def test_next_one(dut):
    assert dut.exec("print('fresh board')") == "fresh board\\n"
"""


@pytest.mark.parametrize("name", FAULT)
def test_a_crash_fails_its_test_at_once_with_the_dump_and_the_next_test_passes(
    pytester, tmp_path, no_leftovers, monkeypatch, name
):
    pytester.makepyfile(test_crash=CRASH_SUITE.format(fault=FAULT))
    monkeypatch.setenv("HIL_TEST_FLAGS", str(tmp_path))
    junit, logs = pytester.path / "junit.xml", pytester.path / "logs"
    result = _run(pytester, "-n", "0", f"--board={name}", f"--junitxml={junit}", f"--hil-logs={logs}",
                  "--hil-retries=1")  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    took = float((tmp_path / "took").read_text())
    assert took < 1.0, f"{name}: the crash took {took:.2f} s to fail its test"
    cases = cases_of(junit)
    case, props = cases[(f"test_a_crash[{name}]", name)]
    (failure,) = case.result
    assert isinstance(failure, Failure), "the code under test crashed the board: a failure, not an error"
    text = failure.text or ""
    assert failure.message.startswith(f"BoardCrashed: {name}: board crashed ({SIGNATURE[name]}")
    assert "--- crash dump ---" in text and DUMP_LINE[name] in text
    assert "--- board output before the crash ---\nabout to fault" in text
    assert "hil_retried" not in props and "hil_infrastructure_error" not in props  # not retried
    next_case, _ = cases[(f"test_next_one[{name}]", name)]
    assert not next_case.result, "the next test runs on a restarted board"
    log = next(logs.rglob(f"{name}.console.log")).read_text(errors="replace")
    assert log.count(f"boot {name} ---") == 2 and f"{name} crashed (" in log
    html = write_html(junit, tmp_path / "report.html").read_text()
    failures = html[html.index('id="failures"') : html.index('id="tests"')]
    assert "test_a_crash" in failures and "crash dump" in failures


def test_a_hardfault_through_board_exec(no_leftovers, tmp_path):
    board = Board(find_board("mps2_an385", REPO / "targets"), log_dir=tmp_path, log=lambda m: None).start()
    with board:
        started = time.monotonic()
        with pytest.raises(BoardCrashed) as info:
            board.exec(FAULT["mps2_an385"], timeout=30)
        assert time.monotonic() - started < 1.0
        assert info.value.output == "about to fault\n" and "xPSR:" in info.value.dump
        assert not board.alive()  # a crashed board is of no use: the pool restarts it
        board.restart()
        assert board.eval("1+1") == 2
