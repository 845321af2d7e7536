"""suites/tls/tls_peers.py's hostile-client tooling without a board: what it reads from a peer's
records (Outcome), the ClientHello record-version rewrite, and hostile_client against a real
OpenSSL server (CPython's ssl) in a thread: a malformed ClientHello gets OpenSSL's decode_error
alert, a good one completes with extended_master_secret and the echo comes back."""

from __future__ import annotations

import importlib
import socket
import ssl
import struct
import sys
import threading

import pytest

from harness.pki import TestPKI
from tests.conftest import REPO

SUITE = REPO / "suites" / "tls"


@pytest.fixture(scope="module")
def tp():
    sys.path.insert(0, str(SUITE))
    try:
        yield importlib.import_module("tls_peers")
    finally:
        sys.path.remove(str(SUITE))


def record(tp, type_: int, payload: bytes) -> bytes:
    return tp.Record(type_, 0x0303, payload).encode()


def server_flight(tp) -> bytes:
    """ServerHello (cipher 0xC02C, extended_master_secret) + ECDHE ServerKeyExchange (secp256r1,
    ecdsa_secp256r1_sha256) + ServerHelloDone in one record."""
    ext = struct.pack(">HH", tp.EXT_EXTENDED_MASTER_SECRET, 0)
    hello = b"\x03\x03" + bytes(32) + b"\x00" + struct.pack(">HB", 0xC02C, 0) + struct.pack(">H", len(ext)) + ext
    ske = b"\x03" + struct.pack(">HB", 23, 3) + b"\x04\x01\x02" + struct.pack(">HH", 0x0403, 2) + b"\x30\x00"
    return record(tp, tp.HANDSHAKE, tp.handshake_message(tp.SERVER_HELLO, hello)
                  + tp.handshake_message(tp.SERVER_KEY_EXCHANGE, ske) + tp.handshake_message(14, b""))


def test_outcome_reads_the_board_flight_and_alert(tp):
    out = tp.Outcome(alert=(2, 50), closed="eof", error="remote alert 50",
                     received=server_flight(tp) + record(tp, tp.ALERT, b"\x02\x32") + b"\x16\x03")
    assert [t for t, _ in out.messages] == [tp.SERVER_HELLO, tp.SERVER_KEY_EXCHANGE, 14]
    hello = out.server_hello
    assert (hello.version, hello.cipher, hello.compression) == ((3, 3), 0xC02C, 0)
    assert tp.EXT_EXTENDED_MASTER_SECRET in hello.extensions
    assert out.key_exchange == (23, 0x0403)
    assert out.describe().startswith(
        "fatal decode_error alert after the board's ServerHello+ServerKeyExchange+ServerHelloDone, then eof")
    assert tp._first_plain_alert(out.received) == (2, 50)


def test_outcome_says_silent_close_and_no_answer(tp):
    assert tp.Outcome(closed="reset").describe().startswith(
        "silent close (no alert) before any board handshake message, then reset")
    assert tp.Outcome(closed="open", received=server_flight(tp)).describe().startswith("no answer after")


def test_hello_record_version_rewritten_until_the_first_answer(tp):
    a, b = socket.socketpair()
    with a, b:
        tamper = tp.TamperSocket(a)
        tamper.hello_record_version = 0x03FE
        tamper.send(record(tp, tp.HANDSHAKE, b"\x01\x00\x00\x00") * 2)
        b.sendall(b"x")
        assert tamper.recv(1) == b"x" and tamper.received == b"x"
        tamper.send(record(tp, tp.HANDSHAKE, b"\x10\x00\x00\x00"))
        sent = tp.parse_records(b.recv(100))
    assert [r.version for r in sent] == [0x03FE, 0x03FE, 0x0303]


@pytest.fixture(scope="module")
def pki():
    return TestPKI()


def openssl_server(tp, pki, workdir, echo: int) -> tuple[socket.socket, threading.Thread]:
    """A TLS 1.2 OpenSSL echo server for one connection (`echo` bytes), in a thread."""
    ctx = tp.server_context(pki, "server_ec", workdir=workdir, max_version=ssl.TLSVersion.TLSv1_2)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            try:
                tls = ctx.wrap_socket(conn, server_side=True)
                tls.sendall(tp.recv_exact(tls, echo))
                tp.read_all(tls)
            except (ssl.SSLError, OSError, EOFError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_hostile_client_sees_openssl_alert_and_close(tp, pki, tmp_path):
    listener, thread = openssl_server(tp, pki, tmp_path, 0)
    with listener:
        sock = socket.create_connection(listener.getsockname(), timeout=10)
        out = tp.hostile_client(sock, pki, workdir=tmp_path,
                                hello=lambda ch: tp.handshake_message(tp.CLIENT_HELLO, bytes(ch.write())[4:-7]))
        thread.join(10)
    assert (out.completed, out.alert, out.closed) == (False, (tp.FATAL, tp.DECODE_ERROR), "eof"), out.describe()


def test_hostile_client_completes_and_echoes(tp, pki, tmp_path):
    listener, thread = openssl_server(tp, pki, tmp_path, 2000)
    with listener:
        sock = socket.create_connection(listener.getsockname(), timeout=10)
        out = tp.hostile_client(sock, pki, workdir=tmp_path, echo=tp.pattern(2000), hello_record_size=100)
        thread.join(10)
    assert out.completed, out.describe()
    assert out.server_hello.version == (3, 3)
    assert tp.EXT_EXTENDED_MASTER_SECRET in out.server_hello.extensions  # OpenSSL answers it
    assert out.key_exchange is not None
