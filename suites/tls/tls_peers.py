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
import base64
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


# --- the PKI on a board -------------------------------------------------------------------------
def pki_marker(pki: TestPKI) -> bytes:
    return pki.root.sha256.encode()


def deliver_pki(board, pki: TestPKI) -> int:
    """Write the PKI's board files (DER) into the board's hil_pki/ directory over the REPL, unless
    this PKI is there already. Returns the number of files written."""
    marker = pki_marker(pki)
    if board.eval(f"__import__('hil_tls').has('id', {marker!r})"):
        return 0
    files = dict(pki.board_files())
    batch: list[str] = []
    size = 0
    for name, data in files.items():
        batch.append(f"hil_tls.store({name!r}, {base64.b64encode(data)!r})")
        size += len(data)
        if size > 3000:
            board.exec("import hil_tls\n" + "\n".join(batch))
            batch, size = [], 0
    batch.append(f"hil_tls.store('id', {base64.b64encode(marker)!r})")
    board.exec("import hil_tls\n" + "\n".join(batch))
    return len(files)


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
    """A socket for tlslite whose next record(s) can be corrupted on the way out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.corrupt_next = False

    def send(self, data) -> int:
        data = bytes(data)
        if self.corrupt_next and len(data) > 5:
            self.corrupt_next = False
            data = data[:-1] + bytes([data[-1] ^ 0x01])
        self.sock.sendall(data)
        return len(data)

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
