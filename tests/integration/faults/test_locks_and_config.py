"""Faults from sharing a machine and from bad settings, injected for real:

- two `hil smoke` runs, or a pytest run and a `hil smoke`, on one (emulated) device: the later one
  waits for the device lock, or reports in one line who holds it; never "port in use" half-way;
- a QEMU binary that is not installed: `hil boards` names file, key and package, and a run reports
  one ConfigError instead of retrying a board that cannot start;
- work dirs of dead harnesses are swept, live ones' never (other runs share the machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from junitparser import Error, JUnitXml, Properties

from harness.board import sweep_stale_workdirs
from harness.testing.emulated import EmulatedDevice
from tests.conftest import REPO, write_target

HIL = [sys.executable, "-m", "harness.cli.main"]
MICROBIT = ('console = { write_chunk = 16, write_gap_ms = 4, raw_paste = false }\n'
            'capabilities = { fs = true, heap_kb = 10 }\nexpect_version = "1.9"\n')  # fmt: skip


@pytest.fixture
def env(tmp_path):
    """Every process of the test locks devices in its own lock dir (other runs may share /tmp)."""
    return {**os.environ, "HIL_LOCK_DIR": str(tmp_path / "locks"), "COLUMNS": "220"}


@pytest.fixture
def device_lab(tmp_path):
    with EmulatedDevice("microbit", log_dir=tmp_path / "emu") as device:
        path = tmp_path / "lab-one.toml"
        path.write_text(f'[[device]]\nname = "mb"\nport = "{device.port}"\n{MICROBIT}')
        yield device, path


def start(args: list[str], env: dict, out: Path) -> subprocess.Popen:
    out.parent.mkdir(parents=True, exist_ok=True)
    log = open(out, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO)


def finish(proc: subprocess.Popen, timeout: float = 300) -> int:
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def smoke_result(out_dir: Path) -> dict:
    (result,) = json.loads((out_dir / "smoke.json").read_text())
    return result


def wait_for_holder(lock_dir: Path, pid: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in lock_dir.glob("*.lock"):
            text = path.read_text()
            if text and json.loads(text)["pid"] == pid:
                return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never took a device lock in {lock_dir}")


def test_two_smokes_on_one_device_take_turns(no_leftovers, device_lab, tmp_path, env):
    """Issue 3: the second `hil smoke`, started 0.5 s after the first, waits for the device (the
    first holds it for flash, banner and its suite's child pytest, which must not wait for its own
    parent), then runs: both pass. Before, one failed with "serial port ... is in use"."""
    _, lab = device_lab
    smoke = [*HIL, "smoke", "--lab", str(lab), "--lock-timeout", "300"]
    first = start([*smoke, "--out", str(tmp_path / "a")], env, tmp_path / "a.log")
    time.sleep(0.5)
    second = start([*smoke, "--out", str(tmp_path / "b")], env, tmp_path / "b.log")
    assert finish(first) == 0, (tmp_path / "a.log").read_text()
    assert finish(second) == 0, (tmp_path / "b.log").read_text()
    a, b = smoke_result(tmp_path / "a"), smoke_result(tmp_path / "b")
    for r in (a, b):
        assert r["verdict"] == "PASS", r["problem"]
        assert r["flash"]["files"] and r["passed"] >= 10 and r["failed"] == r["errors"] == 0
    assert not a["notes"]  # the first had it at once, and handed it to its suite's pytest
    assert b["notes"][0].startswith(f"device {a['port']} (board mb) is held by pid {first.pid} (hil smoke on host ")
    assert "is in use" not in (tmp_path / "b" / "mb.pytest.log").read_text()


HOLD = """
import time
from pathlib import Path

def test_holds_the_device(dut):
    assert dut.exec("print(6 * 7)") == "42\\n"
    deadline = time.monotonic() + 120
    while not Path({release!r}).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def test_smoke_while_a_pytest_run_holds_the_device_names_it_then_waits(no_leftovers, device_lab, tmp_path, env):
    """Issue 3: a pytest run holds the device (a test on it, through the lab file, that lasts until
    told to end); a `hil smoke` with a short lock timeout reports the holder in one line without
    touching the port; one with a long timeout waits for the run to end, then passes."""
    _, lab = device_lab
    release = tmp_path / "release"
    (tmp_path / "test_hold.py").write_text(HOLD.format(release=str(release)))
    run = start([sys.executable, "-m", "pytest", str(tmp_path / "test_hold.py"), "--hil-lab", str(lab),
                 "--board", "mb", "-p", "no:cacheprovider", "-q", f"--hil-logs={tmp_path / 'run-logs'}",
                 f"--rootdir={tmp_path}"], env, tmp_path / "run.log")  # fmt: skip
    smoke = [*HIL, "smoke", "--lab", str(lab), "--no-flash"]
    try:
        wait_for_holder(tmp_path / "locks", run.pid)
        waiting = start([*smoke, "--lock-timeout", "300", "--out", str(tmp_path / "waited")], env,
                        tmp_path / "waited.log")  # fmt: skip
        busy = subprocess.run([*smoke, "--lock-timeout", "1", "--out", str(tmp_path / "busy")], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert busy.returncode == 1
        problem = smoke_result(tmp_path / "busy")["problem"]
        assert problem.startswith(f"device {device_lab[0].port} (board mb) is held by pid {run.pid} (")
        assert "-m pytest" in problem and "gave up after 1 s" in problem and "--lock-timeout" in problem
        assert "\n" not in problem and "is in use" not in problem
        assert run.poll() is None and waiting.poll() is None  # the run undisturbed; the other smoke waits
        time.sleep(1)
        release.write_text("")
        assert finish(run) == 0, (tmp_path / "run.log").read_text()
        assert finish(waiting) == 0, (tmp_path / "waited.log").read_text()
    finally:
        release.write_text("")
        finish(run, 5)
    result = smoke_result(tmp_path / "waited")
    assert result["verdict"] == "PASS", result["problem"]
    assert result["notes"][0].startswith(f"device {device_lab[0].port} (board mb) is held by pid {run.pid} (")


# --- launch settings traced to the file (issue 7) ----------------------------------------------------
@pytest.fixture
def missing_qemu(tmp_path):
    targets = tmp_path / "targets"
    targets.mkdir()
    path = write_target(targets, "nope", '[launch]\nmachine = "microbit"\nbinary = "qemu-system-hilnope"\n'
                                         '[console]\nboot_timeout = 5\n')  # fmt: skip
    return targets, path


def test_hil_boards_flags_a_qemu_binary_that_is_not_installed(tmp_path, missing_qemu, env):
    targets, path = missing_qemu
    done = subprocess.run([*HIL, "boards"], env={**env, "HIL_TARGETS": str(targets)}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "nope" in done.stdout
    assert done.stderr.replace("\n", "") == (f"error: {path}: key 'launch.binary' is 'qemu-system-hilnope', "
                                             "which is not on PATH: install it or fix the path")  # fmt: skip


def test_a_run_on_a_board_whose_qemu_is_missing_is_one_config_error_not_retried(tmp_path, missing_qemu, env):
    targets, path = missing_qemu
    (tmp_path / "test_x.py").write_text("def test_a(dut):\n    pass\n\ndef test_b(dut):\n    pass\n")
    junit = tmp_path / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_x.py"), f"--targets={targets}",
                           "--board=nope", "--hil-retries=2", f"--junitxml={junit}", "-p", "no:cacheprovider",
                           f"--hil-logs={tmp_path / 'logs'}", f"--rootdir={tmp_path}"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    cases = [case for suite in JUnitXml.fromfile(str(junit)) for case in suite]
    assert len(cases) == 2
    for case in cases:
        (error,) = case.result
        props = {p.name: p.value for p in case.child(Properties)}
        assert isinstance(error, Error)
        assert error.message == (f'failed on setup with "ConfigError: {path}: key \'launch.binary\' is '
                                 "'qemu-system-hilnope', which is not on PATH: install it or fix the path\"")
        assert "hil_retried" not in props  # a retry cannot install QEMU
    assert "retry 1 of 2" not in done.stdout


def test_a_missing_serial_device_names_the_target_file_and_key(tmp_path, env):
    targets = tmp_path / "targets"
    targets.mkdir()
    path = write_target(targets, "gone", '[launch]\nkind = "serial"\nport = "/dev/ttyHILGONE"\n')
    (tmp_path / "test_x.py").write_text("def test_a(dut):\n    pass\n")
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_x.py"), f"--targets={targets}",
                    "--board=gone", "--hil-retries=0", f"--junitxml={junit}", "-p", "no:cacheprovider",
                    f"--hil-logs={tmp_path / 'logs'}", f"--rootdir={tmp_path}"],
                   env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    ((case,),) = [list(suite) for suite in JUnitXml.fromfile(str(junit))]
    assert (f"{path}: serial port /dev/ttyHILGONE does not exist: check the cable "
                                           "or fix key 'launch.port'") in case.result[0].message  # fmt: skip


# --- shared temp dirs (issue 8) -------------------------------------------------------------------------
def test_sweeping_removes_dead_harnesses_work_dirs_and_never_a_live_ones():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    assert not Path(f"/proc/{dead_pid}").exists()
    gone = Path(tempfile.mkdtemp(prefix=f"hil-sweeptest-{dead_pid}-"))
    mine = Path(tempfile.mkdtemp(prefix=f"hil-sweeptest-{os.getpid()}-"))
    try:
        sweep_stale_workdirs()
        assert not gone.exists() and mine.is_dir()
    finally:
        for path in (gone, mine):
            if path.exists():
                path.rmdir()
