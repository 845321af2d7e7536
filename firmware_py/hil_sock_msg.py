# The board app the sockets suite examines (suites/sockets/test_msgparser.py, test_app.py), written
# the way real firmware gets it right. Each server is the kind of code a known bug lives in; a
# broken twin (firmware_py/hil_sock_<bug>.py: same interface, that one bug) proves the suite
# catches it. MicroPython and CPython.
#
# - serve(): a message server. TCP is a byte stream: a message may arrive split over several recv()
#   calls, and several messages may arrive in one. This parser buffers and frames properly (twin:
#   hil_sock_naive, one recv = one message).
# - file_server(): a download server. send() may take only part of a buffer: it loops (twin:
#   hil_sock_shortsend); it closes every connection it accepted (twin: hil_sock_noclose).
# - udp_echo(): echoes datagrams whole, up to the largest IPv4 carries (twin: hil_sock_udptrunc).
# - pool_at_limit(): a client that holds connections open and asks for sockets until the stack
#   refuses one: the refusal is reported, the held connections keep working (twin: hil_sock_evict,
#   which makes room by closing its oldest connection).
#
# Framings: "len": 2-byte big-endian length, then that many bytes; "line": bytes up to b"\n".
# For every message the server replies one line "<index> <length> <crc32 as 8 hex digits>\n".
# When the peer shuts its side down, the server prints RESULT (messages, bytes, leftover bytes).
import errno
import socket

try:
    from binascii import crc32
except ImportError:  # pragma: no cover
    from zlib import crc32
try:
    import select
except ImportError:  # pragma: no cover - every networked port has select
    select = None

import hil_sock

SOL_SOCKET = socket.SOL_SOCKET
SO_SNDBUF = 7  # Linux's and lwIP's value; MicroPython's socket modules do not export it
MAX_DATAGRAM = 65535  # the largest datagram IPv4 can carry, with headers


class Parser:
    """Incremental framing: feed() any slice of the stream, get back the messages it completed."""

    def __init__(self, framing):
        if framing not in ("len", "line"):
            raise ValueError("framing must be 'len' or 'line'")
        self.framing = framing
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if self.framing == "len":
                if len(self.buf) < 2:
                    break
                n = (self.buf[0] << 8) | self.buf[1]
                if len(self.buf) < 2 + n:
                    break
                out.append(bytes(self.buf[2 : 2 + n]))
                self.buf = self.buf[2 + n :]
            else:
                i = self.buf.find(b"\n")
                if i < 0:
                    break
                out.append(bytes(self.buf[:i]))
                self.buf = self.buf[i + 1 :]
        return out


def reply(index, msg):
    return f"{index} {len(msg)} {crc32(msg) & 0xFFFFFFFF:08x}\n".encode()


def serve(port, framing="len", trace=False, bufsize=512):
    """Serve one connection. trace: print "RX <bytes so far>;" after every recv(), so the host can
    wait until the board has consumed a prefix before sending the rest (a split it really saw)."""
    parser = Parser(framing)
    c, _ = hil_sock.accept_one(port)
    count = total = 0
    while True:
        data = c.recv(bufsize)
        if not data:
            break
        total += len(data)
        if trace:
            print(f"RX {total};")
        for msg in parser.feed(data):
            hil_sock.send_all(c, reply(count, msg))
            count += 1
    c.close()
    hil_sock.result((count, total, len(parser.buf)))


# --- the download server ------------------------------------------------------------------------
def read_request(c):
    """The request line b"<n>\n" (the peer sends nothing else before the reply)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        d = c.recv(16)
        if not d:
            break
        line += d
    return int(line)


class FileServer:
    """Each connection asks for b"<n>\n" and gets n bytes of the bulk pattern, built in one buffer
    as a file or a page would be, then the server closes the connection. blocking=False serves with
    a non-blocking socket and poll(), as an event loop does. sndbuf: a small send buffer where the
    stack honours SO_SNDBUF (Linux; modlwip prints a warning and keeps its TCP_SND_BUF)."""

    def __init__(self, blocking=True, sndbuf=None):
        self.blocking = blocking
        self.sndbuf = sndbuf
        self.partials = 0  # sends that took only part of what they were given

    def send(self, c, data):
        """Every byte out. send() may take only part of the buffer: on lwIP whenever it is larger
        than the free send space (blocking or not), on Linux when non-blocking or timed out."""
        view = memoryview(data)
        poller = None
        while view:
            try:
                n = c.send(view)
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    raise
                if poller is None:
                    poller = select.poll()
                    poller.register(c, select.POLLOUT)
                if not poller.poll(10000):
                    raise OSError(errno.ETIMEDOUT) from None
                continue
            if n < len(view):
                self.partials += 1
            view = view[n:]

    def finish(self, c):
        c.close()

    def run(self, port, count):
        srv = hil_sock.listener(port, 4)
        hil_sock.ready()
        for _ in range(count):
            c, _ = srv.accept()
            if self.sndbuf:
                c.setsockopt(SOL_SOCKET, SO_SNDBUF, self.sndbuf)
            c.settimeout(10)
            n = read_request(c)
            if not self.blocking:
                c.setblocking(False)
            self.send(c, hil_sock.pattern(n))
            self.finish(c)
        srv.close()
        hil_sock.result((count, self.partials))


def file_server(port, count=1, blocking=True, sndbuf=None):
    """Serve `count` connections in turn; RESULT (connections served, partial sends seen)."""
    FileServer(blocking, sndbuf).run(port, count)


# --- the UDP echo -------------------------------------------------------------------------------
def udp_echo(port, count):
    """Echo `count` datagrams to their senders, printing GOT; after each; RESULT their lengths
    (or the errno that ended the wait)."""
    s = hil_sock.udp(port)
    s.settimeout(10)
    hil_sock.ready()
    got = []
    for _ in range(count):
        try:
            d, a = s.recvfrom(MAX_DATAGRAM)
        except OSError as e:
            got.append(("err", e.errno))
            break
        s.sendto(d, a)
        got.append(len(d))
        print("GOT;")
    s.close()
    hil_sock.result(got)


# --- a client pool at the socket limit ------------------------------------------------------------
class Pool:
    """Connections an app holds open to one service (a broker, a logger), and spare sockets."""

    def __init__(self, host, port):
        self.addr = socket.getaddrinfo(host, port)[0][-1]
        self.held = []

    def new_socket(self):
        """A new socket, or OSError when the stack has none left (Linux: EMFILE at the fd limit;
        lwIP: ENOMEM when MEMP_NUM_TCP_PCB are in use)."""
        return socket.socket()

    def connect(self):
        c = self.new_socket()
        c.settimeout(10)
        c.connect(self.addr)
        self.held.append(c)


def echo_byte(c, i):
    c.send(bytes([i]))
    return hil_sock.recv_exact(c, 1)


def pool_at_limit(host, port, conns):
    """Hold `conns` connections to the host's echo, then open sockets until the stack refuses one
    and ask once more. RESULT (spare sockets opened, errno of the refusal, the second attempt's
    outcome, what each held connection echoes afterwards): a new socket at the limit must fail,
    never take the place of an established connection."""
    pool = Pool(host, port)
    for _ in range(conns):
        pool.connect()
    spare, err = [], None
    while True:
        try:
            spare.append(pool.new_socket())
        except OSError as e:
            err = e.errno
            break
    again = hil_sock.attempt(pool.new_socket)
    if again[0] == "ok":
        spare.append(again[1])
        again = ("ok", None)
    for s in spare:
        s.close()
    echoes = [hil_sock.attempt(lambda c=c, i=i: echo_byte(c, i)) for i, c in enumerate(pool.held)]
    for c in pool.held:
        c.close()
    hil_sock.result((len(spare), err, again, echoes))
