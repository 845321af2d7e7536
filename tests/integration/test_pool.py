"""Device locks and leases: one device, one user at a time, across workers, processes and crashes.

The end-to-end test exports a real QEMU micro:bit's console pty as a serial target (exactly how
a /dev/ttyACM0 board is reached) and points two pytest processes at it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import procs
from tests.conftest import write_target

HOLD = """
import os, time
from pathlib import Path

def test_hold(dut):
    assert dut.exec("print(1 + 1)") == "2\\n"
    Path(os.environ["HIL_HOLD_FLAG"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # hold the device until killed
        time.sleep(0.1)
"""


USE = """
def test_use(dut):
    assert dut.exec("print(6 * 7)") == "42\\n"
"""


@pytest.fixture
def microbit_pty(tmp_path):
    """A real QEMU micro:bit whose console pty nobody holds: a serial device for the test."""
    from harness.board import Board
    from harness.config.boards import find_board
    from harness.launch import make_launcher
    from harness.paths import resource

    board = Board(find_board("microbit"), log_dir=tmp_path / "qemu-logs", log=lambda m: None)
    launcher = make_launcher(board.spec, board.build(), board.workdir, resource("firmware_py"))
    try:
        launcher.start().close()
        yield launcher.ptys["serial0"]
    finally:
        launcher.stop()
        board.stop()


def _wait_for(predicate, what: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"process ended (status {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.1)


def test_two_processes_one_device(tmp_path, no_leftovers, microbit_pty):
    targets = tmp_path / "targets"
    targets.mkdir()
    write_target(targets, "bench1", f'[launch]\nkind = "serial"\nport = "{microbit_pty}"\n'
                 '[console]\nwrite_chunk = 32\nwrite_gap_ms = 2\nraw_paste = false\nboot_timeout = 15\n')  # fmt: skip
    (tmp_path / "test_hold.py").write_text(HOLD)
    (tmp_path / "test_use.py").write_text(USE)
    env = os.environ | {"HIL_LOCK_DIR": str(tmp_path / "locks"), "HIL_HOLD_FLAG": str(tmp_path / "held")}
    base = [sys.executable, "-m", "pytest", f"--targets={targets}", "--board=bench1", "-p", "no:cacheprovider",
            f"--rootdir={tmp_path}", "-q"]  # fmt: skip

    def start(name: str, *args: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.out"
        with open(log, "wb") as fh:
            proc = procs.spawn([*base, *args], cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT)
        return proc, log

    holder, _ = start("holder", "test_hold.py", f"--hil-logs={tmp_path / 'logs-a'}")
    waiter = None
    try:
        _wait_for(lambda: (tmp_path / "held").exists(), "holder on the device", holder)

        # A second process gives up after its lock timeout, naming the holder.
        busy = subprocess.run(
            [*base, "test_use.py", "--hil-lock-timeout=1", f"--junitxml={tmp_path / 'busy.xml'}",
             f"--hil-logs={tmp_path / 'logs-b'}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, start_new_session=True,
        )  # fmt: skip
        assert busy.returncode == pytest.ExitCode.TESTS_FAILED
        report = (tmp_path / "busy.xml").read_text()
        assert f"device {microbit_pty} (board bench1) is held by pid {holder.pid} (" in report
        assert "pytest" in report and "on host" in report and "gave up after 1 s" in report
        assert "waiting up to 1 s" in busy.stderr

        # A third waits; when the holder is killed -9 the kernel drops its lock and the waiter proceeds.
        waiter, waiter_log = start("waiter", "test_use.py", "--hil-lock-timeout=90", f"--hil-logs={tmp_path / 'c'}")
        _wait_for(lambda: "waiting up to 90 s" in waiter_log.read_text(), "waiting message", waiter)
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert waiter.wait(120) == 0, waiter_log.read_text()[-3000:]
        assert "1 passed" in waiter_log.read_text()
        assert "is ours now" in waiter_log.read_text()
    finally:
        for proc in (holder, waiter):
            if proc is not None:
                procs.kill(proc, grace=1.0)


