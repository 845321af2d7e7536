"""A real device's serial port: a device path, rfc2217://, a labgrid place or a lab device."""

from __future__ import annotations

import os

from harness.config.boards import BoardSpec, SerialLaunch
from harness.config.ports import parse_port
from harness.io import open_port
from harness.io.labgrid import LabgridPlace
from harness.io.transport import PortError, SerialTransport, Transport
from harness.io.usb import resolve_lab_port
from harness.launch.base import LaunchContext, Launcher, _pacing
from harness.launch.registry import register


@register("serial")
class SerialLauncher(Launcher):
    """A real device's serial port: a device path, ``rfc2217://HOST:PORT`` (reconnects when the TCP
    link drops), a labgrid place (``labgrid://COORDINATOR/PLACE``: acquired on start, released on
    stop) or a lab device (``lab:NAME``: found by its USB attributes, see harness/config/labs.py)."""

    def __init__(self, spec: BoardSpec, ctx: LaunchContext | None = None) -> None:
        assert isinstance(spec.launch, SerialLaunch), spec.launch  # the registry hands only serial boards here
        self.spec, self.launch = spec, spec.launch
        self.transport: SerialTransport | None = None
        self.port = spec.launch.port  # what was opened, once resolved
        self.ref = parse_port(self.port)
        self.lease = None  # a held labgrid place

    def start(self) -> Transport:
        ref = parse_port(self.launch.port)
        if ref.scheme == "lab":
            ref = resolve_lab_port(ref)
        if ref.scheme == "labgrid":
            self.lease = LabgridPlace.from_port(ref)
            ref = parse_port(self.lease.acquire())
        self.port, self.ref = ref.text, ref
        try:
            try:
                self.transport = open_port(ref, self.spec.console.baudrate,
                                           reconnect_timeout=self.spec.console.boot_timeout, **_pacing(self.spec))
            except PortError as exc:  # name the file and key to fix
                raise exc.located(str(self.spec.path), "check the cable or fix key 'launch.port'") from None
            # A board left in raw REPL by an earlier session answers no poke: Ctrl-B leaves it
            # (at the friendly prompt it just reprints the banner).
            self.transport.write(b"\x02")
        except BaseException:
            if self.transport is not None:
                self.transport.close()
            self.stop()
            raise
        return self.transport

    def alive(self) -> bool:
        return self.ref.is_network or (self.transport is not None and os.path.exists(self.port))

    def death(self) -> str:
        return f"serial port {self.port} disappeared (unplugged?)"

    def stop(self) -> None:
        # the console closes the port; a labgrid place is given back
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.release()


