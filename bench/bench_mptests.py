"""MicroPython's own test files through MicroPython's run-tests.py and through the harness
(suites/micropython), back to back on the same boards, files and machine: verdicts compared file by
file, per-test times printed as ratios (harness / run-tests.py).

    python bench/bench_mptests.py [--board native --board mps2_an385] [--mp-tests basics]

run-tests.py drives native as its unix target (MICROPY_MICROPYTHON = the venv's micropython) and a
QEMU board over the board's pty (-t port:PTY): the harness boots the board and hands over its pty.
run-tests.py hangs on a board that crashed (a HardFault never answers): past --hang seconds
without a verdict line the bench kills it, counts the file as a hang, boots the board afresh and
runs the remaining files; the same when it stops its whole run on a test that needs unittest
(which Debian's source tree lacks). Both tools run on a private copy of tests/ (run-tests.py writes there).

Per-test time: run-tests.py prints a line as each test ends (run sequentially, -j 1), so a test's
time is the gap since the previous line; the first file's gap also holds the feature checks, so it
is left out of the ratios. The harness's is its JUnit time (soft reset + exec + judging)."""

from __future__ import annotations

import argparse
import os
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "suites" / "micropython"
VERDICT_LINE = re.compile(r"^(pass|FAIL|skip) +(\S+)")
HARNESS_VERDICT = {"passed": "pass", "failed": "FAIL", "xfailed": "FAIL", "skipped": "skip", "error": "error"}


@dataclass
class Run:
    verdicts: dict[str, str] = field(default_factory=dict)  # test -> pass | FAIL | skip | hang | error
    seconds: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    wall: float = 0.0


def private_tree(tests: Path, into: Path) -> Path:
    """tests/, tools/pyboard.py and unittest, where run-tests.py may write (it keeps results in tests/)."""
    src = tests.parent
    shutil.copytree(tests, into / "tests", symlinks=True)
    (into / "tools").mkdir()
    shutil.copy2(src / "tools" / "pyboard.py", into / "tools" / "pyboard.py")
    unittest = src / "lib" / "micropython-lib" / "python-stdlib" / "unittest"
    if unittest.is_dir():
        shutil.copytree(unittest, into / "lib" / "micropython-lib" / "python-stdlib" / "unittest")
    return into / "tests"


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_tests_py(tests: Path, files: list[str], target: str | None, hang: float, result_dir: Path) -> tuple[Run, bool]:
    """One run-tests.py process over files; (verdicts and times, whether it hung)."""
    env = {**os.environ, "MICROPY_CPYTHON3": sys.executable, "PYTHONUNBUFFERED": "1"}
    env["MICROPY_MICROPYTHON"] = shutil.which("micropython", path=str(Path(sys.executable).parent)) or "micropython"
    cmd = [sys.executable, "-u", "run-tests.py", "-j", "1", "-r", str(result_dir)]
    if target:
        cmd += ["-t", target]
    proc = subprocess.Popen(
        cmd + files, cwd=tests, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    run = Run()
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None
    sel.register(proc.stdout, selectors.EVENT_READ)
    last = start = time.perf_counter()
    buf = b""
    hung = False
    try:
        while True:
            if not sel.select(timeout=hang):
                hung = True
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                m = VERDICT_LINE.match(raw.decode("utf-8", "replace"))
                if m and m.group(2) in files:
                    now = time.perf_counter()
                    run.verdicts[m.group(2)] = m.group(1)
                    run.seconds[m.group(2)] = now - last
                    last = now
    finally:
        _kill(proc)
        sel.close()
    run.wall = time.perf_counter() - start
    return run, hung


@contextmanager
def native_target():
    yield None  # run-tests.py's default target: the unix port (MICROPY_MICROPYTHON)


@contextmanager
def board_target(name: str):
    """A freshly booted QEMU board whose pty run-tests.py may open (-t port:PTY)."""
    from harness.board import Board
    from harness.config.boards import find_board

    board = Board(find_board(name), log=lambda m: None)
    board.start()
    try:
        port = board.launcher.ptys["serial0"]
        board.console.transport.close()  # run-tests.py opens the pty itself
        yield f"port:{port}"
    finally:
        board.stop()


def run_tests_on(name: str, tests: Path, files: list[str], hang: float, tmp: Path) -> Run:
    """run-tests.py over files on one target. When it stops short (hung on a crashed board, or
    "requires unittest", which ends its whole run) the file it stopped at is recorded as such and
    a fresh run (on a freshly booted board) takes the files left."""
    total = Run()
    left = list(files)
    while left:
        with native_target() if name == "native" else board_target(name) as target:
            part, hung = run_tests_py(tests, left, target, hang, tmp / f"results-{name}")
        total.verdicts |= part.verdicts
        total.seconds |= part.seconds
        total.wall += part.wall
        rest = [f for f in left if f not in part.verdicts]
        if not rest:
            break
        total.verdicts[rest[0]] = "hang" if hung else "stopped"
        total.seconds[rest[0]] = hang if hung else 0.0
        left = rest[1:]
    return total


def harness_run(board: str, tests: Path, dirs: str, timeout: float, tmp: Path) -> Run:
    junit = tmp / f"harness-{board}.xml"
    env = {**os.environ, "HIL_MP_SRC": str(tests.parent), "MICROPY_CPYTHON3": sys.executable}
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "--board", board, f"--mp-tests={dirs}",
           f"--mp-timeout={timeout}", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
           f"--hil-logs={tmp / 'logs'}"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
    run = Run(wall=time.perf_counter() - start)
    if not junit.exists():
        raise SystemExit(f"the harness run wrote no JUnit: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    for case in ET.parse(junit).iter("testcase"):
        m = re.match(r"test_micropython\[(.+)-" + re.escape(board) + r"\]$", case.get("name", ""))
        if not m:
            continue
        kinds = {child.tag: child for child in case if child.tag in ("failure", "error", "skipped")}
        outcome = "passed"
        if "skipped" in kinds:
            outcome = "xfailed" if kinds["skipped"].get("type") == "pytest.xfail" else "skipped"
        for tag, name in (("failure", "failed"), ("error", "error")):
            if tag in kinds:
                outcome = name
        run.verdicts[m.group(1)] = HARNESS_VERDICT[outcome]
        run.seconds[m.group(1)] = float(case.get("time", 0))
        first = next(iter(kinds.values()), None)
        message = (first.get("message") or "") if first is not None else ""
        run.messages[m.group(1)] = next(iter(message.splitlines()), "")
    return run


def report(board: str, files: list[str], ref: Run, hil: Run) -> None:
    finished = [f for f in files if ref.verdicts.get(f) in ("pass", "FAIL", "skip")
                and hil.verdicts.get(f) in ("pass", "FAIL", "skip")]  # fmt: skip
    agree = [f for f in finished if ref.verdicts[f] == hil.verdicts[f]]
    kinds = ("pass", "FAIL", "skip", "hang", "stopped", "error")
    counts = {k: sum(1 for f in files if hil.verdicts.get(f) == k) for k in kinds}
    ref_counts = {k: sum(1 for f in files if ref.verdicts.get(f) == k) for k in kinds}
    print(f"\n== {board}: {len(files)} files")
    print(f"run-tests.py verdicts: {ref_counts}")
    print(f"harness verdicts:      {counts}  (FAIL includes expected failures)")
    print(f"both finished: {len(finished)}   agree: {len(agree)}   disagree: {len(finished) - len(agree)}")
    for f in files:
        if f in finished and f not in agree:
            msg = hil.messages.get(f, "")[:100]
            print(f"  DISAGREE {f}: run-tests.py {ref.verdicts[f]}, harness {hil.verdicts[f]}  {msg}")
        elif f not in finished:
            ref_v, hil_v = ref.verdicts.get(f, "-"), hil.verdicts.get(f, "-")
            print(f"  not finished by both: {f}: run-tests.py {ref_v}, harness {hil_v}")
    ran = [f for f in finished[1:] if ref.verdicts[f] != "skip" and hil.verdicts[f] != "skip"]
    ran = [f for f in ran if ref.seconds.get(f, 0) > 0]
    if ran:
        ratios = [hil.seconds[f] / ref.seconds[f] for f in ran]
        ref_sum, hil_sum = sum(ref.seconds[f] for f in ran), sum(hil.seconds[f] for f in ran)
        q = statistics.quantiles(ratios, n=10) if len(ratios) > 1 else ratios * 9
        print(f"per-test time over {len(ran)} files run by both: run-tests.py median "
              f"{statistics.median(ref.seconds[f] for f in ran) * 1000:.1f} ms, harness median "
              f"{statistics.median(hil.seconds[f] for f in ran) * 1000:.1f} ms")  # fmt: skip
        print(f"ratio harness/run-tests.py: median {statistics.median(ratios):.2f}, p10 {q[0]:.2f}, p90 {q[-1]:.2f}, "
              f"sum of times {hil_sum / ref_sum:.2f}")  # fmt: skip
    print(f"wall: run-tests.py {ref.wall:.1f} s, harness (pytest process incl. boot) {hil.wall:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None, help="native and/or a QEMU board (default both)")
    parser.add_argument("--mp-tests", default="basics", help="tests/ directories, comma-separated (default basics)")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds without a verdict = run-tests.py hung")
    parser.add_argument("--timeout", type=float, default=30.0, help="the harness's per-test timeout")
    parser.add_argument("--per-test", action="store_true", help="print every file's times and ratio")
    parser.add_argument("--max-files", type=int, default=0, help="N files spread evenly over the sorted list (0: all)")
    args = parser.parse_args()
    # a kill (timeout, CI) unwinds like Ctrl-C: boards stopped, the private tree removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.path.insert(0, str(SUITE))
    from mp_tree import check_dirs, parse_selection, test_files, tests_dir

    dirs = parse_selection(args.mp_tests)
    with tempfile.TemporaryDirectory(prefix="hil-mpbench-") as tmp_name:
        tmp = Path(tmp_name)
        tests = private_tree(tests_dir(), tmp / "src")
        check_dirs(tests, dirs)
        files = test_files(tests, dirs)
        if args.max_files:  # an even spread over the sorted files; both tools see the same subset
            keep = files[:: max(1, len(files) // args.max_files)][: args.max_files]
            for f in set(files) - set(keep):
                (tests / f).unlink()
            files = keep
        for board in args.board or ["native", "mps2_an385"]:
            ref = run_tests_on(board, tests, files, args.hang, tmp)
            hil = harness_run(board, tests, ",".join(dirs), args.timeout, tmp)
            if args.per_test:
                for f in files:
                    r, h = ref.seconds.get(f), hil.seconds.get(f)
                    ratio = f"{h / r:6.2f}" if r and h else "     -"
                    print(f"{board:<11} {f:<45} {ref.verdicts.get(f, '-'):>5} {hil.verdicts.get(f, '-'):>5} "
                          f"{(r or 0) * 1000:8.1f} {(h or 0) * 1000:8.1f} {ratio}")  # fmt: skip
            report(board, files, ref, hil)


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as make runs them: the timed Python processes keep their bytecode
    sys.path.insert(0, str(ROOT))
    main()
