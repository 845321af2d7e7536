"""One CAN bus for several boards, joined in the host: each board's CAN link (a python-can Bus on
its slcan line, see canlink.py) is a port of a hub that forwards every frame a board sends to
every other board, in the order the hub receives them, and shows it to the host, which is a
node too (``send`` reaches every board; ``frames`` is the bus as the host saw it).

What the hub cannot emulate (cases that depend on it must say so): there is no bit timing and no
arbitration. Frames sent at the same moment by two boards are ordered by when their slcan lines
delivered them to the host, not by identifier; a board never loses arbitration, never sees an
error frame or a missing ACK (its slcan peer, the host, acknowledges everything), and a sender does
not get its own frame back unless its controller loops it back locally."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import can


@dataclass(frozen=True)
class Seen:
    """A frame on the joined bus: who sent it ("host" or a node name) and the frame."""

    source: str
    msg: can.Message


class CanHub:
    def __init__(self, buses: dict[str, can.BusABC], poll: float = 0.02) -> None:
        self.buses = dict(buses)
        self.frames: list[Seen] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._send_locks = {name: threading.Lock() for name in self.buses}
        self._threads = [threading.Thread(target=self._pump, args=(name, poll), daemon=True, name=f"canhub-{name}")
                         for name in self.buses]
        for thread in self._threads:
            thread.start()

    def _pump(self, name: str, poll: float) -> None:
        bus = self.buses[name]
        while not self._stop.is_set():
            try:
                msg = bus.recv(poll)
            except (can.CanError, OSError, ValueError):
                if self._stop.is_set():
                    return
                time.sleep(poll)
                continue
            if msg is not None:
                self._forward(name, msg)

    def _forward(self, source: str, msg: can.Message) -> None:
        with self._changed:
            self.frames.append(Seen(source, msg))
            self._changed.notify_all()
        for name, bus in self.buses.items():
            if name != source:
                with self._send_locks[name]:
                    bus.send(_copy(msg))

    def send(self, msg: can.Message) -> None:
        """The host as a node: the frame goes to every board."""
        self._forward("host", msg)

    def wait(self, count: int, timeout: float = 10.0, source: str | None = None) -> list[Seen]:
        """Until ``count`` frames (from ``source``, if given) have crossed the hub; those frames."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                got = [s for s in self.frames if source is None or s.source == source]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._changed.wait(left)

    def clear(self) -> None:
        with self._lock:
            self.frames.clear()

    def close(self) -> None:
        """Stop forwarding (the buses are the caller's: they stay open)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(2)


def _copy(msg: can.Message) -> can.Message:
    return can.Message(arbitration_id=msg.arbitration_id, is_extended_id=msg.is_extended_id,
                       is_remote_frame=msg.is_remote_frame, dlc=msg.dlc, data=bytes(msg.data))
