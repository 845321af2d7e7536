"""The tray without devices: JUnit tallies become a device's verdict counts, run_tray gives one
verdict per device (in parallel, in order, a crash in the action is still a verdict), ports are
resolved once, and the suite's pytest is started with the lab file and the resolved port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness import procs
from harness.config.labs import load_lab
from harness.flash import FlashError
from harness.io.usb import resolve_port
from harness.lab import tray
from harness.lab.tray import DeviceResult, device_port, run_suite, run_tray, tally_junit
from tests.unit.config.test_labs import lab_file

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
  <testcase classname="smoke" name="test_ok"/>
  <testcase classname="smoke" name="test_also_ok"/>
  <testcase classname="smoke" name="test_math">
    <failure message="assert 2 == 3&#10;where 2 = f()">long text</failure></testcase>
  <testcase classname="smoke" name="test_board"><error message="BoardDied: gone"/></testcase>
  <testcase classname="smoke" name="test_wifi"><skipped message="no wifi"/></testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def lab(tmp_path):
    return load_lab(lab_file(tmp_path, '[[device]]\nname = "pico-1"\nport = "/dev/ttyHILFAKE0"\n'
                                       '[[device]]\nname = "pico-2"\nport = "/dev/ttyHILFAKE1"\n'))  # fmt: skip


def test_tally_junit_counts_and_keeps_the_first_problem(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    result = DeviceResult("pico-1")
    tally_junit(path, result)
    assert (result.passed, result.failed, result.errors, result.skipped) == (2, 1, 1, 1)
    assert result.problem == "test_math: assert 2 == 3 where 2 = f()"  # one line, the first problem


def test_run_tray_runs_devices_in_parallel_and_keeps_order(lab):
    work = [(lab, d) for d in lab.devices]
    together = threading.Barrier(len(work), timeout=5)  # passes only if both actions run at once

    def action(the_lab, device):
        together.wait()
        if device.name == "pico-2":
            raise RuntimeError("bug in the action\nsecond line")
        return DeviceResult(device.name, port=device.port, verdict="PASS")

    first, second = run_tray(work, action)
    assert (first.name, first.verdict, first.port) == ("pico-1", "PASS", "/dev/ttyHILFAKE0")
    assert (second.name, second.verdict) == ("pico-2", "ERROR")
    assert second.problem.startswith("internal error: bug in the action") and "\n" not in second.problem
    assert run_tray([], action) == []


def test_device_port_for_a_plain_device_path(lab):
    with device_port(resolve_port(lab.devices[0])) as port:
        assert port == "/dev/ttyHILFAKE0"


class FakeProc:
    def __init__(self, status: int) -> None:
        self.status, self.pid = status, 1

    def wait(self, timeout=None) -> int:
        return self.status

    def poll(self) -> int:
        return self.status


def capture_spawn(monkeypatch, status: int = 0, junit: str | None = JUNIT) -> list:
    calls: list = []

    def spawn(argv, **kwargs):
        calls.append((list(argv), kwargs))
        if junit is not None:
            Path(next(a for a in argv if a.startswith("--junitxml=")).split("=", 1)[1]).write_text(junit)
        return FakeProc(status)

    monkeypatch.setattr(procs, "spawn", spawn)
    return calls


def test_run_suite_hands_pytest_the_lab_file_and_the_resolved_port(lab, tmp_path, monkeypatch):
    calls = capture_spawn(monkeypatch, status=1)
    device = lab.devices[0]
    suite = tmp_path / "suite"
    result = DeviceResult(device.name)
    run_suite(device, "/dev/ttyACM3", tmp_path, suite, 60, result)
    ((argv, kwargs),) = calls
    assert argv[:4] == [sys.executable, "-m", "pytest", str(suite)]
    assert argv[argv.index("--hil-lab") + 1] == str(device.lab_path.resolve())
    assert argv[argv.index("--hil-port") + 1] == "pico-1=/dev/ttyACM3"
    assert argv[argv.index("--board") + 1] == "pico-1"
    assert f"--junitxml={tmp_path / 'pico-1.junit.xml'}" in argv
    assert not any(key.startswith("HIL_CAN_") for key in kwargs.get("env") or {})  # the lab file says it all
    assert kwargs["stdin"] is subprocess.DEVNULL
    assert (result.passed, result.failed, result.errors) == (2, 1, 1)  # status 1: failures, from the report
    assert result.junit == tmp_path / "pico-1.junit.xml"


def test_run_suite_crash_without_report_or_with_odd_status(lab, tmp_path, monkeypatch):
    device = lab.devices[0]
    capture_spawn(monkeypatch, status=4, junit=None)
    with pytest.raises(FlashError, match=r"pico-1: pytest exited with status 4 and wrote no report; see .*pico-1"):
        run_suite(device, "/dev/ttyACM3", tmp_path, tmp_path / "suite", 60, DeviceResult(device.name))
    capture_spawn(monkeypatch, status=3, junit='<testsuite><testcase name="t"/></testsuite>')
    result = DeviceResult(device.name)
    run_suite(device, "/dev/ttyACM3", tmp_path, tmp_path / "suite", 60, result)
    assert (result.passed, result.errors, result.problem) == (1, 1, "pytest exited with status 3")


def test_smoke_device_error_becomes_a_verdict(lab, tmp_path, monkeypatch):
    def no_board(device, port, log_dir, result):
        raise FlashError(f"{device.name}: no MicroPython banner after reset (got '')")

    monkeypatch.setattr(tray, "check_board", no_board)
    result = tray.smoke_device(lab, lab.devices[1], tmp_path, tray.Reporter(), flash=False)
    assert (result.verdict, result.port) == ("ERROR", "/dev/ttyHILFAKE1")
    assert result.problem == "pico-2: no MicroPython banner after reset (got '')"


# --- device locks: every command that opens a device takes its lock ---------------------------------
def test_run_suite_hands_its_device_lock_to_the_child_pytest(lab, tmp_path, monkeypatch):
    from harness.lab.pool import DeviceLock

    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    calls = capture_spawn(monkeypatch)
    lock = DeviceLock("/dev/ttyACM3", "pico-1", purpose="hil smoke")
    assert lock.try_acquire()
    run_suite(lab.devices[0], "/dev/ttyACM3", tmp_path, tmp_path / "suite", 60, DeviceResult("pico-1"), [lock])
    ((_, kwargs),) = calls
    assert kwargs["pass_fds"] == (lock.fd,) and kwargs["env"]["HIL_LOCK_FDS"] == str(lock.fd)
    lock.release()


def holding(tmp_path, monkeypatch, port: str):
    """The device's lock, held by "another run" (a second open file of the lock: flock tells them apart)."""
    from harness.lab.pool import DeviceLock

    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    other = DeviceLock(port, "pico-2", purpose="pytest suites/smoke")
    assert other.try_acquire()
    return other


def test_smoke_on_a_device_another_run_holds_names_the_holder_in_one_line(lab, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(tray, "check_board", lambda *a: opened.append(a))
    other = holding(tmp_path, monkeypatch, "/dev/ttyHILFAKE1")
    result = tray.smoke_device(lab, lab.devices[1], tmp_path, tray.Reporter(), flash=False, lock_timeout=0.3)
    other.release()
    assert opened == []  # the port was never opened
    assert result.verdict == "ERROR" and "\n" not in result.problem
    assert result.problem.startswith(f"device /dev/ttyHILFAKE1 (board pico-2) is held by pid {os.getpid()} "
                                     "(pytest suites/smoke on host ")  # fmt: skip
    assert "gave up after 0.3 s" in result.problem and "--lock-timeout" in result.problem


def test_smoke_waits_for_a_busy_device_then_holds_it_throughout(lab, tmp_path, monkeypatch):
    from harness.lab.pool import DeviceLock

    other = holding(tmp_path, monkeypatch, "/dev/ttyHILFAKE1")
    phases = []

    class Recorder(tray.Reporter):
        def phase(self, device, text):
            phases.append(text)

    def check(device, port, log_dir, result):  # while it runs, the device is ours
        assert not DeviceLock(port, "x").try_acquire()
        result.banner = "MicroPython v1.25.0 on 2025-04-15"

    handed = []
    monkeypatch.setattr(tray, "check_board", check)
    monkeypatch.setattr(tray, "run_suite", lambda *a: handed.extend((a[0].name, lock.held) for lock in a[-1]))
    threading.Timer(0.5, other.release).start()
    result = tray.smoke_device(lab, lab.devices[1], tmp_path, Recorder(), flash=False, lock_timeout=10)
    assert result.verdict == "PASS", result.problem
    assert handed == [("pico-2", True)]  # the suite's pytest is handed the held lock
    assert f"waiting for pid {os.getpid()}" in phases
    assert "is held by pid" in result.notes[0] and "waiting up to 10 s" in result.notes[0]
    probe = DeviceLock("/dev/ttyHILFAKE1", "x")
    assert probe.try_acquire()  # released at the end
    probe.release()
