"""SlcanLink: a QEMU board's CAN link as QEMU and the guest are told about it (a TCP server on a
free loopback port, hil.can=1) and as the host opens it (python-can slcan over socket://)."""

from __future__ import annotations

import socket
import threading

import pytest

from harness.errors import InfrastructureError
from harness.net.canlink import SlcanLink


def test_allocate_takes_a_free_port_and_describes_both_ends():
    link = SlcanLink.allocate(250000)
    assert 1024 <= link.port <= 65535 and link.bitrate == 250000 and link.netns is None
    with socket.socket() as s:  # the port is free right now: QEMU can bind it
        s.bind(("127.0.0.1", link.port))
    assert link.channel == f"socket://127.0.0.1:{link.port}"
    assert link.qemu_args() == ["-serial", f"tcp:127.0.0.1:{link.port},server=on,wait=off,nodelay=on"]
    assert link.kernel_params() == ["hil.can=1"]


def test_bus_speaks_slcan_at_the_link_bitrate():
    """What the guest's slcan line discipline hears when the host opens the link."""
    server = socket.create_server(("127.0.0.1", 0))
    heard, opened = bytearray(), threading.Event()

    def listen() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(3)
            try:
                while data := conn.recv(100):  # until the host closes the bus
                    heard.extend(data)
                    conn.sendall(b"\r" * data.count(b"\r"))  # ack every command
                    if b"O\r" in heard:
                        opened.set()
            except (BrokenPipeError, ConnectionResetError):  # the host closed the bus mid-answer (its close command)
                pass

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    link = SlcanLink(port=server.getsockname()[1], bitrate=250000)
    bus = link.bus(sleep_after_open=0)  # python-can waits 2 s for a USB adapter by default
    try:
        assert opened.wait(3)
        assert b"S5\r" in heard and heard.index(b"S5\r") < heard.index(b"O\r")  # S5: 250 kbit/s, then open
    finally:
        bus.shutdown()
        server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_bus_on_a_port_nobody_listens_on_is_one_line():
    link = SlcanLink(port=closed_port())
    with pytest.raises(InfrastructureError) as info:
        link.bus()
    message = str(info.value)
    assert message.startswith(f"CAN link socket://127.0.0.1:{link.port}: cannot open slcan bus: ")
    assert "\n" not in message


def test_bus_is_opened_inside_the_namespace_of_a_tap_board():
    entered = []

    class FakeNamespace:
        def run(self, fn):
            entered.append(fn)
            return fn()

    link = SlcanLink(port=closed_port(), netns=FakeNamespace())  # type: ignore[arg-type]
    with pytest.raises(InfrastructureError, match="cannot open slcan bus"):
        link.bus()
    assert len(entered) == 1  # the open went through netns.run, where QEMU's port lives
