"""Wall time of the smoke suite on mps2_an385, microbit and native: one pytest process vs two
pytest-xdist workers (`-n 2`, scheduled by board). Images are built first (not timed).

    .venv/bin/python bench/bench_parallel.py [--rounds N] [--board B ...]

Each run is `hil run` in its own process group with a timeout; the figures are wall times
(median of N rounds), followed by the 1-worker / 2-worker ratio."""

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


def run(boards: list[str], workers: int | None, out: Path) -> tuple[float, int, str]:
    argv = [HIL, "run", *(a for b in boards for a in ("-b", b)), "-s", str(REPO / "suites" / "smoke"),
            "--out", str(out), "-q"]  # fmt: skip
    if workers:
        argv += ["-n", str(workers)]
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
    return elapsed, proc.returncode, summary.strip("= ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--board", action="append", default=None, help=f"default: {' '.join(BOARDS)}")
    args = parser.parse_args()
    boards = args.board or BOARDS
    for board in boards:  # build or fetch the images outside the timed runs
        subprocess.run([HIL, "build", board], cwd=REPO, check=True, stdout=subprocess.DEVNULL, timeout=TIMEOUT)
    print(f"smoke suite on {', '.join(boards)} ({os.cpu_count()} CPUs), {args.rounds} rounds, median wall time")
    results: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        for i in range(args.rounds):
            for workers in (1, 2):
                elapsed, code, summary = run(boards, workers if workers > 1 else None, Path(tmp) / f"{workers}-{i}")
                results[workers].append(elapsed)
                flag = "" if code == 0 else f"  (exit {code})"
                label = f"{workers} worker{'s' if workers > 1 else ''}"
                print(f"  round {i + 1}, {label}: {elapsed:6.2f} s  {summary}{flag}")
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(f"1 worker : {one:6.2f} s")
    print(f"2 workers: {two:6.2f} s  (-n 2)")
    print(f"ratio    : {one / two:.2f}x")


if __name__ == "__main__":
    main()
