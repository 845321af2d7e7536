"""select.poll conformance: which events, on which sockets, when; timeouts 0 and N; many sockets.
Event masks are Linux's values (POLLIN 1, POLLOUT 4, POLLERR 8, POLLHUP 16, POLLNVAL 32)."""

from __future__ import annotations

import socket
import struct

import pytest
from peerlib import recv_exact

pytestmark = pytest.mark.requires("net")

POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 1, 4, 8, 16, 32


def test_poll_constants_have_the_standard_values(dut):
    assert dut.eval("[getattr(__import__('select'), n) for n in ('POLLIN', 'POLLOUT', 'POLLERR', 'POLLHUP')]") == [
        POLLIN,
        POLLOUT,
        POLLERR,
        POLLHUP,
    ]


def test_timeout_zero_returns_nothing_and_timeout_n_waits_at_least_n(peer):
    zero, waited, elapsed = peer.eval("poll_timeouts(400)")
    assert (zero, waited) == (0, 0)
    assert elapsed >= 400  # on the board's clock


def accept_numbered(listener, n: int) -> dict:
    """The board's n connections (hil_sock._numbered_connections) by the number each sent first."""
    conns = {}
    for _ in range(n):
        c, _ = listener.accept()
        c.settimeout(10)
        conns[recv_exact(c, 1)[0]] = c
    return conns


def test_pollin_only_on_the_sockets_with_data(peer):
    echo = peer.listen(backlog=64)
    want = [0, 5, 17, 31]
    role = peer.start(f"poll_many({peer.host_ip!r}, {echo.getsockname()[1]}, 32, {want})")
    conns = accept_numbered(echo, 32)
    role.ready()
    for i in want:
        conns[i].sendall(b"!")
    final, lan = role.result()
    # lan: the board's LAN and lwIP counters when its poll loop timed out (None if it did not)
    assert final == [(i, POLLIN) for i in want], f"poll reported {final}; board network state: {lan}"
    for c in conns.values():
        c.close()


def test_pollin_on_a_socket_whose_data_comes_while_another_is_ready(peer):
    """The board polls in a loop that never waits (socket 0 stays readable, so every poll returns
    at once); data the host sends on another socket meanwhile must be reported too. An event loop
    with one busy connection must not go deaf to the rest."""
    echo = peer.listen(backlog=16)
    role = peer.start(f"poll_late({peer.host_ip!r}, {echo.getsockname()[1]}, 4)")
    conns = accept_numbered(echo, 4)
    role.ready()
    conns[0].sendall(b"!")
    role.wait("SEEN;")
    conns[3].sendall(b"!")
    seen, lan = role.result()
    assert seen == [0, 3], f"poll reported sockets {seen}; board network state: {lan}"
    for c in conns.values():
        c.close()


def test_pollout_clears_when_the_peer_stops_reading_and_returns(peer, errno):
    listener = peer.listen(rcvbuf=4096)
    role = peer.start(f"poll_out({peer.host_ip!r}, {listener.getsockname()[1]})")
    conn, _ = listener.accept()
    conn.settimeout(0.5)

    def drain() -> None:
        try:
            while conn.recv(65536):
                pass
        except TimeoutError:
            pass

    role.signal("READ", drain)
    fresh, full_err, full, back, sent = role.result()
    assert fresh == [POLLOUT]
    assert full_err == errno.EAGAIN and sent
    assert full == []  # buffers full: not writable
    assert back == [POLLOUT]


def test_peer_fin_gives_pollin_and_eof(peer):
    role = peer.start(f"poll_peer_close({peer.port()}, 'close')", ready=True)
    conn = peer.connect(peer.port())
    role.signal("CLOSED", conn.close)
    before, ev1, r, ev2 = role.result()
    assert before == []
    assert ev1 == [POLLIN]  # FIN: readable (recv will return EOF); no POLLHUP while we may still send
    assert r == ("ok", b"")
    assert ev2 == [POLLIN]


def test_peer_rst_gives_pollin_pollerr_pollhup_then_econnreset(peer, errno):
    role = peer.start(f"poll_peer_close({peer.port()}, 'reset')", ready=True)
    conn = peer.connect(peer.port())
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    role.signal("CLOSED", conn.close)
    before, ev1, r, ev2 = role.result()
    assert before == []
    assert ev1 == [POLLIN | POLLERR | POLLHUP]
    assert r == ("err", errno.ECONNRESET)
    assert ev2 == [POLLIN | POLLHUP]  # the error was consumed by recv; the hang-up stays


def test_register_modify_unregister(peer):
    listener = peer.listen()
    role = peer.start(f"poll_modify({peer.host_ip!r}, {listener.getsockname()[1]})")
    conn, _ = listener.accept()
    assert role.result() == ([], [POLLOUT], [POLLOUT], 0)
    conn.close()


def test_closed_socket_reports_pollnval(peer):
    assert peer.eval("poll_closed()") == [POLLNVAL]


def test_select_select_reports_a_readable_socket(dut, peer):
    port = peer.udp_port()
    role = peer.start_code(
        "import select, hil_sock\n"
        f"s = hil_sock.udp({port})\nhil_sock.ready()\n"
        "r, w, x = select.select([s], [], [], 10)\n"
        "hil_sock.result((len(r), len(w), len(x), s.recv(10)))"
    )
    role.ready()
    peer.udp().sendto(b"sel", peer.address(port, "udp"))
    assert role.result() == (1, 0, 0, b"sel")
