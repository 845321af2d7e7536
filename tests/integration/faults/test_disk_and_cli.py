"""Faults injected into the real `hil` command (a child process): a read-only cache (warm: served;
cold: one line), a full disk (one line, nothing half-written left), no network (the mirror is
blamed, not deb-src), code on the board that raises or runs away (`hil boot -c`: the board's
traceback, not the host's), and Ctrl-C in the middle of `hil run` (INTERRUPTED verdicts, status
130, HTML written, even on a second Ctrl-C). Disks are tmpfs mounts (read-only: remounted ro), so
the user's own cache is never touched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, remount_ro, tmpfs

HIL = [sys.executable, "-m", "harness.cli.main"]


def hil(*args: str, cache: Path | None = None, timeout: float = 120, prefix: tuple[str, ...] = (),
        **kwargs) -> subprocess.CompletedProcess:  # fmt: skip
    env = {**os.environ, "COLUMNS": "200"}
    if cache is not None:
        env["HIL_CACHE"] = str(cache)
    return subprocess.run([*prefix, *HIL, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env, **kwargs)  # fmt: skip


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("hil: error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


# --- disks ------------------------------------------------------------------------------------------

BOARD = "microbit_uflash"  # a prebuilt image: a quick build (a copy of a .hex), 640 KB in the cache


def test_read_only_warm_cache_serves_the_image(tmp_path):
    with tmpfs(tmp_path / "cache", "size=8m") as cache:
        first = hil("build", BOARD, cache=cache)
        assert first.returncode == 0, first.stderr
        remount_ro(cache)  # lock files and all, as a cache shared read-only
        again = hil("build", BOARD, cache=cache)
        assert again.returncode == 0, again.stderr
        assert "(cached)" in again.stdout and "Traceback" not in again.stderr


def test_read_only_cold_cache_is_one_line_naming_path_and_fix(tmp_path):
    with tmpfs(tmp_path / "cache", "ro,size=1m") as cache:
        result = hil("build", BOARD, cache=cache)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert f"{cache}/" in line and "Read-only file system" in line
    assert "set HIL_CACHE to a writable directory" in line


def test_full_disk_is_one_line_and_leaves_no_partial_output(tmp_path):
    with tmpfs(tmp_path / "cache", "size=256k") as cache:
        result = hil("build", BOARD, cache=cache)
        assert result.returncode == 2
        line = one_error_line(result.stderr)
        assert f"{cache}/" in line and "No space left on device" in line and "free space on that disk" in line
        leftovers = [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
        assert leftovers == [] or all(p.parent.name == "logs" for p in leftovers), leftovers


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_no_network_blames_the_mirror_not_deb_src(tmp_path):
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace: {probe.stderr.decode().strip()}")
    # a network namespace with no interface: name lookups fail at once; an empty cache must fetch
    result = hil("build", "mps2_an385", cache=tmp_path / "cache", prefix=("unshare", "-n"), timeout=150)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "cannot reach the Debian mirror" in line and "micropython=" in line
    assert "check the network" in line and "deb-src" not in line


# --- code on the board ------------------------------------------------------------------------------


def test_boot_c_board_exception_is_the_boards_traceback(tmp_path):
    result = hil("boot", "native", "-c", "print('before')\nraise ValueError('bad value')", timeout=60)
    assert result.returncode == 1
    assert result.stdout == "before\n"
    err = result.stderr
    assert "Traceback (most recent call last):" in err and 'File "<stdin>", line 2' in err
    assert err.rstrip().endswith("ValueError: bad value")
    assert "harness" not in err and ".py\"" not in err and "BoardValueError" not in err  # no host traceback
    assert len(err.splitlines()) <= 4  # the banner line, then the board's three-line traceback


def test_boot_c_runaway_code_is_one_line(tmp_path):
    result = hil("boot", "native", "--timeout", "1", "-c", "print('started')\nwhile True:\n    pass", timeout=60)
    assert result.returncode == 1
    assert result.stdout == "started\n"  # what it printed before it was stopped (ExecTimeout.output)
    line = one_error_line(result.stderr)
    assert line.startswith("hil: error: ExecTimeout: native: the code ran past 1 s and was interrupted")
    assert "its output so far is above" in line and "--timeout" in line


# --- Ctrl-C in the middle of a run -------------------------------------------------------------------

SLOW_SUITE = """
import os, time

def _mark(name):
    open(os.path.join(os.environ["HIL_TEST_MARKS"], name), "w").close()

""" + "".join(f"""
def test_{i:02d}(board):
    assert board.exec("print({i})") == "{i}\\n"
    _mark("{i:02d}")
    time.sleep(0.4)
""" for i in range(14))


def _interrupted_run(tmp_path: Path, signals: int) -> tuple[subprocess.CompletedProcess, Path]:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_slow.py").write_text(SLOW_SUITE)
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "COLUMNS": "200", "HIL_TEST_MARKS": str(marks)}
    proc = subprocess.Popen([*HIL, "run", "-b", "native", "-s", str(suite), "--out", str(out), "-p", "no:randomly"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(list(marks.iterdir())) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(signals):
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at a terminal: the whole foreground group
            time.sleep(0.3)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), out


@pytest.mark.parametrize("signals", [1, 2])
def test_ctrl_c_mid_run_says_interrupted_and_writes_html(tmp_path, signals):
    result, out = _interrupted_run(tmp_path, signals)
    assert result.returncode == 130, result.stdout + result.stderr
    rows = [ln for ln in result.stdout.splitlines() if ln.count("│") >= 8 and "native" in ln]
    assert rows, result.stdout
    cells = [c.strip() for c in rows[0].split("│")[1:-1]]
    assert cells[1] == "INTERRUPTED" and 3 <= int(cells[2]) < 14, cells  # passed: the ones that ended
    assert (out / "junit.xml").exists() and (out / "report.html").exists()
    assert "test_00[native]" in (out / "report.html").read_text()
