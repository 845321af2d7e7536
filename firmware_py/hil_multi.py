# Board-side roles of the multi-board suite (suites/multi): two boards talk to each other, the host
# only starts the roles and orders them (harness/pytest/multi.py). MicroPython (unix port, modlwip)
# and CPython. The protocol is hil_sock's: "READY;" once a server listens, "WAIT <word>;" barriers,
# one "RESULT <repr>" line with what the role observed; the host compares the two roles' results.
# Roles that already exist for host peers are used as they are: hil_sock.sink/source (bulk),
# hil_sock.half_close_reply, hil_sock.udp_receive/udp_burst_in/udp_burst_out, hil_sock_msg.serve,
# hil_tls.server/client.
import socket

import hil_sock
from hil_sock import addr, crc32, recv_exact, result, send_all

SHUT_WR = 1


def errno_name(e):
    """An OSError's errno by name from the board's errno module (numbers differ between C libraries)."""
    import errno

    n = e.errno if hasattr(e, "errno") else e.args[0]
    return getattr(errno, "errorcode", {}).get(n, n)


def attempt(fn):
    try:
        return ("ok", fn())
    except OSError as e:
        return ("err", errno_name(e))


def connect(host, port, timeout=10):
    s = socket.socket()
    s.settimeout(timeout)
    s.connect(addr(host, port))
    return s


def shutdown_wr(s):
    """Half-close: send FIN, keep receiving. MicroPython's socket has no shutdown() on any port;
    OSError names the missing method so the host can tell it from a stack's refusal."""
    if not hasattr(s, "shutdown"):
        raise OSError(95, "socket has no shutdown()")  # EOPNOTSUPP
    s.shutdown(SHUT_WR)


# --- TCP ----------------------------------------------------------------------------------------
def echo_server(port, conns=1, bufsize=1024, transform=None):
    """Echo every byte back until the peer closes, `conns` connections in turn. transform: what a
    buggy twin does to each chunk before echoing it (hil_multi_dropecho)."""
    srv = hil_sock.listener(port)
    hil_sock.ready()
    total = 0
    for _ in range(conns):
        c, _ = srv.accept()
        c.settimeout(30)
        while True:
            data = c.recv(bufsize)
            if not data:
                break
            total += len(data)
            send_all(c, transform(data) if transform else data)
        c.close()
    srv.close()
    result((conns, total))


def echo_client(host, port, sizes, timeout=10):
    """For each size send a pattern piece, read the same count back. Reports (bytes sent, bytes back,
    crc32 of what came back, pieces that came back different, how it ended: "ok" or the errno of
    the read that got no more)."""
    s = connect(host, port, timeout)
    sent = back = crc = bad = 0
    end = "ok"
    for i, n in enumerate(sizes):
        piece = bytes((j * 7 + i) & 0xFF for j in range(n))
        send_all(s, piece)
        sent += n
        got = bytearray()
        try:
            while len(got) < n:
                d = s.recv(n - len(got))
                if not d:
                    end = "eof"
                    break
                got += d
        except OSError as e:
            end = errno_name(e)
        back += len(got)
        crc = crc32(got, crc)
        bad += bytes(got) != piece
        if end != "ok":
            break
    s.close()
    result((sent, back, crc & 0xFFFFFFFF, bad, end))


def serve_source(port, total):
    """Accept one connection, send `total` bytes of the bulk pattern, close: (sent, crc32)."""
    c, _ = hil_sock.accept_one(port)
    sent = crc = 0
    for b in hil_sock.pattern_chunks(total):
        send_all(c, b)
        sent += len(b)
        crc = crc32(b, crc)
    c.close()
    result((sent, crc & 0xFFFFFFFF))


def connect_sink(host, port, bufsize=2048):
    """Connect and read to EOF: (bytes, crc32)."""
    s = connect(host, port, 30)
    total = crc = 0
    while True:
        d = s.recv(bufsize)
        if not d:
            break
        total += len(d)
        crc = crc32(d, crc)
    s.close()
    result((total, crc & 0xFFFFFFFF))


def send_bytes(host, port, data):
    """Connect, send data, close: the bytes sent."""
    s = connect(host, port)
    send_all(s, data)
    s.close()
    result(len(data))


def half_close_client(host, port, total):
    """Send `total` pattern bytes, half-close, then read the peer's reply to EOF:
    (sent, shutdown outcome, reply bytes, reply crc32)."""
    s = connect(host, port, 30)
    sent = 0
    for b in hil_sock.pattern_chunks(total):
        send_all(s, b)
        sent += len(b)
    shut = attempt(lambda: shutdown_wr(s))
    got = bytearray()
    if shut[0] == "ok":
        while True:
            d = s.recv(1024)
            if not d:
                break
            got += d
    s.close()
    result((sent, shut, len(got), crc32(got) & 0xFFFFFFFF))


def short_server(port, n):
    """Serve n short connections one after another: each sends one line, gets it back with the
    connection's number in front, and the board closes."""
    srv = hil_sock.listener(port, 4)
    hil_sock.ready()
    served = []
    for i in range(n):
        c, _ = srv.accept()
        c.settimeout(10)
        line = c.readline() if hasattr(c, "readline") else _readline(c)
        send_all(c, b"%d:" % i + line)
        c.close()
        served.append(line.strip())
    srv.close()
    result(served)


def _readline(c):
    out = bytearray()
    while not out.endswith(b"\n"):
        d = c.recv(1)
        if not d:
            break
        out += d
    return bytes(out)


def short_client(host, port, n):
    """n connections in a row, each: send "<i>\\n", read the answer to EOF, close."""
    answers = []
    for i in range(n):
        s = connect(host, port)
        send_all(s, b"%d\n" % i)
        got = bytearray()
        while True:
            d = s.recv(64)
            if not d:
                break
            got += d
        s.close()
        answers.append(bytes(got))
    result(answers)


def connect_refused(host, port):
    """Connect to a port nobody listens on: the outcome."""
    s = socket.socket()
    s.settimeout(10)
    out = attempt(lambda: s.connect(addr(host, port)))
    s.close()
    result(out)


def accept_close(port):
    """Accept one connection and close it at once, unread."""
    c, peer = hil_sock.accept_one(port)
    c.close()
    result(hil_sock.decode(peer)[0])


def connect_read(host, port):
    """Connect and read: what the first recv() and the one after it return once the peer closed."""
    s = connect(host, port)
    first = attempt(lambda: s.recv(16))
    second = attempt(lambda: s.recv(16))
    s.close()
    result((first, second))


def greet_server(port, greeting):
    """Accept one connection, send the greeting at once, read the peer's answer to EOF."""
    c, peer = hil_sock.accept_one(port)
    c.settimeout(30)
    send_all(c, greeting)
    got = bytearray()
    while True:
        d = c.recv(256)
        if not d:
            break
        got += d
    c.close()
    result((hil_sock.decode(peer)[0], bytes(got)))


def greet_client(host, port, n, answer):
    """Connect, read the server's n-byte greeting, answer, close."""
    s = connect(host, port)
    got = recv_exact(s, n)
    send_all(s, answer)
    s.close()
    result(got)


# --- UDP ----------------------------------------------------------------------------------------
def _datagram(n, seed):
    return bytes((j * 13 + seed) & 0xFF for j in range(n))


def udp_client(host, port, sizes, timeout=5):
    """Send one datagram per size to an echo (hil_sock.udp_receive(echo=True)) and wait for each to
    come back: (length, crc32) per echo, or the errno of the wait that got nothing."""
    s = hil_sock.udp()
    s.settimeout(timeout)
    a = addr(host, port)
    back = []
    for i, n in enumerate(sizes):
        s.sendto(_datagram(n, i), a)
        try:
            d = s.recv(4096)
        except OSError as e:
            back.append(("err", errno_name(e)))
            break
        back.append((len(d), crc32(d) & 0xFFFFFFFF))
    s.close()
    result(back)


# --- the message parser (hil_sock_msg.serve on the other board) ---------------------------------
def frame(msg, framing):
    if framing == "len":
        return bytes([len(msg) >> 8, len(msg) & 0xFF]) + msg
    return msg + b"\n"


def msg_client(host, port, framing, sizes, chunk, pause_ms=0):
    """Send messages of these sizes as one stream cut into `chunk`-byte sends `pause_ms` apart, then
    read one reply line per message and close. TCP_NODELAY makes each send its own segment on Linux;
    modlwip ignores it (it prints "lwip.setsockopt() not implemented") and Nagle's rule sends the
    first byte alone, then what queued up while its ACK was on the way."""
    import time

    stream = b"".join(frame(bytes((j + i) % 251 + 1 for j in range(n)) if framing == "len" else
                            bytes(65 + (j + i) % 26 for j in range(n)), framing) for i, n in enumerate(sizes))
    s = connect(host, port, 30)
    s.setsockopt(hil_sock.IPPROTO_TCP, hil_sock.TCP_NODELAY, 1)
    for k in range(0, len(stream), chunk):
        send_all(s, stream[k : k + chunk])
        if pause_ms:
            time.sleep(pause_ms / 1000)
    lines = []
    buf = bytearray()
    while len(lines) < len(sizes):
        d = s.recv(512)
        if not d:
            break
        buf += d
        while b"\n" in buf:
            i = buf.find(b"\n")
            lines.append(bytes(buf[:i]).decode())
            buf = buf[i + 1 :]
    s.close()
    result(lines)


# --- CAN (the boards' links joined into one bus by the host: harness/net/canhub.py) ------------
def can_responder(count, offset=0x100, filters=None, timeout_ms=20000):
    """Answer `count` requests: a frame with id X gets a reply with id X + offset and the request's
    data reversed. filters: hil_can.match() arguments (id, mask); frames they reject are never
    seen. Reports the requests answered: (id, data)."""
    import hil_can

    bus = hil_can.open()
    if filters is not None:
        bus.set_filters([hil_can.match(i, m) for i, m in filters])
    hil_sock.ready()
    seen = []
    for _ in range(count):
        f = bus.recv(timeout_ms)
        if f is None:
            break
        seen.append((f.id, bytes(f.data)))
        bus.send(f.id + offset, bytes(reversed(bytes(f.data))))
    bus.close()
    result(seen)


def can_requester(ids, offset=0x100, timeout_ms=10000):
    """For each id: send a request (data: its index and id), wait for the reply at id + offset.
    Reports (reply id, data) per request, or None for a request nobody answered."""
    import hil_can

    bus = hil_can.open()
    hil_sock.ready()
    got = []
    for i, ident in enumerate(ids):
        bus.send(ident, bytes([i, ident & 0xFF, ident >> 8]))
        f = bus.recv(timeout_ms)
        while f is not None and f.id != ident + offset:
            f = bus.recv(timeout_ms)  # not an answer to this request: skip it
        got.append(None if f is None else (f.id, bytes(f.data)))
    bus.close()
    result(got)


def can_listen(count, filters=None, timeout_ms=20000, idle_ms=3000):
    """Collect up to `count` frames (stop after idle_ms of silence once one arrived): (id, data)."""
    import hil_can

    bus = hil_can.open()
    if filters is not None:
        bus.set_filters([hil_can.match(i, m) for i, m in filters])
    hil_sock.ready()
    got = []
    first = bus.recv(timeout_ms)
    if first is not None:
        got.append((first.id, bytes(first.data)))
        got += [(f.id, bytes(f.data)) for f in hil_can.collect(bus, count - 1, timeout_ms, idle_ms)]
    bus.close()
    result(got)


def can_send(frames):
    """Send these (id, data) frames back to back: the number sent."""
    import hil_can

    bus = hil_can.open()
    hil_sock.ready()
    for ident, data in frames:
        bus.send(ident, data)
    bus.close()
    result(len(frames))
