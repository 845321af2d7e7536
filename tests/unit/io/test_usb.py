"""Lab files: validation (one-line errors naming file, device, key and fix), finding devices by
USB attributes, the board a device becomes, and lab devices opened as serial boards for real
(a QEMU micro:bit's pty plays the attached device)."""

from __future__ import annotations

import pytest

from harness.config.labs import load_lab
from harness.errors import InfrastructureError
from harness.io.usb import resolve_port
from tests.conftest import usb_port
from tests.unit.config.test_labs import lab_file


def test_usb_attributes_find_the_port_and_mistakes_say_what_is_attached(tmp_path):
    lab = load_lab(lab_file(tmp_path, """
[[device]]
name = "pico"
match = { vid = "2e8a", pid = "0005", serial = "E661" }
[[device]]
name = "esp"
match = { vid = "10c4", pid = "ea60", location = "1-1.2" }
[[device]]
name = "any-cp210x"
match = { vid = "10c4" }
"""))
    pico, esp, anything = lab.devices
    ports = [
        usb_port("/dev/ttyACM0", 0x2E8A, 0x0005, "AAAA", "1-1.1:1.0"),
        usb_port("/dev/ttyACM1", 0x2E8A, 0x0005, "E661", "1-1.3:1.0"),
        usb_port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "1-1.2:1.0"),
        usb_port("/dev/ttyUSB1", 0x10C4, 0xEA60, "0001", "1-1.5:1.0"),
        usb_port("/dev/ttyS0", None, None),
    ]
    assert resolve_port(pico, ports) == "/dev/ttyACM1"  # by serial number, whatever ttyACMn it got
    assert resolve_port(esp, ports) == "/dev/ttyUSB0"  # by USB socket: same serials on both bridges
    with pytest.raises(InfrastructureError) as info:
        resolve_port(anything, ports)
    assert "any-cp210x': 2 ports match vid=10c4 (/dev/ttyUSB0, /dev/ttyUSB1); add match.serial or match.location" \
        in str(info.value)
    with pytest.raises(InfrastructureError) as info:
        resolve_port(pico, ports[2:])
    message = str(info.value)
    assert "device 'pico': no attached serial port matches vid=2e8a pid=0005 serial=E661" in message
    assert "(USB serial ports: /dev/ttyUSB0 10c4:ea60 serial=0001, /dev/ttyUSB1 10c4:ea60 serial=0001)" in message
    assert message.endswith("plug it in or fix its 'match'")


