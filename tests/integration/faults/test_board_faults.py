"""Faults injected into real boards: a QEMU killed under run_to_exit (infrastructure, retried, not
the firmware's verdict), runaway code stopped within its timeout on every board (also code that
swallows Ctrl-C), and a snapshot that no longer restores (a cold boot that the report shows)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from junitparser import Error, Failure

from harness.board import Board, FirmwareExit
from harness.config.boards import find_board
from harness.errors import BoardDied
from harness.io.repl import ExecTimeout
from harness.pytest.fixtures import board_properties
from tests.conftest import REPO
from tests.integration.test_parallel import _run, cases_of

DEFAULT_BOARDS = ("native", "microbit", "mps2_an385", "qemu_x86")
MARGIN = 2.0  # seconds past exec_timeout by which runaway code is stopped and the board usable again
RUNAWAY = {
    "plain": "while True:\n    pass",
    # KeyboardInterrupt caught inside the loop: Ctrl-C never stops it, only a restart does
    "swallows_ctrl_c": "while True:\n    try:\n        while True:\n            pass\n"
                       "    except KeyboardInterrupt:\n        pass",
}  # fmt: skip


def boot(name: str, tmp_path) -> Board:
    return Board(find_board(name, REPO / "targets"), log_dir=tmp_path, log=lambda m: None).start()


# --- 1. a QEMU killed under run_to_exit ---------------------------------------------------------------

def test_qemu_killed_under_run_to_exit_is_board_died(no_leftovers, tmp_path):
    with boot("mps2_an385", tmp_path) as board:
        pid = board.launcher.proc.pid
        killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
        killer.start()
        try:
            with pytest.raises(BoardDied) as info:  # never FirmwareExit: that is a test failure
                board.run_to_exit("while True:\n    pass", timeout=30)  # firmware that would never exit
        finally:
            killer.cancel()
        assert not isinstance(info.value, FirmwareExit)
        assert "mps2_an385: while running code to its exit, QEMU was killed by signal 9 (SIGKILL)" in str(info.value)
        assert not board.alive()
        board.restart()  # what the pool does before the retry
        with pytest.raises(FirmwareExit) as failed:  # the firmware's own status is still its verdict
            board.run_to_exit("import hil_semihost\nhil_semihost.exit(3)")
        assert failed.value.status == 3
        assert board.eval("1+1") == 2


RUN_TO_EXIT_SUITE = """
import os, signal, threading
from pathlib import Path

FLAGS = Path(os.environ["HIL_TEST_FLAGS"])

def test_killed_under_run_to_exit(dut):
    flag = FLAGS / "killed"
    if not flag.exists():
        flag.write_text("killed")
        threading.Timer(1.0, os.kill, (dut.launcher.proc.pid, signal.SIGKILL)).start()
        dut.run_to_exit("while True:\\n    pass", timeout=30)
    assert dut.run_to_exit("import hil_semihost\\nhil_semihost.exit(0)") == 0

def test_firmware_fails(dut):
    dut.run_to_exit("import hil_semihost\\nhil_semihost.exit(3)")
"""


def test_run_to_exit_killed_is_retried_and_a_firmware_status_is_not(pytester, tmp_path, no_leftovers, monkeypatch):
    pytester.makepyfile(test_exit=RUN_TO_EXIT_SUITE)
    flags = tmp_path / "flags"
    flags.mkdir()
    monkeypatch.setenv("HIL_TEST_FLAGS", str(flags))
    junit = pytester.path / "junit.xml"
    result = _run(pytester, "-n", "0", "--board=mps2_an385", f"--junitxml={junit}", "--hil-retries=1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    cases = cases_of(junit)
    case, props = cases[("test_killed_under_run_to_exit[mps2_an385]", "mps2_an385")]
    assert not case.result, "the retry on a fresh board passes"
    assert props["hil_retried"] == "1"
    assert props["hil_first_error"].startswith("BoardDied: mps2_an385: while running code to its exit, "
                                               "QEMU was killed by signal 9 (SIGKILL)")
    case, props = cases[("test_firmware_fails[mps2_an385]", "mps2_an385")]
    assert isinstance(case.result[0], Failure) and "hil_retried" not in props
    assert "FirmwareExit" in case.result[0].message or "status 3" in case.result[0].message


def test_run_to_exit_killed_without_retries_is_an_error(pytester, tmp_path, no_leftovers, monkeypatch):
    pytester.makepyfile(test_exit=RUN_TO_EXIT_SUITE)
    monkeypatch.setenv("HIL_TEST_FLAGS", str(tmp_path))
    junit = pytester.path / "junit.xml"
    _run(pytester, "-n", "0", "--board=mps2_an385", f"--junitxml={junit}", "--hil-retries=0",
         "-k", "killed")  # fmt: skip
    case, _props = cases_of(junit)[("test_killed_under_run_to_exit[mps2_an385]", "mps2_an385")]
    assert isinstance(case.result[0], Error) and "killed by signal 9" in case.result[0].message


# --- 2. runaway code ----------------------------------------------------------------------------------

@pytest.mark.parametrize("code", RUNAWAY.keys())
@pytest.mark.parametrize("name", DEFAULT_BOARDS)
def test_runaway_code_is_stopped_within_its_timeout(no_leftovers, tmp_path, name, code):
    timeout = 3.0
    with boot(name, tmp_path) as board:
        assert board.eval("1+1") == 2
        started = time.monotonic()
        with pytest.raises(ExecTimeout):
            board.exec(RUNAWAY[code], timeout=timeout)
        assert board.eval("1+1") == 2  # usable again: interrupted, or restarted
        took = time.monotonic() - started
        assert took < timeout + MARGIN, f"{name}: runaway code stopped after {took:.2f} s (timeout {timeout:g} s)"


SWALLOW_SUITE = """
from harness.io.repl import ExecTimeout
import pytest

def test_swallows_ctrl_c(dut):
    dut.exec("while True:\\n    try:\\n        while True:\\n            pass\\n"
             "    except KeyboardInterrupt:\\n        pass", timeout=3)

def test_after(dut):
    assert dut.eval("6 * 7") == 42
"""


def test_runaway_that_swallows_ctrl_c_is_a_plain_failure_with_a_capture(pytester, no_leftovers):
    """On qemu_x86 with a network (so a packet capture runs around the test): the board is
    restarted under the test; its teardown must not stop the capture on the new QEMU."""
    pytester.makepyfile(test_swallow=SWALLOW_SUITE)
    junit = pytester.path / "junit.xml"
    result = _run(pytester, "-n", "0", "--board=qemu_x86", f"--junitxml={junit}", "--hil-retries=1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    cases = cases_of(junit)
    case, props = cases[("test_swallows_ctrl_c[qemu_x86]", "qemu_x86")]
    assert len(case.result) == 1 and isinstance(case.result[0], Failure), case.result
    assert "ExecTimeout" in case.result[0].message and "ignored Ctrl-C" in case.result[0].message
    assert "hil_retried" not in props and "hil_infrastructure_error" not in props
    assert "pcap" in props
    assert "object-del" not in result.stdout.str()
    case, _ = cases[("test_after[qemu_x86]", "qemu_x86")]
    assert not case.result


# --- 3. a snapshot that no longer restores ------------------------------------------------------------

def test_corrupted_snapshot_boots_cold_and_the_properties_say_why(no_leftovers, tmp_path, monkeypatch):
    snapshots = tmp_path / "snapshots"
    monkeypatch.setenv("HIL_SNAPSHOTS", str(snapshots))
    with boot("qemu_x86", tmp_path) as first:  # saves this configuration's snapshot
        assert first.facts.boot_kind == "cold" and first.facts.boot_note.startswith("no snapshot yet")
    with boot("qemu_x86", tmp_path) as second:
        assert (second.facts.boot_kind, second.facts.boot_note, second.facts.snapshot_fallbacks) == ("restored", "", 0)
        assert board_properties(second)["boot_kind"] == "restored"
    (snap,) = snapshots.glob("qemu_x86-*.vmstate")
    snap.write_bytes(b"not a QEMU migration stream")
    with boot("qemu_x86", tmp_path) as board:
        assert board.exec("print('up')") == "up\n"
        props = board_properties(board)
        assert props["boot_kind"] == "cold" and props["snapshot_fallbacks"] == "1"
        assert props["boot_note"].startswith("snapshot restore failed: ") and props["boot_note"].endswith("; cold boot")
        log = board.console_log.read_text(errors="replace")
        assert "snapshot restore failed" in log  # marked in the console log too
    assert snap.read_bytes()[:4] == b"QEVM"  # saved again from the cold boot
