"""getaddrinfo on numeric literals (no DNS involved), inet_pton/ntop, and IPv6 where the board has it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.requires("net")

AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM = 2, 10, 1, 2


def test_getaddrinfo_numeric_ipv4(peer):
    entries = peer.eval("gai('10.1.2.3', 8080)")
    assert entries, "no address for a numeric literal"
    assert {(fam, addr) for fam, _, _, addr in entries} == {(AF_INET, ("10.1.2.3", 8080))}


def test_getaddrinfo_socktype_maps_to_protocol(peer):
    stream = peer.eval(f"gai('192.0.2.7', 80, {SOCK_STREAM})")
    dgram = peer.eval(f"gai('192.0.2.7', 53, {SOCK_DGRAM})")
    assert [(t, p) for _, t, p, _ in stream] == [(SOCK_STREAM, 6)]
    assert [(t, p) for _, t, p, _ in dgram] == [(SOCK_DGRAM, 17)]


def test_inet_pton_ntop_round_trip_ipv4(dut):
    packed, text = dut.eval(
        "(lambda s: (s.inet_pton(s.AF_INET, '192.168.77.10'), s.inet_ntop(s.AF_INET, b'\\x7f\\x00\\x00\\x01')))"
        "(__import__('socket'))"
    )
    assert (packed, text) == (bytes([192, 168, 77, 10]), "127.0.0.1")


def test_getaddrinfo_ipv4_literal_is_usable_for_a_connection(peer):
    """The address getaddrinfo returns for the host's literal is what connect() takes."""
    listener = peer.listen()
    role = peer.start(f"echo_client({peer.host_ip!r}, {listener.getsockname()[1]}, [])")
    conn, _ = listener.accept()
    assert conn.recv(1) == b""
    assert role.result() == (0, 0, 0)


@pytest.mark.requires("ipv6")
def test_getaddrinfo_numeric_ipv6(peer):
    entries = peer.eval("gai('2001:db8::17', 443)")
    assert {(fam, addr) for fam, _, _, addr in entries} == {(AF_INET6, ("2001:db8::17", 443))}
    loop = peer.eval(f"gai('::1', 80, {SOCK_STREAM})")
    assert [(f, t, p, a) for f, t, p, a in loop] == [(AF_INET6, SOCK_STREAM, 6, ("::1", 80))]


@pytest.mark.requires("ipv6")
def test_inet_pton_ntop_round_trip_ipv6(dut):
    packed, text = dut.eval(
        "(lambda s: (s.inet_pton(s.AF_INET6, '2001:db8::1'), s.inet_ntop(s.AF_INET6, bytes(15) + b'\\x01')))"
        "(__import__('socket'))"
    )
    assert (packed, text) == (bytes.fromhex("20010db8000000000000000000000001"), "::1")


@pytest.mark.requires("ipv6")
def test_ipv6_tcp_on_the_board_loopback(peer):
    assert peer.eval(f"loopback6({peer.port(5)}, b'hello over v6')") == ("::1", True, b"6v revo olleh")
