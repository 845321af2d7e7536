"""The host's CAN hub (harness/net/canhub.py) joining several links into one bus, on python-can's
virtual interface (each link: the hub's end and the board's end of one virtual channel)."""

from __future__ import annotations

import uuid

import can
import pytest

from harness.net.canhub import CanHub


@pytest.fixture
def links():
    """name -> (hub end, board end) of a virtual link per node."""
    made = {}
    for name in ("a", "b", "c"):
        channel = f"hub-{name}-{uuid.uuid4().hex}"
        made[name] = (can.Bus(interface="virtual", channel=channel), can.Bus(interface="virtual", channel=channel))
    yield made
    for hub_end, board_end in made.values():
        hub_end.shutdown()
        board_end.shutdown()


def msg(ident: int, data: bytes = b"") -> can.Message:
    return can.Message(arbitration_id=ident, is_extended_id=False, data=data)


def received(bus: can.BusABC, count: int) -> list[tuple[int, bytes]]:
    out = []
    while len(out) < count and (m := bus.recv(2.0)) is not None:
        out.append((m.arbitration_id, bytes(m.data)))
    return out


def test_a_frame_from_one_node_reaches_every_other_node_and_the_host_but_not_its_sender(links):
    hub = CanHub({name: ends[0] for name, ends in links.items()})
    try:
        links["a"][1].send(msg(0x10, b"from a"))
        assert received(links["b"][1], 1) == [(0x10, b"from a")]
        assert received(links["c"][1], 1) == [(0x10, b"from a")]
        assert [(s.source, s.msg.arbitration_id) for s in hub.wait(1)] == [("a", 0x10)]
        assert links["a"][1].recv(0.2) is None  # no echo to the sender
    finally:
        hub.close()


def test_the_host_is_a_node_and_a_burst_keeps_its_order(links):
    hub = CanHub({name: ends[0] for name, ends in links.items()})
    try:
        hub.send(msg(0x42, b"host"))
        assert [received(links[n][1], 1) for n in "abc"] == [[(0x42, b"host")]] * 3
        for i in range(100):
            links["b"][1].send(msg(0x300, bytes([i])))
        assert [d[0] for _, d in received(links["c"][1], 100)] == list(range(100))
        seen = hub.wait(101)
        assert [s.source for s in seen] == ["host"] + ["b"] * 100
        assert [s.msg.data[0] for s in hub.wait(100, source="b")] == list(range(100))
    finally:
        hub.close()


def test_wait_gives_up_with_what_it_has(links):
    hub = CanHub({"a": links["a"][0]})
    try:
        assert hub.wait(1, timeout=0.1) == []
    finally:
        hub.close()
