"""TLS handshakes per second and TLS echo throughput per board, against a baseline measured in the
same run: the very same app (firmware_py/hil_tls.py) on CPython's ssl (OpenSSL) on loopback.
Prints figures and board/baseline ratios (no thresholds: machines and loads differ).

    python bench/bench_tls.py [--board qemu_x86 --board native] [--handshakes 20] [--kbytes 1024]

Rows per target:
- server hs/s: the host (CPython ssl) opens fresh full handshakes to the target's echo server,
  one after another (RSA 2048 and EC P-256 server certificates, ECDHE key exchange);
- client hs/s: the target's client connects to a host server (EC certificate) again and again;
- echo MB/s: payload bytes per second through one connection to the echo server, the host
  sending 32 KB and reading the 32 KB echo back in turn."""

from __future__ import annotations

import argparse
import ast
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "suites" / "tls")]

import tls_peers as tp  # noqa: E402

from harness.board import Board  # noqa: E402
from harness.config.boards import find_board  # noqa: E402
from harness.net.boardnet import free_port  # noqa: E402
from harness.pki import TestPKI  # noqa: E402

CHUNK = 32 * 1024


def nodelay(sock: socket.socket) -> socket.socket:
    """Every socket in the bench sends at once: ping-pong over Nagle + delayed ACK would measure
    TCP's 40 ms timers instead of TLS."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class HostTarget:
    """hil_tls under CPython in a subprocess: the baseline."""

    name = "cpython"

    def __init__(self, pki: TestPKI, workdir: Path) -> None:
        self.workdir = workdir
        (workdir / "hil_pki").mkdir(parents=True, exist_ok=True)
        for name, data in pki.board_files().items():
            (workdir / "hil_pki" / name).write_bytes(data)
        self.env = os.environ | {"PYTHONPATH": str(ROOT / "firmware_py")}
        self.host_ip = "127.0.0.1"

    def server(self, cert: str, conns: int):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-c", f"import hil_tls\nhil_tls.server({port}, {cert!r}, "
                                 f"conns={conns}, bufsize={CHUNK}, timeout=60, nodelay=True)"],
                                cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().startswith("READY"), "baseline server did not start"

        def finish() -> None:
            proc.wait(timeout=120)
            proc.stdout.close()

        return ("127.0.0.1", port), finish

    def client(self, port: int, conns: int):
        proc = subprocess.Popen([sys.executable, "-c", f"import hil_tls\nhil_tls.client('127.0.0.1', {port}, "
                                 f"ca=('root', 'intermediate'), conns={conns}, send=b'x', expect=1, nodelay=True)"],
                                cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, text=True)

        def finish() -> list[dict]:
            out, _ = proc.communicate(timeout=120)
            return [ast.literal_eval(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]

        return finish

    def connect(self, addr):
        return nodelay(socket.create_connection(addr, timeout=60))

    def listen(self) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        return listener

    def stop(self) -> None:
        pass


class BoardTarget:
    def __init__(self, name: str, pki: TestPKI) -> None:
        self.name = name
        self.board = Board(find_board(name), log=lambda m: None).start()
        self.pki = pki
        tp.deliver_pki(self.board, pki)
        self.host_ip = self.board.net.host_ip

    def fresh(self) -> None:
        """A soft reset, then the PKI again where it only lives in RAM (no writable file system)."""
        self.board.soft_reset()
        tp.deliver_pki(self.board, self.pki)

    def server(self, cert: str, conns: int):
        self.fresh()
        srv = tp.BoardServer(self.board, cert, conns=conns, bufsize=4096, timeout=60, finish_timeout=300,
                             nodelay=True)

        def finish() -> None:
            srv.finish()
            errors = [r for r in srv.results if "error" in r]
            assert not errors, errors

        return srv.addr, finish

    def client(self, port: int, conns: int):
        self.fresh()
        client = tp.BoardClient(self.board, port, conns=conns, send=b"x", expect=1, finish_timeout=300,
                                nodelay=True)
        return client.results

    def connect(self, addr):
        return nodelay(self.board.net.run(lambda: socket.create_connection(addr, timeout=60)))

    def listen(self) -> socket.socket:
        return self.board.net.listen()

    def stop(self) -> None:
        self.board.stop()


def host_client_ctx(pki: TestPKI, workdir: Path) -> ssl.SSLContext:
    return tp.client_context(pki, workdir=workdir, max_version=ssl.TLSVersion.TLSv1_2)


def server_handshakes(target, pki: TestPKI, workdir: Path, cert: str, n: int) -> float:
    addr, finish = target.server(cert, n)
    ctx = host_client_ctx(pki, workdir)
    started = time.perf_counter()
    for _ in range(n):
        sock = target.connect(addr)
        tls = ctx.wrap_socket(sock, server_hostname=pki.hostname)
        tp.close_notify(tls)
    elapsed = time.perf_counter() - started
    finish()
    return n / elapsed


def client_handshakes(target, pki: TestPKI, workdir: Path, n: int) -> float:
    ctx = tp.server_context(pki, "server_ec", workdir=workdir, max_version=ssl.TLSVersion.TLSv1_2)
    with target.listen() as listener:
        results = target.client(listener.getsockname()[1], n)
        started = time.perf_counter()
        for _ in range(n):
            served = tp.serve_once(listener, ctx, echo=1, timeout=60, nodelay=True)
            assert served.error is None, served.error
        elapsed = time.perf_counter() - started
        assert [r.get("end") for r in results()] == ["count"] * n
    return n / elapsed


def echo_throughput(target, pki: TestPKI, workdir: Path, total: int) -> float:
    addr, finish = target.server("server_ec", 1)
    ctx = host_client_ctx(pki, workdir)
    tls = ctx.wrap_socket(target.connect(addr), server_hostname=pki.hostname)
    block = tp.pattern(CHUNK)
    started = time.perf_counter()
    for _ in range(total // CHUNK):
        tls.sendall(block)
        assert tp.recv_exact(tls, CHUNK) == block
    elapsed = time.perf_counter() - started
    tp.close_notify(tls)
    finish()
    return (total // CHUNK) * CHUNK / elapsed / 1e6


def measure(target, pki: TestPKI, workdir: Path, handshakes: int, kbytes: int) -> dict[str, float]:
    return {
        "server_rsa": server_handshakes(target, pki, workdir, "server_rsa", handshakes),
        "server_ec": server_handshakes(target, pki, workdir, "server_ec", handshakes),
        "client_ec": client_handshakes(target, pki, workdir, handshakes),
        "echo": echo_throughput(target, pki, workdir, kbytes * 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", default=None)
    parser.add_argument("--handshakes", type=int, default=20)
    parser.add_argument("--kbytes", type=int, default=1024, help="echo payload per target (KiB)")
    args = parser.parse_args()
    pki = TestPKI()
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        workdir = Path(tmp)
        baseline = measure(HostTarget(pki, workdir / "cpython"), pki, workdir, args.handshakes, args.kbytes)
        columns = [("server_rsa", "srv RSA hs/s"), ("server_ec", "srv EC hs/s"), ("client_ec", "cli EC hs/s"),
                   ("echo", "echo MB/s")]
        print(f"{'target':<10}" + "".join(f"{title:>14} {'x base':>8}" for _, title in columns))

        def row(name: str, figures: dict[str, float]) -> None:
            cells = "".join(f"{figures[key]:14.1f} {figures[key] / baseline[key]:8.3f}" for key, _ in columns)
            print(f"{name:<10}{cells}", flush=True)

        row("cpython", baseline)
        for name in args.board or ["qemu_x86", "native"]:
            target = BoardTarget(name, pki)
            try:
                row(name, measure(target, pki, workdir, args.handshakes, args.kbytes))
            finally:
                target.stop()


if __name__ == "__main__":
    main()
