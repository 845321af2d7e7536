"""Serial ports found by what does not change when a device is replugged (USB vendor/product,
serial number, location), and ``lab:NAME`` port references resolved through the lab files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config.labs import DeviceSpec, find_labs, select_devices
from harness.config.ports import PortRef, parse_port
from harness.errors import InfrastructureError


# --- ports ------------------------------------------------------------------------------------------
def attached_ports() -> list[Any]:
    """Serial ports the OS lists (pyserial's list_ports: USB CDC/UART bridges, on-board UARTs)."""
    from serial.tools import list_ports

    return list(list_ports.comports())


def describe_port(port: Any) -> str:
    usb = f" {port.vid:04x}:{port.pid:04x}" if port.vid is not None and port.pid is not None else ""
    serial = f" serial={port.serial_number}" if port.serial_number else ""
    return f"{port.device}{usb}{serial}"


def resolve_port(device: DeviceSpec, ports: list[Any] | None = None) -> str:
    """The port to open: the explicit one, or the single attached port matching the USB attributes."""
    if device.port:
        return device.port
    assert device.match is not None
    ports = attached_ports() if ports is None else ports
    found = [p for p in ports if device.match.matches(p)]
    if len(found) == 1:
        return found[0].device
    usb = [describe_port(p) for p in ports if p.vid is not None]
    if not found:
        raise InfrastructureError(
            f"{device.where}: no attached serial port matches {device.match.describe()} "
            f"(USB serial ports: {', '.join(usb) or 'none'}); plug it in or fix its 'match'"
        )
    raise InfrastructureError(
        f"{device.where}: {len(found)} ports match {device.match.describe()} "
        f"({', '.join(p.device for p in found)}); add match.serial or match.location to tell them apart"
    )


def resolve_lab_port(ref: PortRef, directory: Path | None = None) -> PortRef:
    """A target's ``port = "lab:NAME"`` (or ``lab:LAB/NAME``) -> the port that device is on."""
    labs = find_labs(ref.lab or None, directory)
    ((_, device),) = select_devices(labs, [ref.name])
    return parse_port(resolve_port(device))  # a labgrid:PLACE already carries its lab's coordinator


