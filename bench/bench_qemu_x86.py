"""qemu_x86 figures: cold boot vs snapshot restore to a ready REPL, REPL round trip, and TCP echo
latency / bulk throughput through the board in both network modes. Ratios are against figures
measured in the same run (restore vs cold; board echo vs a CPython echo on host loopback).

    python bench/bench_qemu_x86.py [--rounds N]"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.board import Board
from harness.config.boards import find_board

FIRMWARE = Path(tempfile.mkdtemp(prefix="hil-bench-fw-"))


def start(name: str) -> tuple[Board, float]:
    board = Board(find_board(name), log=lambda m: None, firmware_py=FIRMWARE)
    board.build()
    t = time.perf_counter()
    board.start()
    return board, time.perf_counter() - t


def echo_server_running(board: Board):
    port = board.net.tcp_port(0)
    running = board.spawn(f"import hil_echo\nhil_echo.tcp_server({port}, conns=2, bufsize=4096)")
    running.wait_for("READY", timeout=30)
    return running, port


def latency_and_throughput(connect, rounds: int = 200, bulk: int = 4 << 20) -> tuple[float, float]:
    conn = connect()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        conn.sendall(b"x" * 32)
        got = 0
        while got < 32:
            got += len(conn.recv(64))
        samples.append(time.perf_counter() - t)
    conn.close()
    conn = connect()
    data = os.urandom(bulk)
    received = 0

    def reader() -> None:
        nonlocal received
        while chunk := conn.recv(1 << 16):
            received += len(chunk)

    thread = threading.Thread(target=reader)
    t = time.perf_counter()
    thread.start()
    conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    thread.join(120)
    elapsed = time.perf_counter() - t
    conn.close()
    assert received == bulk, (received, bulk)
    return statistics.median(samples) * 1000, bulk / elapsed / 1e6


def host_baseline() -> tuple[float, float]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            c, _ = server.accept()
            while data := c.recv(4096):
                c.sendall(data)
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    result = latency_and_throughput(lambda: socket.create_connection(("127.0.0.1", port)))
    server.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # one copy of firmware_py for the whole run, so every boot uses the same image
    shutil.copytree(Path(__file__).resolve().parent.parent / "firmware_py", FIRMWARE, dirs_exist_ok=True)
    with tempfile.TemporaryDirectory() as snaps:
        os.environ["HIL_SNAPSHOTS"] = snaps  # a fresh snapshot dir: the first boot is really cold
        board, cold = start("qemu_x86")
        board.stop()
        restores = []
        for _ in range(args.rounds):
            board, t = start("qemu_x86")
            assert board.facts.extra["started_from"] == "snapshot"
            restores.append(t)
            board.stop()
    restored = statistics.median(restores)
    print(f"qemu_x86 cold boot to ready    {cold * 1000:8.0f} ms")
    print(f"qemu_x86 restore to ready      {restored * 1000:8.0f} ms   ({cold / restored:.1f}x faster than cold)")
    base_lat, base_tput = host_baseline()
    print(f"host loopback CPython echo     {base_lat:8.3f} ms   {base_tput:8.1f} MB/s   (baseline)")
    for name in ("qemu_x86", "qemu_x86_tap"):
        board, _ = start(name)
        try:
            trips = []
            for _ in range(100):
                t = time.perf_counter()
                board.exec("x = 1")
                trips.append(time.perf_counter() - t)
            running, port = echo_server_running(board)
            lat, tput = latency_and_throughput(lambda b=board, p=port: b.net.connect(p))
            running.finish(timeout=60)
        finally:
            board.stop()
        print(f"{name:<14} REPL exec       {statistics.median(trips) * 1000:8.2f} ms")
        print(f"{name:<14} TCP echo        {lat:8.3f} ms   {tput:8.1f} MB/s   "
              f"(latency {lat / base_lat:.0f}x, throughput 1/{base_tput / tput:.0f} of baseline)")


if __name__ == "__main__":
    main()
