"""Socket performance per board: TCP echo latency, bulk throughput both ways, UDP round trip,
connection setup rate, and the idle CPU of the board's emulator at the REPL prompt. The baseline is
the same host client against a CPython peer on the host's loopback, measured in the same run;
ratios are board / baseline (no absolute thresholds: machines differ).

    python bench/bench_sockets.py [--board mps2_an385 --board qemu_x86 ...] [--echoes N] [--mbytes M]"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "suites" / "sockets"))

from peerlib import Peer, pattern, recv_all, recv_exact  # noqa: E402

from harness.board import Board  # noqa: E402
from harness.config.boards import find_board  # noqa: E402

DEFAULT_BOARDS = ["mps2_an385", "qemu_x86", "native"]
IDLE_SECONDS = 10.0
MSG = b"0123456789abcdef" * 2  # 32-byte echo message


# --- the host client: the same code against the board and against the baseline --------------------
def echo_latency(conn: socket.socket, count: int) -> list[float]:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    for _ in range(count):
        t = time.perf_counter()
        conn.sendall(MSG)
        assert recv_exact(conn, len(MSG)) == MSG
        samples.append(time.perf_counter() - t)
    return samples


def push(conn: socket.socket, data: bytes, done) -> float:
    """Seconds to send data and see the far end confirm it has all of it."""
    t = time.perf_counter()
    conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    done()
    return time.perf_counter() - t


def pull(conn: socket.socket, size: int) -> float:
    t = time.perf_counter()
    got = recv_all(conn)
    elapsed = time.perf_counter() - t
    assert len(got) == size, (len(got), size)
    return elapsed


def udp_latency(sock: socket.socket, dest: tuple[str, int], count: int) -> list[float]:
    sock.settimeout(5)
    samples = []
    for _ in range(count):
        t = time.perf_counter()
        sock.sendto(MSG, dest)
        assert sock.recvfrom(2048)[0] == MSG
        samples.append(time.perf_counter() - t)
    return samples


def idle_cpu_percent(pid: int, seconds: float = IDLE_SECONDS) -> float:
    """CPU used by process pid over `seconds` of wall time, in % of one core (from /proc)."""

    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    t0, c0 = time.monotonic(), ticks()
    time.sleep(seconds)
    return (ticks() - c0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0) * 100


def setup_rate(connect, count: int) -> float:
    """Connections per second: connect, wait for the server's close, close."""
    t = time.perf_counter()
    for _ in range(count):
        conn = connect()
        assert conn.recv(1) == b""
        conn.close()
    return count / (time.perf_counter() - t)


# --- the baseline: CPython peers on the host's loopback ----------------------------------------
def serve_in_thread(handler) -> tuple[int, threading.Thread]:
    srv = socket.create_server(("127.0.0.1", 0), backlog=64)
    srv.settimeout(60)

    def run() -> None:
        with srv:
            handler(srv)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return srv.getsockname()[1], thread


def baseline(echoes: int, size: int, conns: int) -> dict[str, float]:
    def echo(srv):
        c, _ = srv.accept()
        with c:
            while data := c.recv(512):
                c.sendall(data)

    def sink(srv):
        c, _ = srv.accept()
        with c:
            while c.recv(65536):
                pass

    def accept_many(srv):
        for _ in range(conns):
            c, _ = srv.accept()
            c.close()

    out = {}
    port, th = serve_in_thread(echo)
    with socket.create_connection(("127.0.0.1", port)) as c:
        out["echo_us"] = statistics.median(echo_latency(c, echoes)) * 1e6
    th.join(10)
    port, th = serve_in_thread(sink)
    with socket.create_connection(("127.0.0.1", port)) as c:
        out["in_MBps"] = size / push(c, pattern(size), lambda: (c.recv(1), th.join(60))) / 1e6
    with socket.create_server(("127.0.0.1", 0)) as srv:
        data = pattern(size)
        sender = threading.Thread(target=lambda: _send_to(srv.getsockname()[1], data), daemon=True)
        sender.start()
        c, _ = srv.accept()
        with c:
            out["out_MBps"] = size / pull(c, size) / 1e6
    port, th = serve_in_thread(accept_many)
    out["conn_per_s"] = setup_rate(lambda: socket.create_connection(("127.0.0.1", port), timeout=10), conns)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        srv.bind(("127.0.0.1", 0))
        th = threading.Thread(target=lambda: [srv.sendto(*srv.recvfrom(2048)) for _ in range(echoes)], daemon=True)
        th.start()
        out["udp_us"] = statistics.median(udp_latency(c, srv.getsockname(), echoes)) * 1e6
    out["idle_cpu"] = float("nan")
    return out


def _send_to(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)


# --- the board ---------------------------------------------------------------------------------
def bench_board(name: str, echoes: int, size: int, conns: int) -> dict[str, float]:
    board = Board(find_board(name), log=lambda m: None)
    board.start()
    peer = Peer(board, "hil_sock_msg")
    port = peer.port()
    out = {}
    try:
        proc = getattr(board.launcher, "proc", None)  # the emulator (or the unix-port process)
        out["idle_cpu"] = idle_cpu_percent(proc.pid) if proc else float("nan")
        role = peer.start(f"tcp_server({port}, 1, 512)", module="hil_echo")
        role.wait("READY")
        conn = peer.connect(port, timeout=30)
        out["echo_us"] = statistics.median(echo_latency(conn, echoes)) * 1e6
        conn.close()
        role.running.finish(30)

        role = peer.start(f"sink({port}, 4096)", ready=True)
        conn = peer.connect(port, timeout=120)
        results = []
        out["in_MBps"] = size / push(conn, pattern(size), lambda: results.append(role.result(120))) / 1e6
        assert results[0][0] == size, results

        listener = peer.listen(timeout=60)
        role = peer.start(f"source({peer.host_ip!r}, {listener.getsockname()[1]}, {size})")
        conn, _ = listener.accept()
        conn.settimeout(120)
        out["out_MBps"] = size / pull(conn, size) / 1e6
        role.result(60)

        role = peer.start(f"accept_many({port}, {conns})", ready=True)
        out["conn_per_s"] = setup_rate(lambda: peer.net.connect(port, timeout=10), conns)
        role.result(60)

        uport = peer.udp_port()
        role = peer.start(f"udp_server({uport}, {echoes})", module="hil_echo")
        role.wait("READY")
        with peer.udp() as sock:
            out["udp_us"] = statistics.median(udp_latency(sock, peer.address(uport, "udp"), echoes)) * 1e6
        role.running.finish(30)
    finally:
        peer.close()
        board.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None)
    parser.add_argument("--echoes", type=int, default=500)
    parser.add_argument("--mbytes", type=int, default=8)
    parser.add_argument("--conns", type=int, default=100)
    args = parser.parse_args()
    size = args.mbytes << 20
    base = baseline(args.echoes, size, args.conns)
    cols = [("echo_us", "echo p50 us"), ("in_MBps", "host->board MB/s"), ("out_MBps", "board->host MB/s"),
            ("conn_per_s", "connects/s"), ("udp_us", "UDP rtt p50 us")]  # fmt: skip
    print(f"{'board':<22}" + "".join(f"{title:>24}" for _, title in cols))
    print(f"{'CPython host loopback':<22}" + "".join(f"{base[k]:>24.1f}" for k, _ in cols), flush=True)
    for name in args.board or DEFAULT_BOARDS:
        r = bench_board(name, args.echoes, size, args.conns)
        # ratio: how many times worse than the baseline (latency: board/base; rates: base/board)
        cells = []
        for k, _ in cols:
            ratio = r[k] / base[k] if k.endswith("_us") else base[k] / r[k]
            cells.append(f"{r[k]:>13.1f} ({ratio:>6.1f}x)")
        print(f"{name:<22}" + "".join(f"{c:>24}" for c in cells) + f"   idle CPU {r['idle_cpu']:.1f} % of a core",
              flush=True)  # fmt: skip
    print("(x: times slower than the CPython loopback baseline measured in this run;")
    print(f" idle CPU: the emulator process over {IDLE_SECONDS:g} s at the REPL prompt)")


if __name__ == "__main__":
    main()
