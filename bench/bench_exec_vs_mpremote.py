"""One exec round trip on a persistent connection: the harness's ``board.exec()`` against mpremote's
own ``SerialTransport.exec()`` on the same console (the board's pty, or its socket:// URL), and
against a whole ``mpremote exec`` process. Blocks alternate (hil, floor, mpremote, hil, ...) on one
booted board so load drifts hit all; prints medians per tool and the ratios (mpremote ÷ hil: above 1
means the harness is faster). The floor is the same round trip with bare syscalls on the same
console (write, select, read; no parsing, no log): what the emulated UART itself costs, which no
host tool can beat, so mpremote ÷ floor bounds what any ratio can reach. No thresholds: machines
differ.

    python bench/bench_exec_vs_mpremote.py [--board mps2_an385 ...] [--blocks 5] [--execs 100]"""

from __future__ import annotations

import argparse
import functools
import os
import select
import socket
import statistics
import subprocess
import sys
import time
import tty
from pathlib import Path

from harness.board import Board
from harness.config.boards import find_board
from harness.errors import ConsoleTimeout
from harness.io.transport import SerialTransport as HilSerial

DEFAULT_BOARDS = ["mps2_an385", "qemu_x86", "microbit"]
CODE = "x = 1"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _hil_block(board: Board, execs: int) -> list[float]:
    out = []
    for _ in range(execs):
        t = time.perf_counter()
        board.exec(CODE)
        out.append(time.perf_counter() - t)
    return out


def _mpremote_block(url: str, execs: int) -> list[float]:
    from mpremote.transport_serial import SerialTransport

    mp = SerialTransport(url, baudrate=115200)
    try:
        mp.enter_raw_repl(soft_reset=False)
        mp.exec(CODE)  # first call probes raw-paste support: not a round trip of its own
        out = []
        for _ in range(execs):
            t = time.perf_counter()
            mp.exec(CODE)
            out.append(time.perf_counter() - t)
        mp.exit_raw_repl()
    finally:
        mp.close()
    return out


def _floor_block(url: str, execs: int) -> list[float]:
    """The least any host tool can do on this console: write the code and Ctrl-D, read until the
    raw REPL's closing ``\x04>``, with bare syscalls (no parsing, no logging). The board is in raw
    mode (the harness left it there)."""
    if url.startswith("socket://"):
        host, port = url[len("socket://") :].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fd, close = sock.fileno(), sock.close
    else:
        fd = os.open(url, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        close = functools.partial(os.close, fd)
    request = CODE.encode() + b"\x04"
    out = []
    try:
        for _ in range(execs + 1):  # the first one also takes up what an earlier tool left unread
            t = time.perf_counter()
            os.write(fd, request)
            reply = b""
            while not reply.endswith(b"\x04>"):
                if not select.select([fd], [], [], 10)[0]:
                    raise SystemExit(f"bench: no raw-REPL reply on {url} within 10 s (got {reply[-80:]!r})")
                reply += os.read(fd, 4096)
            out.append(time.perf_counter() - t)
    finally:
        close()
    return out[1:]


def _mpremote_process(url: str) -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", url, "resume", "exec", CODE],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return time.perf_counter() - t


def _reattach(board: Board, url: str) -> None:
    """Give the board's console a fresh link on ``url`` (mpremote had it) and re-enter raw mode."""
    spec = board.spec.console
    pacing = {"write_chunk": spec.write_chunk, "write_gap_ms": spec.write_gap_ms}
    board.console.transport = HilSerial(url, spec.baudrate, **pacing)
    board.console.transport.on_event = board.console.note
    board.repl.in_raw = False
    deadline = time.monotonic() + 20
    while True:  # QEMU's pty chardev notices a new reader on a 1 s timer (seconds under load)
        try:
            board.repl.enter_raw(timeout=1.0)
            return
        except ConsoleTimeout:
            if time.monotonic() > deadline:
                raise


def bench_board(name: str, blocks: int, execs: int, processes: int) -> dict[str, float]:
    board = Board(find_board(name), log=lambda m: None)
    board.start()
    hil, floor, mp, proc = [], [], [], []
    try:
        board.exec(CODE)
        url = board.console.transport.name  # a pty path or socket://: what mpremote connects to
        for _ in range(blocks):
            hil += _hil_block(board, execs)
            board.console.transport.close()  # the port is opened exclusively
            floor += _floor_block(url, execs)
            mp += _mpremote_block(url, execs)
            _reattach(board, url)
        board.console.transport.close()
        for _ in range(processes):
            proc.append(_mpremote_process(url))
        _reattach(board, url)
        hil += _hil_block(board, execs)
    finally:
        board.stop()
    h = median_ms(hil)
    return {"hil": h, "mp": median_ms(mp), "proc": median_ms(proc) if proc else 0.0, "floor": median_ms(floor),
            "hil_p90": statistics.quantiles(hil, n=10)[-1] * 1000,
            "mp_p90": statistics.quantiles(mp, n=10)[-1] * 1000}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None)
    parser.add_argument("--blocks", type=int, default=5, help="alternating hil/mpremote blocks")
    parser.add_argument("--execs", type=int, default=100, help="round trips per block")
    parser.add_argument("--processes", type=int, default=5, help="`mpremote exec` processes")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores; code {CODE!r}")
    print(f"{'board':<12} {'hil ms':>8} {'(p90)':>7} {'mpremote':>9} {'(p90)':>7} {'mp/hil':>7} "
          f"{'floor':>7} {'hil/floor':>9} {'mp/floor':>8} {'mpremote exec':>14} {'proc/hil':>9}")  # fmt: skip
    for name in args.board or DEFAULT_BOARDS:
        r = bench_board(name, args.blocks, args.execs, args.processes)
        print(
            f"{name:<12} {r['hil']:8.3f} {r['hil_p90']:7.3f} {r['mp']:9.3f} {r['mp_p90']:7.3f} "
            f"{r['mp'] / r['hil']:6.2f}x {r['floor']:7.3f} {r['hil'] / r['floor']:8.2f}x {r['mp'] / r['floor']:7.2f}x"
            f" {r['proc']:12.1f}ms {r['proc'] / r['hil']:8.0f}x",
            flush=True,
        )


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as make runs them: the timed Python processes keep their bytecode
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
