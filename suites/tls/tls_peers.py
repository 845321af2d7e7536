"""Host-side peers for the TLS suite (and bench/bench_tls.py).

- the board's apps (firmware_py/hil_tls.py) started over the REPL: ``BoardServer`` (the host
  connects to it) and ``BoardClient`` (it connects to a host listener);
- normal host peers on CPython's ssl module (OpenSSL): ``client_context`` / ``server_context``;
- hostile host peers: ``BioPeer`` drives OpenSSL through memory BIOs so the records it sends can be
  re-framed (handshake messages fragmented) or corrupted on the way; ``tlslite_client`` is a
  tlslite-ng client whose records (size, empty records, raw messages) are under our control;
- record-layer helpers: parse, build, re-frame and corrupt TLS records."""

from __future__ import annotations

import ast
import hashlib
import socket
import ssl
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.pki import TestPKI

with warnings.catch_warnings():  # tlslite-ng imports asyncore (deprecated in 3.11, gone in 3.12)
    warnings.simplefilter("ignore", DeprecationWarning)
    import tlslite  # noqa: F401 - imported here once, quietly; used through its submodules below

TIMEOUT = 30.0  # host sockets: a TCG board's RSA handshake takes up to a second on a loaded host

# record content types and alert descriptions (RFC 5246)
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
WARNING, FATAL = 1, 2
BAD_RECORD_MAC, DECRYPT_ERROR, NO_RENEGOTIATION = 20, 51, 100

# mbedTLS errors as MicroPython raises them: OSError(code, "MBEDTLS_ERR_SSL_<NAME>")
MBEDTLS_CODES = {
    "BAD_CONFIG": -0x5E80,
    "HANDSHAKE_FAILURE": -0x6E00,
    "INVALID_MAC": -0x7180,
    "INVALID_RECORD": -0x7200,
    "CONN_EOF": -0x7280,
    "NO_CLIENT_CERTIFICATE": -0x7480,
    "FATAL_ALERT_MESSAGE": -0x7780,
}
MBEDTLS_NAMES = {code: "MBEDTLS_ERR_SSL_" + name for name, code in MBEDTLS_CODES.items()}
# socket errors as hil_tls.error reports them: by name from the board's errno module (the numbers
# differ between C libraries), by number where that module has no name: MicroPython's errno list has
# no EPIPE, which is 32 in Linux, newlib and picolibc alike (lwIP boards never raise it)
EPIPE, ECONNRESET = ("OSError", 32, ""), ("OSError", "ECONNRESET", "")


def mbedtls(name: str) -> tuple:
    """The board's error tuple (see hil_tls.error) for an mbedTLS SSL error."""
    return ("OSError", MBEDTLS_CODES[name], "MBEDTLS_ERR_SSL_" + name)


# what MicroPython's verify failure (ValueError) says, one line per mbedTLS X509_BADCERT flag
NOT_TRUSTED = "The certificate is not correctly signed by the trusted CA"
CN_MISMATCH = "The certificate Common Name (CN) does not match with the expected CN"
EXPIRED = "The certificate validity has expired"
FUTURE = "The certificate validity starts in the future"


def pattern(n: int) -> bytes:
    """The same bytes as hil_tls._pattern(n) on the board."""
    block = bytes((i * 811 + 7) & 0xFF for i in range(256))
    return block * (n // 256) + block[: n % 256]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_reasons(error: tuple) -> set[str]:
    """The reasons in a board verify failure: ('ValueError', None, '\\nreason\\n...')."""
    assert error[0] == "ValueError", error
    return {line.strip() for line in error[2].splitlines() if line.strip()}


def board_time(dut) -> float:
    """The board's clock as Unix time (ports with a 2000 epoch are converted)."""
    now, epoch_year = dut.eval("(__import__('time').time(), __import__('time').gmtime(0)[0])")
    return now + (946684800 if epoch_year == 2000 else 0)


def _args(kwargs: dict) -> str:
    return "".join(f", {k}={v!r}" for k, v in kwargs.items())


def _parse(prefix: str, output: str) -> list[dict]:
    return [_named(ast.literal_eval(line[len(prefix) + 1 :]))
            for line in output.splitlines() if line.startswith(prefix + " ")]


def _named(result: dict) -> dict:
    """Give an mbedTLS error the board raised without its text the name mbedtls_strerror gives
    its code. MicroPython 1.25 (mps2_an385) raises an established connection's read/write errors
    as a bare OSError(code): the text came with micropython#18289 (MP_STREAM_RAISE_ERROR). The code
    identifies the error; the text is only its name."""
    for key in ("error", "end"):
        err = result.get(key)
        bare = isinstance(err, tuple) and len(err) == 3 and err[0] == "OSError" and not err[2]
        if bare and err[1] in MBEDTLS_NAMES:
            result[key] = (err[0], err[1], MBEDTLS_NAMES[err[1]])
    return result


# --- the board's apps -----------------------------------------------------------------------------
class BoardServer:
    """hil_tls.server() running on the board; the host connects to ``addr``.

        with BoardServer(dut, "server_rsa", conns=2) as srv:
            sock = srv.connect()
            ...
        results = srv.results      # one dict per connection (see firmware_py/hil_tls.py)"""

    def __init__(self, dut, cert: str, *, index: int = 0, module: str = "hil_tls", ready_timeout: float = 30.0,
                 finish_timeout: float = 120.0, **kwargs) -> None:
        self.dut, self.finish_timeout = dut, finish_timeout
        self.port = dut.net.tcp_port(index)
        self.running = dut.spawn(f"import {module}\n{module}.server({self.port}, {cert!r}{_args(kwargs)})")
        try:
            self.running.wait_for("READY", timeout=ready_timeout)
        except BaseException:
            _stop(self.running)
            raise
        self.addr = dut.net.address(self.port)
        self.results: list[dict] = []
        self.output = ""

    def connect(self, timeout: float = TIMEOUT) -> socket.socket:
        return self.dut.net.connect(self.port, timeout=timeout)

    def wait_accepted(self, timeout: float = TIMEOUT) -> None:
        """Until the board's accept() has returned the next connection (it prints ACCEPTED)."""
        self.running.wait_for("ACCEPTED", timeout=timeout)

    def finish(self) -> list[dict]:
        self.output = self.running.finish(self.finish_timeout)
        self.results = _parse("CONN", self.output)
        assert "DONE" in self.output, self.output
        return self.results

    def __enter__(self) -> BoardServer:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.finish()
        else:
            _stop(self.running)


class BoardClient:
    """hil_tls.client() (or a variant module's) running on the board, connecting to the host.
    Returns once the board is about to connect (it printed CONNECTING): code that fails before
    that raises here instead of leaving the host waiting in accept()."""

    def __init__(self, dut, port: int, *, module: str = "hil_tls", finish_timeout: float = 90.0, **kwargs) -> None:
        self.finish_timeout = finish_timeout
        self.running = dut.spawn(f"import {module}\n{module}.client({dut.net.host_ip!r}, {port}{_args(kwargs)})")
        self.output = ""
        self.wait_connecting()

    def wait_connecting(self, timeout: float = 30.0) -> None:
        try:
            self.running.wait_for("CONNECTING", timeout=timeout)
        except BaseException:
            _stop(self.running)
            raise

    def results(self) -> list[dict]:
        self.output = self.running.finish(self.finish_timeout)
        return _parse("RESULT", self.output)

    def result(self) -> dict:
        results = self.results()
        assert len(results) == 1, self.output
        return results[0]

    def stop(self) -> None:
        _stop(self.running)


def _stop(running) -> None:
    """Interrupt board code that is still running (a failed test must not leave it behind)."""
    if not running.done:
        try:
            running.finish(timeout=0.5)
        except Exception:
            pass
        running.done = True


# --- normal host peers (OpenSSL) ------------------------------------------------------------------
def client_context(pki: TestPKI, *, cert: str | None = None, trust: bytes | None = None,
                   min_version: ssl.TLSVersion | None = None, max_version: ssl.TLSVersion | None = None,
                   ciphers: str | None = None, check_hostname: bool = True, workdir: Path) -> ssl.SSLContext:
    """A verifying host client for a board server (trusting root + intermediate by default: a board
    server sends only its leaf)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=(trust or pki.trust_with_intermediate_pem).decode())
    ctx.check_hostname = check_hostname
    if cert:
        ctx.load_cert_chain(*pki[cert].files(workdir))
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def server_context(pki: TestPKI, cert: str, *, chain: bool = True, verify: ssl.VerifyMode = ssl.CERT_NONE,
                   min_version: ssl.TLSVersion | None = None, max_version: ssl.TLSVersion | None = None,
                   ciphers: str | None = None, workdir: Path) -> ssl.SSLContext:
    """A host server for a board client, sending its chain (leaf + intermediate) unless chain=False."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pki[cert].files(workdir, chain=chain))
    ctx.verify_mode = verify
    if verify != ssl.CERT_NONE:
        ctx.load_verify_locations(cadata=pki.trust_with_intermediate_pem.decode())
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


@dataclass
class Served:
    """What a host server saw of one connection."""

    version: str | None = None
    cipher: str | None = None
    peer_cn: str | None = None
    received: bytes = b""
    error: Exception | None = None
    session_reused: bool | None = None
    alpn: str | None = None
    raw_first: bytes = field(default=b"", repr=False)


def serve_once(listener: socket.socket, ctx: ssl.SSLContext | None, *, echo: int = 0, send: bytes = b"",
               recv_all: int = 0, timeout: float = TIMEOUT, nodelay: bool = False) -> Served:
    """Accept one connection and run a TLS server on it: echo `echo` bytes back, or read `recv_all`
    bytes, then send `send`, then close_notify. ctx None: a plaintext peer that records what the
    board sends first (up to 5 bytes) and answers with `send`."""
    listener.settimeout(timeout)
    conn, _ = listener.accept()
    conn.settimeout(timeout)
    if nodelay:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = Served()
    with conn:
        if ctx is None:
            out.raw_first = read_some(conn, 5)
            if send:
                conn.sendall(send)
            return out
        try:
            tls = ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError) as exc:
            out.error = exc
            return out
        out.version, out.cipher = tls.version(), tls.cipher()[0]
        out.session_reused, out.alpn = tls.session_reused, tls.selected_alpn_protocol()
        peer = tls.getpeercert()
        if peer:
            out.peer_cn = dict(x[0] for x in peer["subject"])["commonName"]
        try:
            if echo:
                data = recv_exact(tls, echo)
                out.received = data
                tls.sendall(data)
            if recv_all:
                out.received = recv_exact(tls, recv_all)
            if send:
                tls.sendall(send)
        except (ssl.SSLError, OSError, EOFError) as exc:
            out.error = exc
        close_notify(tls)
    return out


def close_notify(tls: ssl.SSLSocket) -> None:
    """Send close_notify and close. unwrap() then waits for the peer's close_notify, which a
    MicroPython board never sends (it closes TCP: see test_board_close_sends_close_notify)."""
    try:
        tls.unwrap()
    except (ssl.SSLError, OSError):
        pass
    tls.close()


def recv_exact(sock, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise EOFError(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_some(sock: socket.socket, n: int) -> bytes:
    """Up to n bytes, fewer only at EOF."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def read_all(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything until EOF (or a reset, which ends the stream just the same)."""
    buf = bytearray()
    while len(buf) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


# --- records --------------------------------------------------------------------------------------
@dataclass
class Record:
    type: int
    version: int
    payload: bytes

    def encode(self) -> bytes:
        return struct.pack(">BHH", self.type, self.version, len(self.payload)) + self.payload


def parse_records(data: bytes) -> list[Record]:
    records, i = [], 0
    while i < len(data):
        assert len(data) - i >= 5, f"truncated record header at {i}: {data[i:]!r}"
        type_, version, length = struct.unpack(">BHH", data[i : i + 5])
        records.append(Record(type_, version, data[i + 5 : i + 5 + length]))
        assert len(records[-1].payload) == length, "truncated record"
        i += 5 + length
    return records


def fragment_handshake(data: bytes, size: int) -> bytes:
    """Re-frame the plaintext handshake records of a flight (those before a ChangeCipherSpec) into
    records of at most `size` bytes: handshake messages then span several records."""
    out = bytearray()
    encrypted = False
    for rec in parse_records(data):
        encrypted = encrypted or rec.type == CHANGE_CIPHER_SPEC
        if rec.type != HANDSHAKE or encrypted:
            out += rec.encode()
            continue
        for i in range(0, len(rec.payload), size):
            out += Record(rec.type, rec.version, rec.payload[i : i + size]).encode()
    return bytes(out)


def flip_last_byte(data: bytes, record_index: int) -> bytes:
    """Corrupt the last byte (the AEAD tag or MAC) of one record of a flight."""
    records = parse_records(data)
    rec = records[record_index]
    records[record_index] = Record(rec.type, rec.version, rec.payload[:-1] + bytes([rec.payload[-1] ^ 0x01]))
    return b"".join(r.encode() for r in records)


class BioPeer:
    """An OpenSSL client or server whose every flight passes through `rewrite` before it goes out.

    rewrite(flight_bytes, flight_number) -> bytes to send. Flights are numbered from 0 (a client's
    ClientHello; a server's ServerHello...ServerHelloDone)."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, *, server_side: bool = False,
                 hostname: str | None = None, rewrite: Callable[[bytes, int], bytes] | None = None,
                 dribble: bool = False) -> None:
        self.sock = sock
        self.dribble = dribble  # every byte in its own send() (TCP_NODELAY): records span segments
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side, server_hostname=hostname)
        self.rewrite = rewrite or (lambda data, _n: data)
        self.flights = 0
        self.sent: list[bytes] = []

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            data = self.rewrite(data, self.flights)
            self.flights += 1
            self.sent.append(data)
            if self.dribble:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for i in range(len(data)):
                    self.sock.sendall(data[i : i + 1])
            else:
                self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def handshake(self, stop_after_flights: int | None = None) -> bool:
        """Run the handshake; with stop_after_flights, return False once that many flights are out
        (without reading the answer)."""
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return True
            except ssl.SSLWantReadError:
                self._flush()
                if stop_after_flights is not None and self.flights >= stop_after_flights:
                    return False
                self._fill()
            except ssl.SSLError:
                self._flush()  # our alert, if any
                raise

    def write(self, data: bytes) -> None:
        self.obj.write(data)
        self._flush()

    def read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.obj.read(n - len(buf))
                if not chunk:
                    break
                buf += chunk
            except ssl.SSLWantReadError:
                self._fill()
        return bytes(buf)

    def close_notify(self) -> None:
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()


# --- tlslite-ng client ----------------------------------------------------------------------------
class TamperSocket:
    """A socket for tlslite whose next record(s) can be corrupted on the way out. It keeps every
    byte the peer sent (``received``: the board's records, alerts included, as they came), and
    can give the records sent before the first answer (the ClientHello) another record-layer
    version (``hello_record_version``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.corrupt_next = False
        self.received = bytearray()
        self.hello_record_version: int | None = None
        self.keep_open = False  # tlslite's close() (it closes on an alert) leaves the socket open

    def close(self) -> None:
        if not self.keep_open:
            self.sock.close()

    def send(self, data) -> int:
        data = bytes(data)
        if self.hello_record_version is not None and not self.received:
            data = b"".join(Record(r.type, self.hello_record_version, r.payload).encode()
                            for r in parse_records(data))
        if self.corrupt_next and len(data) > 5:
            self.corrupt_next = False
            data = data[:-1] + bytes([data[-1] ^ 0x01])
        self.sock.sendall(data)
        return len(data)

    def recv(self, n: int) -> bytes:
        data = self.sock.recv(n)
        self.received += data
        return data

    def sendall(self, data) -> None:
        self.send(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def tlslite_client(sock: socket.socket, pki: TestPKI, *, record_size: int | None = None,
                   corrupt_finished: bool = False):
    """A tlslite-ng TLS 1.2 client connected over `sock` (wrapped in a TamperSocket), verified
    against root + intermediate by fingerprint of what we made (tlslite has no X.509 path
    validation). record_size fragments every record it sends, handshake messages included."""
    from tlslite import HandshakeSettings, TLSConnection
    from tlslite.messages import Finished

    tamper = TamperSocket(sock)
    conn = TLSConnection(tamper)
    conn.tamper = tamper  # conn.sock is tlslite's own buffering wrapper around it
    if record_size:
        conn.recordSize = record_size
    if corrupt_finished:
        original = conn._sendMsg

        def send_msg(msg, *args, **kwargs):
            if isinstance(msg, Finished):
                msg.verify_data = bytearray(msg.verify_data)
                msg.verify_data[0] ^= 0x01
            return original(msg, *args, **kwargs)

        conn._sendMsg = send_msg
    settings = HandshakeSettings()
    settings.minVersion = settings.maxVersion = (3, 3)
    conn.handshakeClientCert(settings=settings, serverName=pki.hostname)
    chain = conn.session.serverCertChain
    assert chain is not None and chain.x509List, "server sent no certificate"
    return conn


def tlslite_send_record(conn, content_type: int, payload: bytes) -> None:
    """Send one record of our choosing through an established tlslite connection (encrypted)."""
    from tlslite.messages import Message

    for _ in conn._sendMsgThroughSocket(Message(content_type, bytearray(payload))):
        pass


def tlslite_next_record(conn) -> tuple[int, bytes] | None:
    """The next record the peer sends, decrypted: (content type, payload); None at EOF."""
    from tlslite.errors import TLSAbruptCloseError

    try:
        for result in conn._recordLayer.recvRecord():
            if result in (0, 1):
                continue
            header, parser = result
            return header.type, bytes(parser.bytes)
    except (TLSAbruptCloseError, ConnectionResetError):
        return None
    return None


# --- hostile tlslite-ng client: message surgery, what the board answered -------------------------
# handshake message types and alert descriptions by name (RFC 5246 7.2, 7.4; RFC 8446 B.2)
HANDSHAKE_NAMES = {0: "HelloRequest", 1: "ClientHello", 2: "ServerHello", 11: "Certificate",
                   12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone",
                   15: "CertificateVerify", 16: "ClientKeyExchange", 20: "Finished"}
CLIENT_HELLO, SERVER_HELLO, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST = 1, 2, 12, 13
CERTIFICATE_VERIFY, CLIENT_KEY_EXCHANGE, FINISHED = 15, 16, 20
HEARTBEAT = 24  # record content type (RFC 6520); the board never negotiates heartbeats
ALERT_NAMES = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
               40: "handshake_failure", 42: "bad_certificate", 47: "illegal_parameter", 48: "unknown_ca",
               50: "decode_error", 51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security",
               80: "internal_error", 100: "no_renegotiation", 110: "unsupported_extension",
               112: "unrecognized_name"}
UNEXPECTED_MESSAGE, HANDSHAKE_FAILURE, ILLEGAL_PARAMETER, DECODE_ERROR = 10, 40, 47, 50
# extension types (IANA)
EXT_SERVER_NAME, EXT_SUPPORTED_GROUPS, EXT_EC_POINT_FORMATS, EXT_SIGNATURE_ALGORITHMS = 0, 10, 11, 13
EXT_PADDING, EXT_ENCRYPT_THEN_MAC, EXT_EXTENDED_MASTER_SECRET, EXT_RENEGOTIATION_INFO = 21, 22, 23, 0xFF01
CLOSE_WAIT = 15.0  # after a fatal alert the board must close within this (TCG boards are slow)
ECHO_WAIT = 10.0  # an echo of a few KB is back within this, or it is not coming


def alert_name(alert: tuple[int, int] | None) -> str:
    if alert is None:
        return "no alert"
    level = {WARNING: "warning", FATAL: "fatal"}.get(alert[0], f"level {alert[0]}")
    return f"{level} {ALERT_NAMES.get(alert[1], alert[1])} alert"


def handshake_message(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def split_handshake(payload: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of each whole handshake message in concatenated handshake record payloads."""
    out, i = [], 0
    while i + 4 <= len(payload):
        length = int.from_bytes(payload[i + 1 : i + 4], "big")
        if i + 4 + length > len(payload):
            break
        out.append((payload[i], payload[i + 4 : i + 4 + length]))
        i += 4 + length
    return out


def parse_extensions(data: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    while i + 4 <= len(data):
        ext_type, length = struct.unpack(">HH", data[i : i + 4])
        out[ext_type] = data[i + 4 : i + 4 + length]
        i += 4 + length
    return out


@dataclass
class ServerHelloSeen:
    version: tuple[int, int]
    cipher: int
    compression: int
    extensions: dict[int, bytes]


@dataclass
class Outcome:
    """How a hostile handshake went, from the host: whether it completed, what the board sent in
    the clear (its handshake messages and alert, if any) and how the connection ended."""

    completed: bool = False
    alert: tuple[int, int] | None = None  # the board's alert (plaintext, or decrypted by tlslite)
    error: str = ""  # how tlslite's handshake ended, when it did not complete
    closed: str = ""  # "eof", "reset" or "open" (still open CLOSE_WAIT s after the end)
    received: bytes = b""
    conn: object = None  # the tlslite connection
    tamper: TamperSocket | None = None
    board: dict = field(default_factory=dict)  # the board's CONN result for this connection

    @property
    def messages(self) -> list[tuple[int, bytes]]:
        """The board's handshake messages sent in the clear (before its ChangeCipherSpec)."""
        payload = bytearray()
        for rec in _records_tolerant(self.received):
            if rec.type == CHANGE_CIPHER_SPEC:
                break
            if rec.type == HANDSHAKE:
                payload += rec.payload
        return split_handshake(bytes(payload))

    def message(self, msg_type: int) -> bytes | None:
        return next((body for t, body in self.messages if t == msg_type), None)

    @property
    def server_hello(self) -> ServerHelloSeen | None:
        body = self.message(SERVER_HELLO)
        if body is None:
            return None
        sid = body[34]
        at = 35 + sid
        cipher, compression = struct.unpack(">HB", body[at : at + 3])
        ext = body[at + 5 :] if len(body) > at + 3 else b""
        return ServerHelloSeen((body[0], body[1]), cipher, compression, parse_extensions(ext))

    @property
    def key_exchange(self) -> tuple[int, int] | None:
        """(named group, signature scheme) of an ECDHE ServerKeyExchange (RFC 8422 5.4)."""
        body = self.message(SERVER_KEY_EXCHANGE)
        if body is None or body[0] != 3:
            return None
        group, point_len = struct.unpack(">HB", body[1:4])
        (scheme,) = struct.unpack(">H", body[4 + point_len : 6 + point_len])
        return group, scheme

    def describe(self) -> str:
        """One line: e.g. 'fatal decode_error alert after the board's ServerHello+Certificate+
        ServerKeyExchange+ServerHelloDone, then eof (tlslite: ...; board: its error)'."""
        names = [HANDSHAKE_NAMES.get(t, str(t)) for t, _ in self.messages]
        after = f"after the board's {'+'.join(names)}" if names else "before any board handshake message"
        if self.completed:
            head = "handshake completed"
        elif self.alert:
            head = f"{alert_name(self.alert)} {after}"
        else:
            head = f"silent close (no alert) {after}" if self.closed != "open" else f"no answer {after}"
        board = self.board.get("error") or self.board.get("end")
        return f"{head}, then {self.closed or 'open'} (tlslite: {self.error or 'ok'}; board: {board})"


def _records_tolerant(data: bytes) -> list[Record]:
    records, i = [], 0
    while i + 5 <= len(data):
        type_, version, length = struct.unpack(">BHH", data[i : i + 5])
        if i + 5 + length > len(data):
            break
        records.append(Record(type_, version, data[i + 5 : i + 5 + length]))
        i += 5 + length
    return records


def _first_plain_alert(data: bytes) -> tuple[int, int] | None:
    for rec in _records_tolerant(data):
        if rec.type == CHANGE_CIPHER_SPEC:
            return None
        if rec.type == ALERT and len(rec.payload) == 2:
            return rec.payload[0], rec.payload[1]
    return None


def await_close(tamper: TamperSocket, timeout: float = CLOSE_WAIT) -> str:
    """Read what the board still sends until it closes: "eof", "reset" or "open"."""
    tamper.sock.settimeout(timeout)
    try:
        while tamper.recv(65536):
            pass
        return "eof"
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "open"
    except OSError:
        return "reset"


def raw_message(content_type: int, data: bytes):
    """A tlslite message with exactly these bytes as its content."""
    from tlslite.messages import Message

    return Message(content_type, bytearray(data))


def hostile_client(sock: socket.socket, pki: TestPKI, *, hello: Callable | None = None,
                   tamper: Callable | None = None, settings: dict | None = None, cert: str | None = None,
                   workdir: Path | None = None, hello_record_size: int | None = None,
                   hello_record_version: int | None = None, echo: bytes = b"", keep_open: bool = False) -> Outcome:
    """A tlslite-ng TLS 1.2 client with message surgery, for hostile-peer cases.

    hello(client_hello): edits tlslite's ClientHello object before it goes out (and into the
    transcript); when it returns bytes, those go out instead as the ClientHello message.
    tamper(message) -> list of messages to send instead (for every later message: drop, duplicate,
    truncate, replace; raw_message() builds any record). settings: attributes of
    tlslite's HandshakeSettings. cert: a client credential name (mutual TLS). After a completed
    handshake `echo` is sent and must come back whole; keep_open leaves a completed connection open
    (Outcome.conn, Outcome.tamper) for the caller. Never raises for what the board does: the
    Outcome says what it was."""
    from tlslite import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey
    from tlslite.errors import TLSAbruptCloseError, TLSLocalAlert, TLSRemoteAlert
    from tlslite.messages import ClientHello

    sock.settimeout(TIMEOUT)
    tamper_sock = TamperSocket(sock)
    tamper_sock.hello_record_version = hello_record_version
    tamper_sock.keep_open = True  # to see how the board ends after its alert
    conn = TLSConnection(tamper_sock)
    original = conn._sendMsg

    def send_msg(msg, *args, **kwargs):
        if isinstance(msg, ClientHello):
            raw = hello(msg) if hello else None
            if hello_record_size:
                conn.recordSize = hello_record_size
            msgs = [raw_message(HANDSHAKE, raw)] if isinstance(raw, bytes) else [msg]
        else:
            conn.recordSize = 2**14
            msgs = tamper(msg) if tamper else [msg]
        for m in msgs:
            yield from original(m, *args, **kwargs)

    conn._sendMsg = send_msg
    options = HandshakeSettings()
    options.minVersion = options.maxVersion = (3, 3)
    for key, value in (settings or {}).items():
        setattr(options, key, value)
    chain = key = None
    if cert:
        cert_file, key_file = pki[cert].files(workdir)
        chain = X509CertChain()
        chain.parsePemList(Path(cert_file).read_text())
        key = parsePEMKey(Path(key_file).read_text(), private=True)
    out = Outcome(conn=conn, tamper=tamper_sock)
    try:
        conn.handshakeClientCert(chain, key, settings=options, serverName=pki.hostname)
        out.completed = True
    except TLSRemoteAlert as exc:
        out.alert, out.error = (exc.level, exc.description), f"remote alert {exc.description}"
    except TLSLocalAlert as exc:  # tlslite objected to what the board sent
        out.error = f"tlslite sent {ALERT_NAMES.get(exc.description, exc.description)}: {exc.message}"
    except TLSAbruptCloseError:
        out.error = "EOF"
    except ConnectionResetError:
        out.error = "reset"
    except TimeoutError:
        out.error = f"no answer in {TIMEOUT:.0f} s"
    if out.completed and echo:
        conn.write(echo)
        sock.settimeout(ECHO_WAIT)
        back = bytearray()
        try:
            while len(back) < len(echo):
                back += conn.read(max=len(echo) - len(back))
        except (TimeoutError, TLSAbruptCloseError, ConnectionError):
            pass
        assert bytes(back) == echo, (f"echo of {len(echo)} bytes after the handshake: {len(back)} came back "
                                     f"(a prefix of what was sent: {bytes(back) == echo[: len(back)]})")
        conn.close()
    out.alert = out.alert or _first_plain_alert(bytes(tamper_sock.received))
    if not out.completed:
        out.closed = "eof" if out.error == "EOF" else "reset" if out.error == "reset" else await_close(tamper_sock)
    else:
        out.closed = "eof"
    out.received = bytes(tamper_sock.received)
    if not (out.completed and keep_open):
        tamper_sock.sock.close()
    return out
