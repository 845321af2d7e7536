"""The host's view of a board's CAN bus: a python-can bus whose frames both ways go into the
board's journal, and a test's frames written and read back with python-can's own loggers."""

from __future__ import annotations

import uuid

import can
import pytest

from harness.net.canlink import SlcanLink
from harness.net.canlog import RecordingBus, read_log, stamped, write_log
from harness.report.journal import CAN, Journal


@pytest.fixture
def link():
    """Two ends of a python-can virtual channel: the host's (recorded) and the board's."""
    channel = f"hil-canlog-{uuid.uuid4().hex}"
    journal = Journal(cap=1 << 20)
    host = RecordingBus(can.Bus(interface="virtual", channel=channel), journal)
    board = can.Bus(interface="virtual", channel=channel)
    yield host, board, journal
    host.shutdown()
    board.shutdown()


def test_frames_both_ways_are_journaled_with_their_direction(link):
    host, board, journal = link
    host.send(can.Message(arbitration_id=0x77, data=b"\x01\x02", is_extended_id=False))
    assert board.recv(1.0).data == b"\x01\x02"
    board.send(can.Message(arbitration_id=0x1EEEEEEE, is_extended_id=True, is_remote_frame=True, dlc=3))
    got = host.recv(1.0)
    assert got is not None and got.is_remote_frame
    assert host.recv(0.01) is None  # nothing more: nothing journaled
    entries = journal.since(0).entries
    assert [e.source for e in entries] == [CAN, CAN]
    sent, received = (e.payload for e in entries)
    assert (sent.arbitration_id, sent.is_rx, bytes(sent.data)) == (0x77, False, b"\x01\x02")
    assert (received.arbitration_id, received.is_rx, received.is_remote_frame) == (0x1EEEEEEE, True, True)
    assert sent.timestamp == entries[0].t and received.timestamp == entries[1].t


def test_the_wrapper_is_the_bus_otherwise(link):
    host, _board, _journal = link
    assert host.channel_info == host.inner.channel_info  # what it lacks is the inner bus's
    host.set_filters([{"can_id": 0x10, "can_mask": 0x7FF}])
    with host as same:
        assert same is host


@pytest.mark.parametrize("suffix", [".asc", ".blf"])
def test_a_tests_frames_round_trip_through_pythons_can_loggers(tmp_path, suffix):
    frames = [
        stamped(can.Message(arbitration_id=0x77, data=bytes(range(8)), is_extended_id=False), rx=False, t=1000.0),
        stamped(can.Message(arbitration_id=0x78, data=bytes(range(1, 9)), is_extended_id=False), rx=True, t=1000.25),
        stamped(can.Message(arbitration_id=0x1EEEEEEE, is_extended_id=True, data=b"END"), rx=True, t=1000.5),
    ]
    path = tmp_path / "can" / f"t{suffix}"
    assert write_log(path, frames) == 3
    back = read_log(path)
    assert [(m.arbitration_id, m.is_extended_id, bytes(m.data), m.is_rx) for m in back] == [
        (f.arbitration_id, f.is_extended_id, bytes(f.data), f.is_rx) for f in frames
    ]
    assert back[2].timestamp - back[0].timestamp == pytest.approx(0.5, abs=1e-3)


def test_a_link_with_a_journal_hands_out_recording_buses(monkeypatch):
    opened = []

    class FakeSlcan:
        def shutdown(self) -> None:
            opened.append("shut")

    monkeypatch.setattr(can, "Bus", lambda **kwargs: opened.append(kwargs) or FakeSlcan())
    link = SlcanLink(port=1234)
    assert isinstance(link.bus(), FakeSlcan)  # no journal: the bus as python-can made it
    link.journal = Journal(cap=1 << 20)
    bus = link.bus(sleep_after_open=0)
    assert isinstance(bus, RecordingBus) and bus.journal is link.journal
    bus.shutdown()
    assert opened[-1] == "shut" and opened[1]["sleep_after_open"] == 0
