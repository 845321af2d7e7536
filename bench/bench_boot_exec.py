"""Boot-to-ready and REPL exec round trip per board, with `mpremote exec` on the same board in
the same run as the reference. Prints medians and ratios (no absolute thresholds: machines differ).

    python bench/bench_boot_exec.py [--board mps2_an385 ...] [--rounds N]"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness.board import Board
from harness.config.boards import find_board

DEFAULT_BOARDS = ["mps2_an385", "microbit", "native"]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_board(name: str, rounds: int, execs: int) -> dict[str, float]:
    spec = find_board(name)
    boots, trips = [], []
    mpremote = []
    for _ in range(rounds):
        board = Board(spec, log=lambda m: None)
        board.build()
        t = time.perf_counter()
        board.start()
        boots.append(time.perf_counter() - t)
        for _ in range(execs):
            t = time.perf_counter()
            board.exec("x = 1")
            trips.append(time.perf_counter() - t)
        port = getattr(board.launcher, "ptys", {}).get("serial0")
        if port:  # mpremote needs a device path: QEMU boards' pty
            board.console.transport.close()  # free the port (opened exclusively) for mpremote
            for _ in range(3):
                t = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "mpremote", "connect", port, "resume", "exec", "x = 1"],
                    check=True, capture_output=True, timeout=30,
                )  # fmt: skip
                mpremote.append(time.perf_counter() - t)
        board.stop()
    result = {"boot_ms": median_ms(boots), "exec_ms": median_ms(trips)}
    if mpremote:
        result["mpremote_exec_ms"] = median_ms(mpremote)
        result["ratio"] = result["mpremote_exec_ms"] / result["exec_ms"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--execs", type=int, default=50)
    args = parser.parse_args()
    print(f"{'board':<12} {'boot ms':>9} {'exec ms':>9} {'mpremote ms':>12} {'mpremote/hil':>13}")
    for name in args.board or DEFAULT_BOARDS:
        r = bench_board(name, args.rounds, args.execs)
        mp = f"{r['mpremote_exec_ms']:12.1f} {r['ratio']:12.0f}x" if "ratio" in r else f"{'-':>12} {'-':>13}"
        print(f"{name:<12} {r['boot_ms']:9.1f} {r['exec_ms']:9.2f} {mp}", flush=True)


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as make runs them: the timed Python processes keep their bytecode
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
