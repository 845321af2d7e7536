"""The CAN frames that cross a board's bus, as the host saw them: a python-can Bus wrapped so every
frame it sends or receives goes into a bounded journal (harness/report/journal.py) at the moment
it crossed, and a test's slice of that journal written to a log file with python-can's own loggers
(``can.Logger``: .asc or .blf by the name's suffix; ``can.LogReader`` reads it back).

Frames the host never read (still queued in its interface when a test ends) are not in it: the
host's view of the bus is what its bus object delivered."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import can

from harness.report.journal import CAN, Journal

FRAME_BYTES = 80  # a frame's cost in the journal beyond its data (the Message object)


def stamped(msg: can.Message, rx: bool, t: float) -> can.Message:
    """A copy of ``msg`` as it crossed: direction from the host's side, wall-clock time ``t``."""
    return can.Message(
        timestamp=t, arbitration_id=msg.arbitration_id, is_extended_id=msg.is_extended_id,
        is_remote_frame=msg.is_remote_frame, is_error_frame=msg.is_error_frame, dlc=msg.dlc,
        data=b"" if msg.is_remote_frame else bytes(msg.data), is_fd=msg.is_fd, bitrate_switch=msg.bitrate_switch,
        error_state_indicator=msg.error_state_indicator, is_rx=rx, channel=msg.channel,
    )  # fmt: skip


class RecordingBus:
    """``inner`` as it is (anything it has is its own), with each frame it sends or delivers noted
    in ``journal`` (source "can", payload a stamped copy of the frame)."""

    def __init__(self, inner: can.BusABC, journal: Journal, clock=time.time) -> None:
        self.inner, self.journal, self.clock = inner, journal, clock

    def _note(self, msg: can.Message, rx: bool) -> None:
        t = self.clock()
        self.journal.add(CAN, stamped(msg, rx, t), size=FRAME_BYTES + len(msg.data or b""), t=t)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self.inner.send(msg, timeout)
        self._note(msg, rx=False)

    def recv(self, timeout: float | None = None) -> can.Message | None:
        msg = self.inner.recv(timeout)
        if msg is not None:
            self._note(msg, rx=True)
        return msg

    def __iter__(self):
        while True:
            msg = self.recv(timeout=1.0)
            if msg is not None:
                yield msg

    def __enter__(self) -> RecordingBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        self.inner.shutdown()

    def __getattr__(self, name: str):
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)


def write_log(path: Path, messages: Iterable[can.Message]) -> int:
    """Write frames to ``path`` with python-can's logger for its suffix (.asc, .blf, ...); the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    writer = can.Logger(str(path))
    try:
        for msg in messages:
            writer.on_message_received(msg)
            count += 1
    finally:
        writer.stop()
    return count


def read_log(path: Path) -> list[can.Message]:
    """The frames of a log file python-can reads (can.LogReader, by suffix)."""
    return list(can.LogReader(str(path)))
