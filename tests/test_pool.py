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
from harness.errors import ConfigError, InfrastructureError
from harness.lab.pool import BoardPool, DeviceBusy, DeviceLock, candidates
from tests.conftest import write_target


def test_lock_names_its_holder_and_is_released(tmp_path):
    port = tmp_path / "ttyFAKE0"
    port.touch()
    mine = DeviceLock(str(port), "bench-1", tmp_path / "locks")
    assert mine.try_acquire()
    other = DeviceLock(str(port), "bench-1", tmp_path / "locks")  # a second open file: another claimant
    assert not other.try_acquire()
    waited = []
    with pytest.raises(DeviceBusy) as info:
        other.acquire(timeout=0.3, log=waited.append)
    message = str(info.value)
    assert f"device {port} (board bench-1) is held by pid {os.getpid()}" in message
    assert "on host" in message and "since" in message and "--hil-lock-timeout" in message
    assert waited and "waiting up to 0.3 s" in waited[0]
    mine.release()
    assert mine.path.read_text() == ""  # released: no stale holder left in the file
    assert other.try_acquire()
    other.release()


def test_two_names_of_one_device_share_a_lock(tmp_path):
    device = tmp_path / "ttyACM0"
    device.touch()
    alias = tmp_path / "usb-Espressif-if00"
    alias.symlink_to(device)  # like /dev/serial/by-id/... -> /dev/ttyACM0
    a = DeviceLock(str(device), "x", tmp_path / "locks")
    b = DeviceLock(str(alias), "x", tmp_path / "locks")
    assert a.path == b.path
    assert a.try_acquire() and not b.try_acquire()
    a.release()


def test_lock_dir_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    lock = DeviceLock("/dev/ttyX", "x", blocker / "locks")
    with pytest.raises(InfrastructureError) as info:
        lock.try_acquire()
    assert str(info.value).startswith(f"cannot create lock directory {blocker / 'locks'}")
    assert "set HIL_LOCK_DIR" in str(info.value) and "\n" not in str(info.value)


class _RecordingBoard:
    """Stands in for harness.board.Board in this unit test of lease selection only."""

    def __init__(self, spec, **kwargs) -> None:
        self.spec, self.name = spec, spec.name
        self.stopped = False

    def start(self):
        return self

    def stop(self) -> None:
        self.stopped = True


def test_lease_by_tag_takes_a_free_device(tmp_path, monkeypatch):
    targets = tmp_path / "targets"
    targets.mkdir()
    for name in ("bench1", "bench2"):
        (tmp_path / f"tty-{name}").touch()
        write_target(targets, name, f'arch = "esp32"\n[launch]\nkind = "serial"\nport = "{tmp_path}/tty-{name}"\n')
    write_target(targets, "other", f'[launch]\nkind = "serial"\nport = "{tmp_path}/tty-other"\n')
    monkeypatch.setenv("HIL_TARGETS", str(targets))
    assert sorted(s.name for s in candidates("tag:esp32")) == ["bench1", "bench2"]
    with pytest.raises(ConfigError, match="no target file has tag 'nope'"):
        candidates("tag:nope")

    locks = tmp_path / "locks"
    someone_else = DeviceLock(f"{tmp_path}/tty-bench1", "bench1", locks)
    assert someone_else.try_acquire()
    pool = BoardPool(tmp_path / "logs", lock_timeout=0.3, lock_directory=locks, board_factory=_RecordingBoard)
    board = pool.get("tag:esp32")
    assert board.name == "bench2"  # bench1 is busy: the free one is leased
    assert not DeviceLock(f"{tmp_path}/tty-bench2", "bench2", locks).try_acquire()
    second = BoardPool(tmp_path / "logs", lock_timeout=0.3, lock_directory=locks, board_factory=_RecordingBoard)
    with pytest.raises(DeviceBusy, match="every matching device is busy"):
        second.get("tag:esp32")
    with pytest.raises(DeviceBusy):  # remembered: later tests do not wait again
        second.get("tag:esp32")
    pool.release("tag:esp32")
    assert board.stopped
    assert DeviceLock(f"{tmp_path}/tty-bench2", "bench2", locks).try_acquire()
    someone_else.release()


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

