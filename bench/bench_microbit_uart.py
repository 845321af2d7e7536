"""Where the QEMU micro:bit's console starts dropping input: the same code sent through plain raw
REPL at several write chunk sizes and gaps, idle and with the machine loaded, each trial checked by
the board (length and a hash of the string it received, against the host's).

    python bench/bench_microbit_uart.py [--trials 20] [--size 900] [--busy 4] [--qemu-load 1]

The firmware (bbcmicrobit/micropython source/microbit/mphalport.cpp) moves each received byte from
the UART interrupt into a 64-slot ring (63 usable) and drops what does not fit; the raw REPL empties
it as it reads the code. QEMU's nRF51 UART takes bytes from the pty only while its 6-byte FIFO has
room, so nothing is lost in QEMU: a byte is lost when more than the ring's worth piles up in the pty
while the guest is not running, then arrives faster than the REPL takes it.

Load: --busy N host processes spinning (killed with their process group afterwards) and
--qemu-load K more micro:bit QEMUs each running a busy loop. The last row of each condition is the
harness's own exec path (targets/microbit.toml), for its time per trial next to the paced rows."""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import string
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.board import Board  # noqa: E402
from harness.config.boards import find_board  # noqa: E402
from harness.io.repl import BoardException  # noqa: E402

# (chunk bytes, gap ms); chunk 0 = the whole code in one write
GRID = [(0, 0), (256, 1), (64, 0), (63, 1), (32, 1), (32, 2), (16, 1), (16, 2), (16, 4)]
ALPHABET = (string.ascii_letters + string.digits + " .,:;+-*/=()[]{}<>").encode()


def board_hash(text: bytes) -> int:
    """The hash the board computes (below), on the host."""
    h = 0
    for c in text:
        h = (h * 31 + c) & 0xFFFFFF
    return h


def payload(size: int, rng: random.Random) -> tuple[bytes, tuple[int, int]]:
    body = bytes(rng.choice(ALPHABET) for _ in range(size))
    code = b"s='" + body + b"'\nh=0\nfor c in s:h=(h*31+ord(c))&0xffffff\nprint(len(s),h)\ndel s"
    return code, (len(body), board_hash(body))


FIRST_LOSS: dict[tuple[int, float], str] = {}  # (chunk, gap) -> what the first loss looked like


def verdict(out: bytes | str, err: bytes | str, want: tuple[int, int]) -> str:
    """ok | lost (a byte missing or changed: wrong figures, a syntax error, no answer) | mem."""
    err = err.decode() if isinstance(err, bytes) else err
    out = out.decode() if isinstance(out, bytes) else out
    if "MemoryError" in err:
        return "mem"  # the heap, not the line: counted apart
    return "ok" if not err and out.split() == [str(want[0]), str(want[1])] else "lost"


def raw_trial(board: Board, code: bytes, want: tuple[int, int], chunk: int, gap_ms: float) -> tuple[str, float]:
    """Plain raw REPL (no acknowledgement) at the given pacing; (verdict, seconds)."""
    repl, console = board.repl, board.console
    transport = console.transport
    while hasattr(transport, "inner"):  # a recording wrapper writes through the transport it wraps
        transport = transport.inner
    saved = transport.write_chunk, transport.write_gap
    transport.write_chunk, transport.write_gap = chunk, gap_ms / 1000
    started = time.monotonic()
    try:
        console.send(code + b"\x04")
        console.expect_bytes(b"OK", 5.0, "OK")
        out, err = repl.collect(timeout=10)
        result = verdict(out, err, want)
        if result != "ok":
            FIRST_LOSS.setdefault((chunk, gap_ms), f"{out[-60:]!r} {err[-80:]!r}")
    except Exception as exc:  # a lost byte shows as a timeout or a syntax error: both count
        result = "lost"
        FIRST_LOSS.setdefault((chunk, gap_ms), str(exc)[:140])
    finally:
        transport.write_chunk, transport.write_gap = saved
    seconds = time.monotonic() - started
    if result != "ok":
        repl.enter_raw()  # Ctrl-A drops whatever arrived of the code
    return result, seconds


def harness_trial(board: Board, code: bytes, want: tuple[int, int]) -> tuple[str, float]:
    started = time.monotonic()
    try:
        result = verdict(board.exec(code), "", want)
    except BoardException as exc:
        result = verdict("", exc.message, want)
    except Exception:  # no answer, a garbled one
        result = "lost"
    return result, time.monotonic() - started


@contextmanager
def busy_processes(n: int):
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)
    ]
    try:
        yield
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def run_condition(board: Board, label: str, trials: int, size: int, rng: random.Random) -> None:
    print(f"\n{label}: {trials} trials of {size} bytes of literal per row")
    print(f"{'chunk':>6} {'gap ms':>6} {'nominal B/s':>12} {'lost':>8} {'heap':>5} {'median ms':>10}")
    rows = [(f"{c or 'all':>6} {g:>6g} {(c * 1000 / g if g else float('inf')):>12.0f}", c, g) for c, g in GRID]
    rows.append((f"{'harness exec (target file)':>26}", None, None))
    for text, chunk, gap in rows:
        results, times = [], []
        for _ in range(trials):
            code, want = payload(size, rng)
            board.soft_reset()  # a clean heap for each trial, as each test gets
            if chunk is None:
                result, seconds = harness_trial(board, code, want)
            else:
                result, seconds = raw_trial(board, code, want, chunk, gap)
            results.append(result)
            times.append(seconds)
        lost, mem = results.count("lost"), results.count("mem")
        print(f"{text} {lost:>4}/{trials:<3} {mem:>5} {statistics.median(times) * 1000:>10.1f}", flush=True)
    for (chunk, gap), what in FIRST_LOSS.items():
        print(f"  first loss at chunk {chunk or 'all'}, gap {gap:g} ms: {what}")
    FIRST_LOSS.clear()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--size", type=int, default=900, help="bytes of string literal per trial (10 KB heap)")
    ap.add_argument("--busy", type=int, default=4, help="spinning host processes for the loaded run")
    ap.add_argument("--qemu-load", type=int, default=1, help="extra micro:bit QEMUs running a busy loop")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill unwinds: QEMUs and spinners stopped
    rng = random.Random(args.seed)
    targets = ROOT / "targets"
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with Board(find_board("microbit", targets), log=lambda m: None) as board:
        run_condition(board, "idle", args.trials, args.size, rng)
        with ExitStack() as stack:
            for _ in range(args.qemu_load):
                other = stack.enter_context(Board(find_board("microbit", targets), log=lambda m: None))
                other.repl.spawn("while True:\n    pass")
            stack.enter_context(busy_processes(args.busy))
            run_condition(board, f"loaded ({args.busy} spinning processes, {args.qemu_load} busy QEMU)",
                          args.trials, args.size, rng)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
