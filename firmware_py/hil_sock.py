# Board-side roles of the BSD socket conformance suite (suites/sockets). MicroPython and CPython.
#
# Two-party protocol (the host is the other instance, as in MicroPython's multitests):
#   READY;        the role listens / is set up: the host may act
#   WAIT <word>;  barrier: the role blocks reading "<word>\n" from its stdin (the console), which
#                 the host writes once it has done its part (suites/sockets/conftest.py Role.signal)
#   RESULT <repr> the last line: what the role observed (errnos, byte counts, CRCs, orders)
# Roles never decide pass/fail: they report exact observations and the host asserts them.
import socket
import sys
import time

try:
    import select
except ImportError:  # pragma: no cover - every networked port has select
    select = None
try:
    from binascii import crc32
except ImportError:  # pragma: no cover
    from zlib import crc32

try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
except AttributeError:  # CPython

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b


# Constants MicroPython's socket module may not export (numeric values as on Linux / lwIP)
IPPROTO_TCP = 6
TCP_NODELAY = 1
SO_SNDBUF = 7
SO_RCVBUF = 8
EAGAIN = 11
BLOCK = 4097  # the bulk pattern is numbered blocks (see block()); off a power of two on purpose


# --- plumbing -----------------------------------------------------------------------------------
def addr(host, port):
    return socket.getaddrinfo(host, port)[0][-1]


def decode(a):
    """A socket address as (ip text, port), whatever form the port returns it in."""
    if isinstance(a, tuple):
        return (a[0], a[1])
    family, ip, port = socket.sockaddr(a)[:3]
    return (socket.inet_ntop(family, ip), port)


def ready():
    print("READY;")


def result(value):
    print("RESULT", repr(value))


def lan_state():
    """The board's network counters, for a failure message: the LAN chip's frames (received, dropped
    for want of lwIP buffers, bad, still waiting in the chip's RX FIFO), lwIP's TCP PCBs per state
    and the pools in use or that refused. Only mps2's network.LAN has these: None elsewhere."""
    try:
        import network

        lan = network.LAN()
    except (ImportError, AttributeError, OSError, TypeError):
        return None
    state = {}
    for key in ("rx_frames", "rx_dropped", "rx_errors", "rx_pending", "irqs", "tcp_states", "pools"):
        try:
            state[key] = lan.status(key)
        except (ValueError, TypeError, OSError):  # an older firmware without this key
            continue
    if "pools" in state:
        state["pools"] = {k: v for k, v in state["pools"].items() if v[0] or v[3] or k == "PBUF_POOL"}
    return state


def wait_host(word):
    """Barrier: block until the host writes the word on the console."""
    print(f"WAIT {word};")
    line = sys.stdin.readline().strip()
    if line != word:
        raise ValueError(f"barrier: expected {word!r} from the host, got {line!r}")


def attempt(fn):
    """('ok', value) or ('err', errno): exact outcomes for the host to compare."""
    try:
        return ("ok", fn())
    except OSError as e:
        return ("err", e.errno if hasattr(e, "errno") else e.args[0])


def listener(port, backlog=2, host="0.0.0.0"):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr(host, port))
    s.listen(backlog)
    return s


def udp(port=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if port is not None:
        s.bind(addr("0.0.0.0", port))
    return s


def accept_one(port, backlog=2):
    srv = listener(port, backlog)
    ready()
    c, peer = srv.accept()
    srv.close()
    return c, peer


def send_all(s, data):
    """Loop over partial sends (a blocking send may still send less than asked)."""
    view = memoryview(data)
    while view:
        n = s.send(view)
        view = view[n:]


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def block(k):
    """Block k of the bulk pattern: its number (4 bytes, big endian), then (i * 811) & 0xff."""
    b = bytearray(_BASE)
    b[0] = (k >> 24) & 0xFF
    b[1] = (k >> 16) & 0xFF
    b[2] = (k >> 8) & 0xFF
    b[3] = k & 0xFF
    return b


_BASE = bytes((i * 811) & 0xFF for i in range(BLOCK))


def pattern_chunks(total):
    k = 0
    while total > 0:
        b = block(k)
        if total < BLOCK:
            b = b[:total]
        yield b
        total -= len(b)
        k += 1


def pattern(total):
    """The first `total` bytes of the bulk pattern, in one buffer."""
    out = bytearray()
    for b in pattern_chunks(total):
        out += b
    return out


# --- TCP roles ----------------------------------------------------------------------------------
def accept_peer(port):
    """Accept one connection; report the peer address accept() gave and the first line."""
    c, peer = accept_one(port)
    data = recv_exact(c, 4)
    c.close()
    result((decode(peer), data))


def echo_client(host, port, sizes):
    """Connect, then for each size send a pattern piece and read the same bytes back."""
    s = socket.socket()
    s.settimeout(10)
    s.connect(addr(host, port))
    total, crc, mismatches = 0, 0, 0
    for i, n in enumerate(sizes):
        piece = bytes((j * 7 + i) & 0xFF for j in range(n))
        send_all(s, piece)
        back = recv_exact(s, n)
        mismatches += back != piece
        total += len(back)
        crc = crc32(back, crc)
    s.close()
    result((total, crc, mismatches))


def sink(port, bufsize=2048):
    """Accept one connection and read to EOF: (bytes, crc32, largest recv, recvs that returned data)."""
    c, _ = accept_one(port)
    total, crc, largest, recvs = 0, 0, 0, 0
    while True:
        d = c.recv(bufsize)
        if not d:
            break
        crc = crc32(d, crc)
        total += len(d)
        recvs += 1
        if len(d) > largest:
            largest = len(d)
    c.close()
    result((total, crc, largest, recvs))


def source(host, port, total):
    """Connect and send `total` bytes of the bulk pattern; report bytes sent and their crc32."""
    s = socket.socket()
    s.connect(addr(host, port))
    sent, crc = 0, 0
    for b in pattern_chunks(total):
        send_all(s, b)
        sent += len(b)
        crc = crc32(b, crc)
    s.close()
    result((sent, crc))


def partial_send(host, port, extra, sndbuf=4096, limit=64 << 20):
    """Non-blocking sends of the bulk pattern (a BLOCK at a time) into a small send buffer
    while the host does not read, until EAGAIN; every send may take only part of what it was
    given. Once the host reads (barrier DRAIN), send `extra` more bytes with poll(POLLOUT) and the
    same partial-send handling, then close. Reports (errno that stopped the fill, bytes accepted
    before it, partial sends, sends that returned an impossible count, bytes sent, crc32)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUF, sndbuf)
    s.connect(addr(host, port))
    s.setblocking(False)
    st = [0, 0, 0, 0, None]  # sent, crc, partials, bad, current view
    k = [0]

    def step():
        if not st[4]:
            st[4] = memoryview(block(k[0]))
            k[0] += 1
        view = st[4]
        n = s.send(view)  # raises EAGAIN when nothing fits
        if n < len(view):
            st[2] += 1
        if n <= 0 or n > len(view):
            st[3] += 1
        st[1] = crc32(view[:n], st[1])
        st[0] += n
        st[4] = view[n:]

    err = None
    while st[0] < limit:
        try:
            step()
        except OSError as e:
            err = e.errno
            break
    filled = st[0]
    wait_host("DRAIN")
    p = select.poll()
    p.register(s, select.POLLOUT)
    goal = filled + extra
    while st[0] < goal or st[4]:
        if not p.poll(10000):
            raise OSError(EAGAIN, "send buffer never drained")
        try:
            step()  # past the goal only the rest of the current block is sent
        except OSError as e:
            if e.errno != EAGAIN:
                raise
    s.setblocking(True)
    s.close()
    result((err, filled, st[2], st[3], st[0], st[1]))


def half_close_reply(port, reply_len):
    """The host sends and shuts down its write side: read to EOF, recv() three more times, then
    send a reply on the still-open direction and close."""
    c, _ = accept_one(port)
    got = bytearray()
    while True:
        d = c.recv(512)
        if not d:
            break
        got += d
    after = [c.recv(16), c.recv(16), c.recv(16)]
    sent = 0
    for b in pattern_chunks(reply_len):
        send_all(c, b)
        sent += len(b)
    c.close()
    result((len(got), crc32(got), after, sent))


def reset_reader(port):
    """Read the host's bytes, then report what recv/send do after the host resets the connection."""
    c, _ = accept_one(port)
    first = recv_exact(c, 3)
    wait_host("RESET")
    outcome = [attempt(lambda: c.recv(16)), attempt(lambda: c.recv(16)), attempt(lambda: c.send(b"x"))]
    c.close()
    result((first, outcome))


def connect_outcome(host, port, timeout=None):
    """Blocking connect (with an optional timeout): the outcome and the time it took, on the board."""
    s = socket.socket()
    if timeout is not None:
        s.settimeout(timeout)
    t0 = ticks_ms()
    out = attempt(lambda: s.connect(addr(host, port)))
    elapsed = ticks_diff(ticks_ms(), t0)
    s.close()
    result((out[0], out[1] if out[0] == "err" else None, elapsed))


def nb_connect(host, port, payload=b""):
    """Non-blocking connect: connect()'s errno, the poll events, then send/recv outcomes."""
    s = socket.socket()
    s.setblocking(False)
    first = attempt(lambda: s.connect(addr(host, port)))
    p = select.poll()
    p.register(s, select.POLLIN | select.POLLOUT)
    events = [ev for _, ev in p.poll(10000)]
    sends = [attempt(lambda: s.send(payload)), attempt(lambda: s.send(payload))]
    rec = attempt(lambda: s.recv(16))
    s.close()
    result((first, events, sends, rec))


def nb_recv(port):
    """Non-blocking recv with nothing queued -> EAGAIN; after the host sends, POLLIN and the data."""
    c, _ = accept_one(port)
    c.setblocking(False)
    early = attempt(lambda: c.recv(16))
    dontwait = attempt(lambda: c.recv(16, socket.MSG_DONTWAIT))
    wait_host("SEND")
    p = select.poll()
    p.register(c, select.POLLIN)
    events = [ev for _, ev in p.poll(10000)]
    data = recv_exact_nb(c, 4, p)
    c.close()
    result((early, dontwait, events, data))


def recv_exact_nb(c, n, p):
    out = bytearray()
    while len(out) < n and p.poll(10000):
        out += c.recv(n - len(out))
    return bytes(out)


def nb_accept(port):
    """Non-blocking accept with nobody connecting -> EAGAIN; after the host connects, POLLIN and a peer."""
    srv = listener(port)
    srv.setblocking(False)
    early = attempt(lambda: srv.accept())
    ready()
    p = select.poll()
    p.register(srv, select.POLLIN)
    events = [ev for _, ev in p.poll(10000)]
    c, _ = srv.accept()
    c.setblocking(True)
    data = recv_exact(c, 4)
    after = attempt(lambda: srv.accept())
    c.close()
    srv.close()
    result((early[1], events, data, after))


def recv_timeout(port, timeout, via="recv"):
    """recv (or read) with settimeout on a connection where nothing arrives: the errno, the time it
    took measured here, then proof the socket still works once the host sends."""
    c, _ = accept_one(port)
    c.settimeout(timeout)
    t0 = ticks_ms()
    out = attempt(lambda: c.read(16)) if via == "read" else attempt(lambda: c.recv(16))
    elapsed = ticks_diff(ticks_ms(), t0)
    c.settimeout(10)
    wait_host("SEND")
    later = recv_exact(c, 4)
    c.close()
    result((out, elapsed, later))


def accept_timeout(port, timeout):
    srv = listener(port)
    srv.settimeout(timeout)
    t0 = ticks_ms()
    out = attempt(lambda: srv.accept())
    elapsed = ticks_diff(ticks_ms(), t0)
    srv.close()
    result((out, elapsed))


def peek(port, want):
    """MSG_PEEK twice returns the same bytes without consuming them; recv then returns them."""
    c, _ = accept_one(port)
    p = select.poll()
    p.register(c, select.POLLIN)
    peeked = b""
    deadline = ticks_ms() + 10000
    while len(peeked) < want and ticks_diff(deadline, ticks_ms()) > 0:  # all `want` bytes queued?
        p.poll(1000)
        peeked = c.recv(want, socket.MSG_PEEK)
        if len(peeked) < want:
            time.sleep(0.01)
    first = c.recv(5, socket.MSG_PEEK)
    again = c.recv(5, socket.MSG_PEEK)
    whole = recv_exact(c, want)
    c.close()
    result((first, again, whole))


def fill():
    """Open TCP sockets until the stack refuses one: (the sockets, the errno that refused)."""
    socks = []
    while True:
        try:
            socks.append(socket.socket())
        except OSError as e:
            return socks, e.errno


def room():
    """How many more TCP sockets the stack would open now (all closed again): what an app's
    leaked connections use up (fds on Linux, TCP PCBs on lwIP) shows as less room."""
    socks, _ = fill()
    for s in socks:
        s.close()
    return len(socks)


def blocking_send(host, port, sizes):
    """Connect; for each size one blocking send() of that many pattern bytes: record the count it
    returned, then send the rest (so the host still gets the whole stream). Reports the counts."""
    s = socket.socket()
    s.connect(addr(host, port))
    counts = []
    data = pattern(sum(sizes))
    at = 0
    for n in sizes:
        piece = memoryview(data)[at : at + n]
        k = s.send(piece)
        counts.append(k)
        send_all(s, piece[k:])
        at += n
    s.close()
    result(counts)


def fd_limit(host, port, conns):
    """Open sockets until the board refuses one; free `conns` of them and make that many concurrent
    connections (echoing one byte each); one more socket is refused again; then close everything,
    count again (no leak) and prove a fresh connection works."""

    socks, err1 = fill()
    n1 = len(socks)
    for s in socks[-conns:]:
        s.close()
    del socks[-conns:]
    live = []
    for _ in range(conns):
        c = socket.socket()
        c.settimeout(10)
        c.connect(addr(host, port))
        live.append(c)
    for i, c in enumerate(live):
        c.send(bytes([i]))
    echoed = [recv_exact(c, 1)[0] for c in live]
    extra = attempt(socket.socket)
    if extra[0] == "ok":
        extra[1].close()
        extra = ("ok", None)
    for s in socks + live:
        s.close()
    socks = None
    # let the stack finish the closes (the peers' FINs): an embedded stack frees a connection's
    # resources only when it runs, and the test is about leaks, not about how fast that happens
    time.sleep(1)
    again, err2 = fill()
    n2 = len(again)
    for s in again:
        s.close()
    again = None
    c = socket.socket()
    c.settimeout(10)
    c.connect(addr(host, port))
    c.send(b"Z")
    final = recv_exact(c, 1)
    c.close()
    result((n1, err1, echoed, extra, n2, err2, final))


def backlog(port, depth):
    """Listen with a backlog and do not accept until the host has connected what it could; then
    accept everything queued (each peer sent its index) until EAGAIN."""
    srv = listener(port, depth)
    ready()
    wait_host("ACCEPT")
    srv.setblocking(False)
    got = []
    while True:
        try:
            c, _ = srv.accept()
        except OSError as e:
            end = e.errno
            break
        c.setblocking(True)
        c.settimeout(3)
        got.append(recv_exact(c, 1))
        c.close()
    srv.close()
    result((got, end))


def listen_then_close(port, backlog):
    """Listen; once the host has connected (barrier CLOSE), give the stack a second to queue the
    connections, then close the listener without accepting any of them."""
    srv = listener(port, backlog)
    ready()
    wait_host("CLOSE")
    time.sleep(1)
    srv.close()
    result(None)


def accepted(port):
    """accept_one, then say so: packet-level tests inject only into an accepted connection."""
    c, _ = accept_one(port)
    print("ACCEPTED;")
    c.settimeout(30)
    return c


def accept_read(port, n):
    c = accepted(port)
    data = recv_exact(c, n)
    c.close()
    result(data)


def accept_recv(port):
    c = accepted(port)
    out = attempt(lambda: c.recv(100))
    c.close()
    result(out)


def accept_send(port, n):
    """Send n bytes of the bulk pattern, then wait for the peer's 2-byte answer and close."""
    c = accepted(port)
    sent = 0
    for b in pattern_chunks(n):
        send_all(c, b)
        sent += len(b)
    answer = recv_exact(c, 2)
    c.close()
    result((sent, answer))


def accept_many(port, n):
    """Accept n connections one after another, closing each at once (connection setup rate)."""
    srv = listener(port, 16)
    ready()
    for _ in range(n):
        c, _ = srv.accept()
        c.close()
    srv.close()
    result(n)


def closed_socket_ops():
    """recv/send on a closed socket, recv on unconnected and listening sockets."""
    s = socket.socket()
    unconnected = [attempt(lambda: s.recv(1)), attempt(lambda: s.send(b"1"))]
    s.close()
    closed = [attempt(lambda: s.recv(1)), attempt(lambda: s.send(b"1"))]
    return unconnected, closed


# --- UDP roles ----------------------------------------------------------------------------------
def udp_receive(port, count, bufsize=2048, echo=False, paced=False, hold=False, timeout=10):
    """Receive `count` datagrams: (length, crc32, sender) each; optionally echo each to its sender.
    paced: print GOT; after each, so the host sends the next only then (queue depth out of play).
    hold: read nothing until the host says SENT (all datagrams wait in the socket's queue).
    A datagram that never comes ends the list early: the host sees which were lost."""
    s = udp(port)
    s.settimeout(timeout)
    ready()
    if hold:
        wait_host("SENT")
    got = []
    for _ in range(count):
        try:
            d, a = s.recvfrom(bufsize)
        except OSError:
            break
        got.append((len(d), crc32(d), decode(a)))
        if echo:
            s.sendto(d, a)
        if paced:
            print("GOT;")
    s.close()
    result(got)


def udp_truncate(port):
    """A short read of a long datagram returns its head and discards the rest."""
    s = udp(port)
    s.settimeout(10)
    ready()
    first = s.recv(16)
    print("GOT;")  # the host sends the second datagram only now: queue depth is another test's
    second = s.recv(100)
    s.close()
    result((first, second))


def udp_peek(port):
    s = udp(port)
    ready()
    p1 = s.recv(100, socket.MSG_PEEK)
    p2 = s.recv(100, socket.MSG_PEEK)
    d1 = s.recv(100)
    d2 = s.recv(100)
    s.close()
    result((p1, p2, d1, d2))


def udp_connected(port, host, hport, expect):
    """A connected UDP socket receives only from its peer: collect `expect` datagrams, then prove
    nothing else is queued."""
    s = udp(port)
    s.connect(addr(host, hport))
    s.settimeout(10)
    ready()
    got = []
    for _ in range(expect):
        got.append(s.recv(100))
        print("GOT;")
    s.setblocking(False)
    rest = attempt(lambda: s.recv(100))
    s.close()
    result((got, rest))


def udp_nonblocking(port):
    s = udp(port)
    s.setblocking(False)
    a = attempt(lambda: s.recv(16))
    s.setblocking(True)
    b = attempt(lambda: s.recv(16, socket.MSG_DONTWAIT))
    s.close()
    result((a, b))


def udp_burst_in(port, count, quiet_ms=1500):
    """Receive a burst until `count` arrived or nothing came for quiet_ms: the sequence numbers."""
    s = udp(port)
    p = select.poll()
    p.register(s, select.POLLIN)
    ready()
    seqs = []
    while len(seqs) < count and p.poll(quiet_ms if seqs else 15000):
        d = s.recv(2048)
        seqs.append((d[0] << 8) | d[1])
    s.close()
    result(seqs)


def udp_burst_out(host, hport, count, size=64):
    s = udp()
    a = addr(host, hport)
    pad = bytes(size - 2)
    sent = 0
    for i in range(count):
        try:
            s.sendto(bytes([i >> 8, i & 0xFF]) + pad, a)
            sent += 1
        except OSError:
            pass
    s.close()
    result(sent)


# --- poll roles ---------------------------------------------------------------------------------
def poll_timeouts(ms):
    """poll(0) and poll(ms) on a socket with nothing to report: empty results, and poll(ms) took at
    least ms on the board's clock."""
    s = udp(None)
    s.bind(addr("0.0.0.0", 0))
    p = select.poll()
    p.register(s, select.POLLIN)
    zero = p.poll(0)
    t0 = ticks_ms()
    waited = p.poll(ms)
    elapsed = ticks_diff(ticks_ms(), t0)
    s.close()
    return (len(zero), len(waited), elapsed)


def _numbered_connections(host, port, n):
    """n connections to the host, each saying its number (one byte) first."""
    socks = []
    for i in range(n):
        c = socket.socket()
        c.settimeout(10)
        c.connect(addr(host, port))
        c.send(bytes([i]))
        socks.append(c)
    return socks


def poll_many(host, port, n, want):
    """n connections to the host; the host writes on the ones in `want`: poll reports POLLIN on
    exactly those (mask exact), the rest stay quiet."""
    socks = _numbered_connections(host, port, n)
    p = select.poll()
    index = {}
    for i, c in enumerate(socks):
        p.register(c, select.POLLIN)
        index[id(c)] = i
    ready()
    seen = set()
    deadline = ticks_ms() + 15000
    while len(seen) < len(want) and ticks_diff(deadline, ticks_ms()) > 0:
        for obj, _ev in p.poll(1000):
            seen.add(index[id(obj)])
    lan = None if len(seen) == len(want) else lan_state()  # timed out: what the stack holds
    final = sorted((index[id(obj)], ev) for obj, ev in p.poll(0))
    for c in socks:
        c.close()
    result((final, lan))


def poll_late(host, port, n):
    """n connections; the host writes on the first, then (once the board prints SEEN;, still
    polling: that socket stays readable, so each poll returns at once) on the last. poll must
    report the last one too: a stack that only runs while the board waits never sees it."""
    socks = _numbered_connections(host, port, n)
    p = select.poll()
    for c in socks:
        p.register(c, select.POLLIN)
    ready()
    seen = []
    deadline = ticks_ms() + 15000
    while len(seen) < 2 and ticks_diff(deadline, ticks_ms()) > 0:
        for obj, _ev in p.poll(1000):
            i = socks.index(obj)
            if i not in seen:
                seen.append(i)
                if i == 0:
                    print("SEEN;")
    lan = None if len(seen) == 2 else lan_state()  # timed out: what the stack holds
    for c in socks:
        c.close()
    result((seen, lan))


def poll_out(host, port):
    """POLLOUT is set on a fresh connection, clears once the peer stops reading and the buffers
    fill, and comes back when the peer reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUF, 4096)
    s.connect(addr(host, port))
    s.setblocking(False)
    p = select.poll()
    p.register(s, select.POLLOUT)
    fresh = [ev for _, ev in p.poll(0)]
    chunk = bytes(8192)
    sent, full_err, full = 0, None, None
    for _ in range(10000):  # send until EAGAIN; repeat while buffers further along still drain
        try:
            sent += s.send(chunk)
            continue
        except OSError as e:
            full_err = e.errno
        full = [ev for _, ev in p.poll(0)]
        if not full:
            break
    wait_host("READ")
    back = [ev for _, ev in p.poll(10000)]
    s.close()
    result((fresh, full_err, full, back, sent > 0))


def poll_peer_close(port, how):
    """POLLIN-only registration; report poll events after the host's FIN ('close') or RST ('reset'),
    the recv outcome, and the events after that."""
    c, _ = accept_one(port)
    p = select.poll()
    p.register(c, select.POLLIN)
    before = [ev for _, ev in p.poll(0)]
    wait_host("CLOSED")
    ev1 = [ev for _, ev in p.poll(10000)]
    r = attempt(lambda: c.recv(16))
    ev2 = [ev for _, ev in p.poll(0)]
    c.close()
    result((before, ev1, r, ev2))


def poll_modify(host, port):
    """register/modify/unregister change what poll reports."""
    s = socket.socket()
    s.connect(addr(host, port))
    p = select.poll()
    p.register(s, select.POLLIN)
    a = [ev for _, ev in p.poll(0)]  # nothing to read yet
    p.modify(s, select.POLLOUT)
    b = [ev for _, ev in p.poll(0)]
    p.modify(s, select.POLLIN | select.POLLOUT)
    c = [ev for _, ev in p.poll(0)]
    p.unregister(s)
    d = p.poll(0)
    s.close()
    result((a, b, c, len(d)))


def poll_closed():
    """poll() on a socket that was closed after registering it."""
    s = udp(None)
    p = select.poll()
    p.register(s, select.POLLIN)
    s.close()
    return [ev for _, ev in p.poll(0)]


# --- name resolution ----------------------------------------------------------------------------
def gai(host, port, socktype=0):
    """getaddrinfo for a literal: (family, type, proto, decoded address) per entry."""
    out = []
    for family, type_, proto, _canon, a in socket.getaddrinfo(host, port, 0, socktype):
        out.append((family, type_, proto, decode(a)))
    return out


def loopback6(port, payload):
    """IPv6 on the board's own loopback: listen on ::1, connect, echo, report addresses."""
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(socket.getaddrinfo("::1", port)[0][-1])
    srv.listen(1)
    cl = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    cl.connect(socket.getaddrinfo("::1", port)[0][-1])
    c, peer = srv.accept()
    send_all(cl, payload)
    got = recv_exact(c, len(payload))
    send_all(c, bytes(reversed(got)))
    back = recv_exact(cl, len(payload))
    for x in (c, cl, srv):
        x.close()
    return (decode(peer)[0], got == payload, back)
