"""The CAN link of a QEMU board: the guest's second serial port (ttyS1) carries the slcan line
discipline, so the guest has a real SocketCAN can0; QEMU maps that port to a TCP server on
127.0.0.1 and the host speaks python-can's slcan interface to it over pyserial's socket://."""

from __future__ import annotations

from dataclasses import dataclass

import can

from harness.errors import InfrastructureError
from harness.net.boardnet import free_port
from harness.net.canlog import RecordingBus
from harness.net.netns import NetNamespace
from harness.report.journal import Journal


@dataclass
class SlcanLink:
    port: int
    bitrate: int = 500000
    netns: NetNamespace | None = None  # where QEMU (and so this TCP port) lives, for tap boards
    journal: Journal | None = None  # the board's evidence journal: frames the host's buses carry go in (canlog.py)

    @classmethod
    def allocate(cls, bitrate: int, netns: NetNamespace | None = None) -> SlcanLink:
        return cls(port=free_port(), bitrate=bitrate, netns=netns)

    @property
    def channel(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def qemu_args(self) -> list[str]:
        # wait=off: the guest boots without a host peer; frames it sends before one connects are lost.
        return ["-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=off,nodelay=on"]

    def kernel_params(self) -> list[str]:
        return ["hil.can=1"]

    def bus(self, **kwargs) -> can.BusABC:
        """A python-can Bus on the board's CAN link (close it when done); its frames are journaled
        when the link has a journal."""
        def open_bus() -> can.BusABC:
            return can.Bus(interface="slcan", channel=self.channel, bitrate=self.bitrate, **kwargs)

        try:
            bus = self.netns.run(open_bus) if self.netns else open_bus()
            return RecordingBus(bus, self.journal) if self.journal is not None else bus
        except (can.CanError, OSError) as exc:
            raise InfrastructureError(f"CAN link {self.channel}: cannot open slcan bus: {exc}") from None
