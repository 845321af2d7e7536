"""Wall time of the smoke suite on mps2_an385, microbit and native: one pytest process vs two
pytest-xdist workers (`-n 2`, scheduled by board), back to back. Images are built first (not timed).

    .venv/bin/python bench/bench_parallel.py [--rounds N] [--board B ...] [--suite suites/X ...]

Each run is `hil run` in its own process group with a timeout; the figures are wall times
(median of N rounds), then 2 workers' time as a share of 1 worker's (the acceptance figure: <= 0.6
on a quiet 2-core machine), for the default scheduling (emulated boards' tests split between the
workers by their last durations) and for ``--hil-whole-boards`` (each board on one worker, as
before), and the load average before and after (other jobs on the machine slow every variant and
shrink what a second worker can win). Runs with no test selected measure start-up and wrap-up,
which give the best share two workers could reach: 1 worker's test time halved exactly, plus what
two workers' start-up and wrap-up cost."""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HIL = str(Path(sys.executable).parent / "hil")
BOARDS = ["mps2_an385", "microbit", "native"]
TIMEOUT = 900
NO_TEST = ("-k", "hil_bench_selects_no_test")  # start-up and wrap-up alone
NO_TESTS = 5  # pytest's exit status when nothing was selected


def run(boards: list[str], workers: int | None, out: Path, extra: tuple[str, ...] = (),
        suites: tuple[str, ...] = ("suites/smoke",)) -> tuple[float, int, str]:  # fmt: skip
    argv = [HIL, "run", *(a for b in boards for a in ("-b", b)), *(a for s in suites for a in ("-s", str(REPO / s))),
            "--out", str(out), "-q"]  # fmt: skip
    if workers:
        argv += ["-n", str(workers)]
    argv += extra
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SystemExit(f"bench: `{' '.join(argv)}` did not finish within {TIMEOUT} s") from None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything the run left behind in its group
        except ProcessLookupError:
            pass
    elapsed = time.monotonic() - started
    summary = next((line for line in reversed(output.splitlines()) if " in " in line and "passed" in line), "")
    if proc.returncode:  # which tests, before the temporary output folder goes
        summary += "".join(f"\n      {line}" for line in _problems(out / "junit.xml"))
    return elapsed, proc.returncode, summary.strip("= ")


def _problems(junit: Path) -> list[str]:
    """Each failed or erroring case of a run: its name and the first line of its message."""
    import xml.etree.ElementTree as ET

    try:
        cases = ET.parse(junit).iter("testcase")
    except (OSError, ET.ParseError) as exc:
        return [f"(no JUnit: {exc})"]
    return [f"{c.get('name')}: {r.tag}: {(r.get('message') or '').splitlines()[0][:160] if r.get('message') else ''}"
            for c in cases for r in c if r.tag in ("failure", "error")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--board", action="append", default=None, help=f"default: {' '.join(BOARDS)}")
    parser.add_argument("--suite", action="append", default=None, help="default: suites/smoke (the acceptance figure)")
    args = parser.parse_args()
    boards = args.board or BOARDS
    suites = tuple(args.suite or ("suites/smoke",))
    for board in boards:  # build or fetch the images outside the timed runs
        subprocess.run([HIL, "build", board], cwd=REPO, check=True, stdout=subprocess.DEVNULL, timeout=TIMEOUT)
    print(f"{' + '.join(suites)} on {', '.join(boards)} ({os.cpu_count()} CPUs), {args.rounds} rounds, "
          f"median wall time; load average {_load()}")
    # 2 workers as scheduled by default (an emulated board's tests split, one instance per worker),
    # and with --hil-whole-boards (each board's tests on one worker, as before the split)
    # and the same runs with no test selected: what start-up and wrap-up cost (xdist's workers too)
    variants = {"1 worker": (None, ()), "2 workers": (2, ()), "2 workers, whole boards": (2, ("--hil-whole-boards",)),
                "1 worker, no test": (None, NO_TEST), "2 workers, no test": (2, NO_TEST)}  # fmt: skip
    results: dict[str, list[float]] = {label: [] for label in variants}
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        for i in range(args.rounds):
            for j, (label, (workers, extra)) in enumerate(variants.items()):
                elapsed, code, summary = run(boards, workers, Path(tmp) / f"{j}-{i}", extra, suites)
                results[label].append(elapsed)
                flag = "" if code == (NO_TESTS if extra == NO_TEST else 0) else f"  (exit {code})"
                print(f"  round {i + 1}, {label}: {elapsed:6.2f} s  {summary}{flag}", flush=True)
    medians = {label: statistics.median(times) for label, times in results.items()}
    one = medians["1 worker"]
    for label, median in medians.items():
        timed = label == "1 worker" or label.endswith("no test")
        share = "" if timed else f"  {median / one:.2f} of 1 worker's (speed-up {one / median:.2f}x)"
        print(f"{label:<24}: {median:6.2f} s{share}")
    # Amdahl: if the tests' own time halved exactly on two workers, start-up and wrap-up as measured
    tests_alone = one - medians["1 worker, no test"]
    best = medians["2 workers, no test"] + tests_alone / 2
    print(f"best 2 workers could do   : {best:6.2f} s  {best / one:.2f} of 1 worker's (1 worker's tests "
          f"{tests_alone:.2f} s halved, plus 2 workers' start-up and wrap-up {medians['2 workers, no test']:.2f} s)")
    print(f"load average after: {_load()}")


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as make runs them: the timed Python processes keep their bytecode
    main()
