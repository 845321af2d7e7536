"""What the evidence journal costs on the exec hot path: every board's console goes through a
RecordingTransport that appends each chunk both ways to the board's journal (harness/report/
journal.py). On one booted board, blocks of exec round trips alternate between the journaled
transport and the bare one beneath it (as `hil record` swaps transports), so load drifts hit both;
prints the medians and the ratio (journaled ÷ bare: 1.00 means free). No thresholds.

    python bench/bench_journal.py [--board native ...] [--blocks 6] [--execs 200]"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.board import Board
from harness.config.boards import find_board


def block(board: Board, execs: int) -> list[float]:
    samples = []
    for _ in range(execs):
        started = time.perf_counter()
        board.exec("x = 1")
        samples.append(time.perf_counter() - started)
    return samples


def bench_board(name: str, blocks: int, execs: int) -> dict[str, float]:
    with Board(find_board(name), log=lambda m: None).start() as board:
        assert board.console is not None
        journaled = board.console.transport
        bare = journaled.inner
        times: dict[str, list[float]] = {"journaled": [], "bare": []}
        for i in range(blocks):
            kind = "journaled" if i % 2 == 0 else "bare"
            board.console.transport = journaled if kind == "journaled" else bare
            times[kind] += block(board, execs)
        board.console.transport = journaled
        entries = len(board.journal)
    medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {**medians, "ratio": medians["journaled"] / medians["bare"], "entries": entries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--execs", type=int, default=200)
    args = parser.parse_args()
    for name in args.board or ["native", "mps2_an385"]:
        r = bench_board(name, args.blocks, args.execs)
        print(f"{name:12} exec median: journaled {r['journaled']:.3f} ms, bare {r['bare']:.3f} ms, "
              f"ratio {r['ratio']:.3f} ({r['entries']} journal entries)")


if __name__ == "__main__":
    main()
