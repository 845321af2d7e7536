"""CAN frames per second and round-trip latency through each CAN path, against python-can's
in-process virtual bus measured in the same run (ratios, no absolute thresholds: machines and
their load differ).

Paths: qemu_x86 (MicroPython on a Linux guest: SocketCAN raw socket on can0, slcan over the
guest's ttyS1 to QEMU's TCP serial, python-can slcan on the host) and mps2_an385 (MicroPython on a
Cortex-M3: an SLCAN speaker on UART1 driven with machine.mem32, QEMU's second serial, python-can
slcan), each with firmware_py/hil_can's canfdtest echo app on the board.

    python bench/bench_can.py [--board qemu_x86] [--board mps2_an385] [--frames N] [--rtt N]

No-loss soaks (issue 14's acceptance): --soak N runs N consecutive soaks per board, each 1,000
mixed frames with canfdtest's flow control (its rate is the measured maximum) then 10,000 random
mixed frames (standard/extended ids, RTR, DLC 0-8, FD where the link has it) through the echo
app, paced at that measured rate and/or unpaced (--pace). Each soak prints its seed (replay with
--seed), its rates, and either "lost nothing" or what was lost, duplicated, reordered or altered
and which of the board's loss counters counted it:

    python bench/bench_can.py --soak 10 --board qemu_x86 --pace measured --pace unpaced"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import can

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "suites" / "can"))
sys.path.insert(0, str(REPO))

from hilcan_host import SOAK_FRAMES, WINDOW, canfdtest_host, echo_phases, mixed_frames  # noqa: E402

from harness.board import Board  # noqa: E402
from harness.config.boards import find_board  # noqa: E402

DEFAULT_BOARDS = ["qemu_x86", "mps2_an385"]


def frame(n: int) -> can.Message:
    return can.Message(arbitration_id=0x100 + n % 0x100, is_extended_id=False, data=n.to_bytes(8, "big"))


def rtt_samples(bus: can.BusABC, count: int) -> list[float]:
    """One frame in flight at a time: send, wait for the echo (id + 1)."""
    samples = []
    for n in range(count):
        t = time.perf_counter()
        bus.send(can.Message(arbitration_id=0x77, is_extended_id=False, data=bytes([n & 0xFF] * 8)), timeout=5)
        reply = bus.recv(10)
        samples.append(time.perf_counter() - t)
        if reply is None or reply.arbitration_id != 0x78:
            raise RuntimeError(f"no echo for frame {n}: {reply}")
    return samples


def summary(echo_s: float, frames: int, h2b_s: float, b2h_s: float, rtts: list[float]) -> dict[str, float]:
    rtts = sorted(rtts)
    return {
        "echo_fps": frames / echo_s,
        "h2b_fps": frames / h2b_s,
        "b2h_fps": frames / b2h_s,
        "rtt_ms": statistics.median(rtts) * 1000,
        "rtt_p90_ms": rtts[int(len(rtts) * 0.9)] * 1000,
    }


# --- baseline: python-can's virtual bus, an echo thread on the other end ---------------------------
def bench_virtual(frames: int, rtt: int) -> dict[str, float]:
    channel = f"hil-bench-{time.monotonic_ns()}"
    host = can.Bus(interface="virtual", channel=channel)
    board = can.Bus(interface="virtual", channel=channel)
    stop = threading.Event()
    mode = {"echo": True}

    def echo() -> None:
        while not stop.is_set():
            msg = board.recv(0.05)
            if msg is not None and mode["echo"]:
                data = bytes((b + 1) & 0xFF for b in msg.data)
                board.send(can.Message(arbitration_id=msg.arbitration_id + 1, is_extended_id=False, data=data))

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        t = time.perf_counter()
        problem = canfdtest_host(host, frames)
        echo_s = time.perf_counter() - t
        assert problem is None, problem
        rtts = rtt_samples(host, rtt)
        mode["echo"] = False
        stop.set()
        thread.join()
        t = time.perf_counter()
        for n in range(frames):
            host.send(frame(n))
        got = sum(1 for _ in range(frames) if board.recv(5) is not None)
        h2b_s = time.perf_counter() - t
        t = time.perf_counter()
        for n in range(frames):
            board.send(frame(n))
        got += sum(1 for _ in range(frames) if host.recv(5) is not None)
        b2h_s = time.perf_counter() - t
        assert got == 2 * frames
    finally:
        stop.set()
        host.shutdown()
        board.shutdown()
    return summary(echo_s, frames, h2b_s, b2h_s, rtts)


# --- a board's CAN path ----------------------------------------------------------------------------
def board_spec(name: str, workdir: Path):
    return find_board(name)


def timed(action: Callable[[], object]) -> float:
    t = time.perf_counter()
    action()
    return time.perf_counter() - t


def bench_board(name: str, frames: int, rtt: int, workdir: Path) -> dict[str, float]:
    board = Board(board_spec(name, workdir), log=lambda m: None)
    board.start()
    try:
        bus = board.can_link.bus(sleep_after_open=0)
        try:
            return _bench_link(board, bus, frames, rtt)
        finally:
            bus.shutdown()
    finally:
        board.stop()


def _bench_link(board: Board, bus: can.BusABC, frames: int, rtt: int) -> dict[str, float]:
    # echo: canfdtest, 50 frames in flight; each frame crosses the link twice
    running = board.spawn(f"import hil_can\nbus = hil_can.open(rx_queue=128)\nhil_can.echo(bus, count={frames})")
    running.wait_for("READY", 30)
    echo_s = timed(lambda: canfdtest_host(bus, frames))
    assert f"ECHOED {frames} {frames}" in running.finish(60)
    # round trip, one frame at a time
    running = board.spawn(f"import hil_can\nbus = hil_can.open()\nhil_can.echo(bus, count={rtt})")
    running.wait_for("READY", 30)
    rtts = rtt_samples(bus, rtt)
    running.finish(60)
    # host -> board: until the board has counted them all
    running = board.spawn(
        f"import hil_can\nbus = hil_can.open(rx_queue=256)\nprint('READY')\n"
        f"print('GOT', hil_can.collect(bus, {frames}, 120000, 10000, sink=lambda f: None))"
    )
    running.wait_for("READY", 30)

    def host_to_board() -> None:
        for n in range(frames):
            bus.send(frame(n), timeout=5)
        assert f"GOT {frames}" in running.finish(180)

    h2b_s = timed(host_to_board)

    # board -> host: from starting the board's loop until the host has them all
    def board_to_host() -> None:
        running = board.spawn(
            f"import hil_can\nbus = hil_can.open()\nfor n in range({frames}):\n"
            "    bus.send(0x100 + n % 0x100, n.to_bytes(8, 'big'))\n"
        )
        got = sum(1 for _ in range(frames) if bus.recv(10) is not None)
        running.finish(60)
        assert got == frames, f"{frames - got} frames lost"

    b2h_s = timed(board_to_host)
    return summary(echo_s, frames, h2b_s, b2h_s, rtts)


# --- no-loss soaks -------------------------------------------------------------------------------
CALIBRATE = 1000


def soak_board(name: str, repeat: int, paces: list[str], seed: int | None, frames: int) -> int:
    """``repeat`` soaks per pace on one board (booted once); the number that were not clean."""
    board = Board(find_board(name), log=lambda m: None)
    board.start()
    bad = 0
    try:
        bus = board.can_link.bus(sleep_after_open=0)
        try:
            fd = board.exec("import hil_can\nb = hil_can.open()\nprint(b.fd)\nb.close()\n").strip() == "True"
            for pace in paces:
                for n in range(repeat):
                    run_seed = random.SystemRandom().getrandbits(32) if seed is None else seed + n
                    rng = random.Random(run_seed)
                    calibrate, soak = mixed_frames(rng, CALIBRATE, fd), mixed_frames(rng, frames, fd)
                    how = (lambda runs: {"rate": runs[0].rate()}) if pace == "measured" else {}
                    t = time.perf_counter()
                    done = echo_phases(
                        board, bus, f"hil_can.open(rx_queue=256, fd={fd})", "hil_can",
                        [(calibrate, {"window": WINDOW}), (soak, how)],
                    )  # fmt: skip
                    first, last = done.runs[0], done.runs[-1]
                    verdict = "; ".join(done.problems) or f"lost nothing (board counters {done.stats.get('counters')})"
                    bad += bool(done.problems)
                    print(f"{name} soak {n + 1}/{repeat} {pace} seed={run_seed}: {frames} mixed frames (fd={fd}), "
                          f"flow-controlled echo {first.rate():.0f} f/s, soak sent in {last.send_s:.1f} s, echoed "
                          f"at {last.rate():.0f} f/s, {time.perf_counter() - t:.0f} s, {done.echoed}: {verdict}",
                          flush=True)  # fmt: skip
        finally:
            bus.shutdown()
    finally:
        board.stop()
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--rtt", type=int, default=200)
    parser.add_argument("--soak", type=int, default=0, help="no-loss soaks per board and pace (instead of rates)")
    parser.add_argument("--soak-frames", type=int, default=SOAK_FRAMES)
    parser.add_argument("--pace", action="append", choices=["measured", "unpaced"], default=None)
    parser.add_argument("--seed", type=int, default=None, help="seed of the first soak (the next get +1, ...)")
    args = parser.parse_args()
    if args.soak:
        bad = sum(
            soak_board(name, args.soak, args.pace or ["measured", "unpaced"], args.seed, args.soak_frames)
            for name in args.board or DEFAULT_BOARDS
        )
        print(f"{bad} soak(s) not clean")
        sys.exit(1 if bad else 0)
    results = {"virtual (baseline)": bench_virtual(args.frames, args.rtt)}
    with tempfile.TemporaryDirectory(prefix="hil-bench-can-") as tmp:
        for name in args.board or DEFAULT_BOARDS:
            results[name] = bench_board(name, args.frames, args.rtt, Path(tmp))
    base = results["virtual (baseline)"]
    print(f"\nCAN paths, {args.frames} frames per throughput run, {args.rtt} round trips")
    header = f"{'path':<20} {'echo f/s':>9} {'h->b f/s':>9} {'b->h f/s':>9} {'rtt ms':>8} {'p90 ms':>8}"
    print(header + f" {'echo x':>9} {'rtt x':>8}")
    for name, r in results.items():
        print(
            f"{name:<20} {r['echo_fps']:>9.0f} {r['h2b_fps']:>9.0f} {r['b2h_fps']:>9.0f} {r['rtt_ms']:>8.2f}"
            f" {r['rtt_p90_ms']:>8.2f} {r['echo_fps'] / base['echo_fps']:>9.4f} {r['rtt_ms'] / base['rtt_ms']:>8.1f}"
        )
    print("echo x: echo frames/s as a fraction of the virtual bus's; rtt x: round trip as a multiple of its")


if __name__ == "__main__":
    main()
