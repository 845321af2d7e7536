# TLS apps for the board: an echo server and a client (MicroPython's tls module, mbedTLS; CPython's
# ssl module too, so the same code is a host-side reference). The host delivers the test PKI as DER
# files into PKI_DIR (store()), then starts server() or client() with credential names.
#
# Results are printed as Python literals the host parses:
#   server: "READY <port>", then per connection "ACCEPTED <i>" and "CONN {...}", then "DONE"
#   client: "RESULT {...}"
# Result dicts: "cipher" (suite name, protocol version) once the handshake is done, "error"
# (type name, code, message) and "stage" ("handshake" or "data") when something failed, "n" and
# "sha" (byte count and SHA-256 of what was received), "end" ("eof" or an error), "peers" (what the
# verify callback saw: (depth, SHA-256 of the DER) per certificate, MicroPython only).
import binascii
import hashlib
import socket

try:
    import tls

    MICROPYTHON = True
except ImportError:  # CPython: the ssl module
    import ssl as tls

    MICROPYTHON = False

PKI_DIR = "hil_pki"
HOSTNAME = "hil-tls.test"
CERT_NONE = tls.CERT_NONE
CERT_OPTIONAL = tls.CERT_OPTIONAL
CERT_REQUIRED = tls.CERT_REQUIRED


# --- the PKI on the board's file system ----------------------------------------------------------
# Boards without a writable file system (mps2_an385: MicroPython 1.25 ports/qemu mounts nothing, so
# open(..., "wb") raises OSError) keep the files in RAM instead: they last until the next soft reset,
# when has() says they are gone and the host delivers them again.
_ram = {}


def _mkdir(path):
    import os

    try:
        os.mkdir(path)
    except OSError:
        pass  # exists, or no writable file system (then open() fails too)


def store(name, b64):
    """Write one PKI file (base64 from the host); returns its length."""
    data = binascii.a2b_base64(b64)
    _mkdir(PKI_DIR)
    try:
        with open(PKI_DIR + "/" + name, "wb") as f:
            f.write(data)
    except OSError:
        _ram[name] = data
    else:
        _ram.pop(name, None)
    return len(data)


def read(name):
    if name in _ram:
        return _ram[name]
    with open(PKI_DIR + "/" + name, "rb") as f:
        return f.read()


def has(name, expected):
    """True when PKI file `name` holds `expected` (a marker the host wrote)."""
    try:
        return read(name) == expected
    except OSError:
        return False


def digest(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


def error(exc):
    """(type name, code, message) of an exception: mbedTLS errors are OSError(code, text) with a
    code below -255, socket errors OSError(errno) with the errno by name (see _errno_name),
    certificate verification failures ValueError(reasons, one per line)."""
    args = exc.args
    code = args[0] if args and isinstance(args[0], int) else None
    if len(args) > 1:
        msg = args[1]
    elif args and code is None:
        msg = args[0]
    else:
        msg = ""
    if code is not None and -256 < code < 256 and isinstance(exc, OSError) and not _ssl_error(exc):
        code = _errno_name(code)
    return (type(exc).__name__, code, str(msg))


def _ssl_error(exc):
    # CPython's ssl.SSLError is an OSError whose code is OpenSSL's, not an errno
    return not MICROPYTHON and isinstance(exc, tls.SSLError)


def _errno_name(code):
    """A socket errno by name from the board's own errno module: the numbers differ between C
    libraries (ETIMEDOUT is 110 on Linux, 116 with picolibc/newlib). The number stays where the
    module has no name for it (MicroPython's errno list is short: no EPIPE). A negative code is an errno
    too: modtls_mbedtls passes socket errors through mbedTLS as -errno, and MicroPython 1.25 (the
    mps2_an385 build) raises them like that from an established TLS connection's read/write; its
    mbedtls_raise_error, and read/write since micropython#18289 (MP_STREAM_RAISE_ERROR, Oct 2025),
    turn -1..-255 back into the errno."""
    import errno

    n = -code if code < 0 else code
    return getattr(errno, "errorcode", {}).get(n, n)


def cipher(sock):
    c = sock.cipher()
    return (c[0], c[1])


# --- contexts -------------------------------------------------------------------------------------
_peers = []


def _verify_callback(cert, depth):
    _peers.append((depth, digest(bytes(cert))))
    return 0  # leave mbedTLS's own verdict alone


def _load_chain(ctx, name):
    cert, key = read(name + ".der"), read(name + ".key")
    if MICROPYTHON:
        ctx.load_cert_chain(cert, key)
        return
    # CPython wants PEM files
    import os
    import ssl
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
        f.write(ssl.DER_cert_to_PEM_cert(cert))
        b64 = binascii.b2a_base64(key).decode().replace("\n", "")
        f.write("-----BEGIN PRIVATE KEY-----\n")
        for i in range(0, len(b64), 64):
            f.write(b64[i : i + 64] + "\n")
        f.write("-----END PRIVATE KEY-----\n")
    try:
        ctx.load_cert_chain(f.name)
    finally:
        os.remove(f.name)


def context(server=False, cert=None, ca=(), verify=None, ciphers=None, peers=False, alpn=None):
    """An SSLContext: cert is a credential name (its .der and .key files), ca names of CA
    certificates to trust, verify a CERT_* mode (None: the protocol's default), ciphers mbedTLS
    suite names, peers records what the verify callback sees, alpn protocols to offer/accept
    (AttributeError where the port has no ALPN, as MicroPython)."""
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER if server else tls.PROTOCOL_TLS_CLIENT)
    if not MICROPYTHON and verify == CERT_NONE and not server:
        ctx.check_hostname = False
    if cert:
        _load_chain(ctx, cert)
    for name in ca or ():
        if MICROPYTHON:
            ctx.load_verify_locations(read(name + ".der"))
        else:
            ctx.load_verify_locations(cadata=read(name + ".der"))
    if verify is not None:
        ctx.verify_mode = verify
    if ciphers:
        ctx.set_ciphers(list(ciphers) if MICROPYTHON else ":".join(ciphers))
    if peers and MICROPYTHON:
        ctx.verify_callback = _verify_callback
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def _addr(host, port):
    return socket.getaddrinfo(host, port)[0][-1]


def _nodelay(sock):
    # TCP_NODELAY (6, 1 on Linux and lwIP): records go out at once (benchmarks, not conformance)
    sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)


def _recv(sock, n):
    if hasattr(sock, "recv"):
        return sock.recv(n)
    return sock.read(1)  # ports without SSLSocket.recv: read(n) would wait for all n bytes


def _write(sock, data):
    sock.write(data)


def _close(conn, res):
    conn.close()


def _pump(sock, res, bufsize, expect, echo, write=_write):
    """Read (and echo with write(sock, data)) until EOF, `expect` bytes or an error; fills n, sha,
    end (and data when short)."""
    h = hashlib.sha256()
    n = 0
    head = b""
    try:
        while expect is None or n < expect:
            data = _recv(sock, bufsize)
            if not data:
                res["end"] = "eof"
                break
            h.update(data)
            n += len(data)
            if len(head) < 256:
                head = (head + data)[:256]
            if echo:
                write(sock, data)
        else:
            res["end"] = "count"
    except Exception as e:
        res["end"] = error(e)
    res["n"] = n
    res["sha"] = binascii.hexlify(h.digest()).decode()
    res["data"] = head


def _pattern(n):
    return bytes((i * 811 + 7) & 0xFF for i in range(256)) * (n // 256) + bytes(
        (i * 811 + 7) & 0xFF for i in range(n % 256))


# --- apps -----------------------------------------------------------------------------------------
def server(port, cert, conns=1, ca=(), verify=None, ciphers=None, bufsize=1024, greeting=b"", send=0,
           timeout=30, peers=False, alpn=None, nodelay=False, write=_write, failed=_close):
    """TLS echo server: serve `conns` connections in turn, each until EOF or an error, and keep
    serving after a failed one. greeting: bytes sent right after the handshake; send: that many
    pattern bytes sent instead of echoing (then close). write(sock, data) echoes and
    failed(conn, res) ends a connection whose handshake failed: the broken twins
    (hil_tls_shortwrite, hil_tls_leaky, hil_tls_fragile) replace them."""
    ctx = context(True, cert, ca, verify, ciphers, peers, alpn)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(_addr("0.0.0.0", port))
    ls.listen(2)
    ls.settimeout(timeout)
    print("READY", port)
    results = []
    try:
        for i in range(conns):
            c = ls.accept()[0]
            print("ACCEPTED", i)
            c.settimeout(timeout)
            if nodelay:
                _nodelay(c)
            res = {"i": i}
            del _peers[:]
            try:
                s = ctx.wrap_socket(c, server_side=True)
            except Exception as e:
                res["stage"] = "handshake"
                res["error"] = error(e)
                failed(c, res)
            else:
                res["cipher"] = cipher(s)
                if alpn:
                    res["alpn"] = s.selected_alpn_protocol()
                try:
                    if greeting:
                        s.write(greeting)
                    if send:
                        s.write(_pattern(send))
                        res["n"] = 0
                        res["end"] = "sent"
                    else:
                        _pump(s, res, bufsize, None, True, write)
                except Exception as e:
                    res["stage"] = "data"
                    res["error"] = error(e)
                s.close()
            if peers:
                res["peers"] = list(_peers)
            print("CONN", repr(res))
            results.append(res)
    finally:
        ls.close()
    print("DONE")
    return results


def client(host, port, hostname=HOSTNAME, ca=("root",), verify=CERT_REQUIRED, cert=None, ciphers=None,
           send=b"", send_pattern=0, expect=None, bufsize=1024, timeout=30, peers=False, alpn=None, conns=1,
           nodelay=False):
    """TLS client: connect, handshake (verifying the server against `ca` for `hostname`), send
    `send` (or `send_pattern` pattern bytes), then read until `expect` bytes or EOF. Prints
    CONNECTING before each TCP connect. With conns=2 the second connection offers the first one's
    session for resumption where the port has sessions (MicroPython has none)."""
    ctx = context(False, cert, ca, verify, ciphers, peers, alpn)
    session = None
    results = []
    for _ in range(conns):
        res = {}
        del _peers[:]
        s = socket.socket()
        s.settimeout(timeout)
        try:
            print("CONNECTING")
            s.connect(_addr(host, port))
            if nodelay:
                _nodelay(s)
            kwargs = {"server_hostname": hostname}
            if session is not None:
                kwargs["session"] = session
            try:
                ss = ctx.wrap_socket(s, **kwargs)
            except Exception as e:
                res["stage"] = "handshake"
                res["error"] = error(e)
            else:
                res["cipher"] = cipher(ss)
                session = getattr(ss, "session", None)
                if alpn:
                    res["alpn"] = ss.selected_alpn_protocol()
                try:
                    if send:
                        ss.write(send)
                    if send_pattern:
                        ss.write(_pattern(send_pattern))
                    _pump(ss, res, bufsize, expect, False)
                except Exception as e:
                    res["stage"] = "data"
                    res["error"] = error(e)
                ss.close()
        finally:
            s.close()
            if peers:
                res["peers"] = list(_peers)
        print("RESULT", repr(res))
        results.append(res)
    return results[0] if conns == 1 else results
