"""The board app's send path, connection handling and datagram handling: the bugs real firmware
has that the stack-level cases cannot see. The board runs firmware_py/hil_sock_msg.py (or the
module HIL_SOCK_APP names: tests/integration/test_suite_sockets.py points this file at broken
twins, one bug each, to prove each is caught):

- a download server (``file_server``) whose replies are larger than any send buffer, read by a host
  that stops reading and then resumes: every send() that takes only part of its buffer must be
  looped over (lwIP returns short counts even when blocking; Linux when non-blocking);
- the same server must close every connection it accepted: the host sees EOF within a bound, and
  after 50 connections (more than lwIP's 40 TCP PCBs) the board can open as many sockets as before;
- a UDP echo (``udp_echo``) must return every datagram whole, at sizes off every power of two and
  up to what the stack reassembles.

Sizes are chosen off the boundaries (511, 513, 4097...) that off-by-one and off-by-a-block bugs
hide behind."""

from __future__ import annotations

import socket
import time

import pytest
from peerlib import pattern, recv_all, recv_exact

pytestmark = pytest.mark.requires("net")

STALL = 1.5  # s the host stops reading after its request: the board's send buffers fill meanwhile
EOF_BOUND = 5.0  # s within which the board's FIN must follow its reply
CONNECTIONS = 50  # sequential connections: more than lwIP's MEMP_NUM_TCP_PCB (40 in the mps2 build)


def download(peer, port: int, size: int, *, stall: float = 0.0, rcvbuf: int | None = None) -> bytes:
    """One request to the board's download server; everything until the board's EOF."""
    conn = peer.connect(port, timeout=EOF_BOUND + 10, rcvbuf=rcvbuf)
    conn.sendall(b"%d\n" % size)
    time.sleep(stall)
    return recv_all(conn)


@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "nonblocking"])
def test_download_survives_short_sends_while_the_host_stalls(peer, blocking):
    """Replies of 65,537 and 100,003 bytes, each handed to send() as one buffer, with a 4 KiB send
    buffer where the stack honours SO_SNDBUF and a 4 KiB host receive window, the host reading
    nothing for 1.5 s: the host must get every byte, in order."""
    sizes = [513, 65537, 100003]
    port = peer.port()
    call = f"file_server({port}, {len(sizes)}, blocking={blocking}, sndbuf=4096)"
    role = peer.start(call, module=peer.app, ready=True)
    for n in sizes:
        got = download(peer, port, n, stall=STALL, rcvbuf=4096)
        assert len(got) == n, f"{n}-byte reply: {len(got)} bytes arrived before EOF"
        assert got == pattern(n)
    served, partials = role.result()
    assert served == len(sizes)
    if not blocking:  # a non-blocking send into a full buffer is short on every stack: the case
        assert partials > 0  # really exercised the app's loop
    print(f"{partials} partial sends")


def test_board_closes_each_accepted_connection(peer):
    """After its reply the board closes: the host reads EOF (the board's FIN) within 5 s."""
    sizes = [1, 511, 4097]
    port = peer.port()
    role = peer.start(f"file_server({port}, {len(sizes)})", module=peer.app, ready=True)
    for n in sizes:
        conn = peer.connect(port, timeout=EOF_BOUND)
        conn.sendall(b"%d\n" % n)
        assert recv_exact(conn, n) == pattern(n)
        try:
            rest = conn.recv(1)
        except TimeoutError:
            pytest.fail(f"after its {n}-byte reply the board did not close the connection within {EOF_BOUND} s")
        assert rest == b"", f"after its {n}-byte reply the board sent {rest!r} instead of EOF"
        conn.close()
    assert role.result()[0] == len(sizes)


def test_open_socket_count_stays_flat_over_50_connections(peer):
    """50 sequential connections, each closed by the host once it has its reply (it does not wait
    for the board's FIN): the board must still accept past lwIP's TCP PCB limit, and afterwards
    have room for as many sockets as before. A connection the app keeps open holds a slot."""
    before = peer.eval("room()", timeout=120)
    port = peer.port()
    role = peer.start(f"file_server({port}, {CONNECTIONS})", module=peer.app, ready=True)
    for i in range(CONNECTIONS):
        n = 13 + 97 * i
        conn = peer.connect(port, timeout=10)
        conn.sendall(b"%d\n" % n)
        got = recv_exact(conn, n)
        assert got == pattern(n), f"connection {i + 1} of {CONNECTIONS}: {len(got)} of {n} bytes"
        conn.close()
    assert role.result()[0] == CONNECTIONS
    time.sleep(1)  # an embedded stack frees a closed connection's PCB only when it runs
    after = peer.eval("room()", timeout=120)
    assert after >= before, f"{before - after} sockets fewer can be opened after {CONNECTIONS} connections"


# Off every power of two; 1472 is the largest datagram in one Ethernet frame, 1473 the smallest
# fragmented one, 8193 six fragments (about what mps2_an385's LAN9118 RX FIFO takes back to back)
UDP_SIZES = [1, 511, 513, 1023, 1025, 1400, 1472, 1473, 4097, 8193]


def udp_echo(peer, size: int, timeout: float = 5.0) -> tuple[bytes, bytes | None]:
    """Send one datagram of `size` to the board app's echo: (what was sent, what came back or None)."""
    port = peer.udp_port()
    role = peer.start(f"udp_echo({port}, 1)", module=peer.app, ready=True)
    host = peer.udp(timeout=timeout)
    host.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    payload = bytes((i * 7 + size) & 0xFF for i in range(size))
    host.sendto(payload, peer.address(port, "udp"))
    try:
        back, src = host.recvfrom(1 << 17)
    except TimeoutError:
        return payload, None
    assert src == peer.address(port, "udp")
    assert role.result() == [len(back)]  # what the board app received, it echoed
    return payload, back


@pytest.mark.parametrize("size", UDP_SIZES)
def test_udp_echo_is_byte_exact(peer, size):
    payload, back = udp_echo(peer, size)
    assert back is not None, f"no echo of the {size}-byte datagram within 5 s"
    assert len(back) == size, f"the {size}-byte datagram came back as {len(back)} bytes"
    assert back == payload


def test_udp_echo_of_an_11_fragment_datagram(peer):
    """14,793 bytes: 11 IP fragments at an Ethernet MTU, one more than lwIP's default reassembly
    allows (IP_REASS_MAX_PBUFS 10). Linux reassembles up to 64 KiB."""
    payload, back = udp_echo(peer, 14793)
    assert back == payload


def test_udp_echo_of_the_largest_ipv4_datagram_and_one_past_is_emsgsize(peer, errno):
    """65,507 bytes (65,535 minus the IP and UDP headers) echo whole; the board's own sendto() of
    one byte more raises EMSGSIZE."""
    payload, back = udp_echo(peer, 65507)
    assert back == payload
    host = peer.udp()
    over = peer.start_code(
        f"import hil_sock\ns = hil_sock.udp()\na = hil_sock.addr({peer.host_ip!r}, {host.getsockname()[1]})\n"
        "r = hil_sock.attempt(lambda: s.sendto(bytes(65508), a))\ns.close()\nhil_sock.result(r)"
    ).result()
    assert over == ("err", errno.EMSGSIZE)


POOL = 8  # connections the app holds while it asks for sockets up to the stack's limit


def test_new_socket_at_the_limit_fails_and_held_connections_live_on(peer, errno):
    """The app holds 8 connections to the host's echo, opens sockets until the stack refuses one
    (Linux: EMFILE at the fd limit; lwIP: its TCP PCB pool) and asks once more: both refusals are
    the same error, and then each held connection still echoes. Neither the stack nor the app may
    make room by closing an established connection (tcp_alloc's reclaiming stops at TIME-WAIT,
    LAST-ACK and CLOSING PCBs and lower priorities)."""
    echo = peer.echo_server()
    role = peer.start(f"pool_at_limit({peer.host_ip!r}, {echo.port}, {POOL})", module=peer.app)
    spare, err, again, echoes = role.result(timeout=120)
    names = {v: k for k, v in vars(errno).items() if k.startswith("E")}
    assert err is not None, "the stack never refused a socket"
    assert again == ("err", err), f"at the limit ({names.get(err, err)}) a second socket() gave {again}"
    dead = [i for i, out in enumerate(echoes) if out != ("ok", bytes([i]))]
    assert not dead, (
        f"after {spare} spare sockets and {names.get(err, err)} at the limit, held connections "
        f"{dead} of {POOL} no longer echo: {[echoes[i] for i in dead]}"
    )
    assert len(echoes) == POOL and echo.accepted == POOL
