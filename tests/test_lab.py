"""Lab files: validation (one-line errors naming file, device, key and fix), finding devices by
USB attributes, the board a device becomes, and lab devices opened as serial boards for real
(a QEMU micro:bit's pty plays the attached device)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from harness.board import Board
from harness.config.boards import load_board
from harness.config.labs import board_spec, find_labs, load_lab, select_devices, write_target
from harness.config.ports import parse_port
from harness.errors import ConfigError, InfrastructureError
from harness.io.usb import resolve_lab_port, resolve_port
from harness.testing.emulated import EmulatedDevice
from tests.conftest import REPO
from tests.conftest import write_target as write_board_file

MICROBIT_CONSOLE = "console = { write_chunk = 16, write_gap_ms = 4, raw_paste = false }"


def usb_port(device: str, vid: int | None, pid: int | None, serial: str | None = None,
             location: str | None = None) -> ListPortInfo:  # fmt: skip
    """pyserial's own port record, filled in as list_ports fills it for a USB CDC device."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number, info.location = vid, pid, serial, location
    info.description = "test port"
    return info


def lab_file(directory: Path, body: str, name: str = "lab-t") -> Path:
    path = directory / f"{name}.toml"
    path.write_text('[lab]\nname = "t"\n' + body)
    return path


def test_example_lab_file_is_valid_and_complete():
    (lab,) = find_labs("example", REPO / "targets")
    by_name = {d.name: d for d in lab.devices}
    assert set(by_name) == {"pico-1", "esp32-1", "microbit-1", "remote-pico", "team-pico"}
    pico = by_name["pico-1"]
    assert (pico.match.vid, pico.match.pid, pico.match.serial) == (0x2E8A, 0x0005, "E6614103E7452D2F")
    assert pico.flasher == "uf2" and pico.firmware == (REPO / "targets/firmware/RPI_PICO-v1.25.0.uf2").resolve()
    esp = by_name["esp32-1"]
    assert esp.match.location == "1-1.2" and esp.esptool["offset"] == "0x1000"
    assert (esp.can.interface, esp.can.bitrate) == ("slcan", 500000) and esp.capabilities["can"] is True
    assert by_name["microbit-1"].console == {"write_chunk": 16, "write_gap_ms": 4, "raw_paste": False}
    assert by_name["remote-pico"].port == "rfc2217://127.0.0.1:4001"
    # labgrid:PLACE takes the lab's coordinator
    assert by_name["team-pico"].port == "labgrid://127.0.0.1:20408/pico-7"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('[[device]]\nname = "a"\nport = "/dev/x"\ncolour = "red"\n',
         "device 'a': unknown key 'colour' (known: board, can,"),
        ('[[device]]\nname = "a"\nmatch = { vid = "2e8a", product = "x" }\n',
         "device 'a': unknown key 'match.product' (known: location, pid, serial, vid)"),
        ('[[device]]\nname = "a"\nmatch = { vid = "zz" }\n',
         "device 'a': key 'match.vid' is 'zz'; write the USB id in hex"),
        ('[[device]]\nname = "a"\nmatch = { vid = 70000 }\n', "key 'match.vid' is 70000; a USB id is 0000..ffff"),
        ('[[device]]\nname = "a"\nmatch = { vid = "2e8a" }\nport = "/dev/x"\n',
         "device 'a': has both 'match' and 'port'"),
        ('[[device]]\nname = "a"\n', "device 'a': needs 'match' (USB attributes"),
        ('[[device]]\nport = "/dev/x"\n', "[[device]] #1: key 'name' must be a name"),
        ('[[device]]\nname = "lab1"\nport = "/dev/x"\n', "names starting with 'lab' are lab files"),
        ('[[device]]\nname = "a"\nport = "COM3"\n',
         "device 'a': key 'port': 'COM3' is not a port reference; use a device path (/dev/ttyACM0), rfc2217://HOST:PORT"),
        ('[[device]]\nname = "a"\nport = "rfc2217://host"\n', "is not an RFC 2217 URL; write it as rfc2217://HOST:PORT"),
        ('[[device]]\nname = "a"\nport = "labgrid://h:1/"\n', "is not a labgrid place; write labgrid://HOST:PORT/PLACE"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nflasher = "dfu"\n',
         "key 'flasher' is 'dfu'; use one of fs, esptool, uf2, microbit_hex, none"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nflasher = "uf2"\n', "flasher 'uf2' needs key 'firmware'"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nfiles = []\n', "flasher 'fs' copies 'files', but the list is empty"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nchunk = 100000\n', "key 'chunk' is 100000; use 16..4096 bytes"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\ncapabilities = { wifi = true }\n',
         "device 'a': unknown key 'capabilities.wifi'"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nconsole = { boot_timeout = "slow" }\n',
         "key 'console.boot_timeout' must be float, got str 'slow'"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\ncan = { interface = "nosuchbus", channel = "c" }\n',
         "key 'can.interface' is 'nosuchbus'; use a python-can interface (e.g. socketcan"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\ncan = { interface = "socketcan" }\n',
         "key 'can.channel' is required"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nesptool = { chip = "esp32" }\n',
         "key 'esptool' is only used with flasher = \"esptool\""),
        ('[[device]]\nname = "a"\nport = "/dev/x"\n[[device]]\nname = "a"\nport = "/dev/y"\n',
         "device name 'a' is used twice"),
        ('[device]\nname = "a"\nport = "/dev/x"\n', "write [[device]], not [device]"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nboard = "nosuch"\n',
         "device 'a': key 'board' is 'nosuch' but there is no"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nboard = "emu"\n',
         "key 'board' is 'emu', a qemu board; use \"generic\" or a target whose [launch].kind is \"serial\""),
        ('[bench]\n', "unknown table [bench] (known: [lab], [[device]])"),
    ],
)  # fmt: skip
def test_lab_file_mistakes_are_one_line_errors(tmp_path, body, fragment):
    write_board_file(tmp_path, "emu", '[launch]\nkind = "qemu"\nmachine = "microbit"\n')
    path = lab_file(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_lab(path)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(str(path)) and "\n" not in message


def test_bad_toml_and_unknown_lab_names(tmp_path):
    bad = tmp_path / "lab-bad.toml"
    bad.write_text("[lab\n")
    with pytest.raises(ConfigError, match=r"lab-bad.toml: not valid TOML"):
        load_lab(bad)
    with pytest.raises(ConfigError, match=r"no lab named 'nope' in .* \(lab files: lab-bad\)"):
        find_labs("nope", tmp_path)
    with pytest.raises(ConfigError, match=r"no device named 'zz' \(devices: none\)"):
        select_devices([], ["zz"])


def test_device_on_a_serial_target_takes_its_console_settings(tmp_path):
    write_board_file(tmp_path, "uart_board", '[launch]\nkind = "serial"\nport = "/dev/ttyX"\n'
                     "[console]\nwrite_chunk = 16\nboot_timeout = 7\n[capabilities]\nfs = true\n")  # fmt: skip
    lab = load_lab(lab_file(tmp_path, '[[device]]\nname = "d1"\nboard = "uart_board"\nport = "/dev/ttyUSB3"\n'
                                     "console = { write_gap_ms = 3 }\ncapabilities = { net = true }\n"))  # fmt: skip
    spec = board_spec(lab.devices[0], "/dev/ttyUSB3")
    assert (spec.name, spec.launch.kind, spec.launch.port) == ("d1", "serial", "/dev/ttyUSB3")
    assert (spec.console.write_chunk, spec.console.write_gap_ms, spec.console.boot_timeout) == (16, 3, 7)
    assert spec.capabilities.fs and spec.capabilities.net and not spec.capabilities.tls
    # what `hil smoke` hands to pytest --targets: loads back as the same board
    back = load_board(write_target(spec, tmp_path / "out"))
    assert dataclasses.replace(back, path=spec.path) == spec


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


@pytest.fixture
def microbit_device(tmp_path):
    with EmulatedDevice("microbit", log_dir=tmp_path / "emulator") as device:
        yield device


def test_target_with_a_lab_port_opens_the_lab_device(no_leftovers, microbit_device, tmp_path, monkeypatch):
    """A board target whose port is "lab:NAME" opens whatever port the lab resolves that device to."""
    lab_file(tmp_path, f'[[device]]\nname = "mb"\nport = "{microbit_device.port}"\n{MICROBIT_CONSOLE}\n')
    spec = load_board(write_board_file(tmp_path, "bench_mb", """
[launch]
kind = "serial"
port = "lab:mb"
[console]
write_chunk = 32
write_gap_ms = 2
raw_paste = false
"""))
    assert resolve_lab_port(parse_port("lab:t/mb"), tmp_path).text == microbit_device.port
    monkeypatch.setenv("HIL_TARGETS", str(tmp_path))
    with Board(spec, log_dir=tmp_path) as board:
        assert board.launcher.port == microbit_device.port
        assert board.exec("print(6 * 7)") == "42\n"
        assert board.facts.platform == "microbit"


def test_a_board_left_in_raw_repl_is_reached_again(no_leftovers, microbit_device, tmp_path):
    """Board sessions end with the board in raw REPL, where pokes get no answer: the next session on
    the same serial device must still find the prompt (and the banner)."""
    lab = load_lab(lab_file(tmp_path, f'[[device]]\nname = "mb"\nport = "{microbit_device.port}"\n'
                                      f"{MICROBIT_CONSOLE}\n"))  # fmt: skip
    spec = board_spec(lab.devices[0], microbit_device.port)
    for _ in range(2):
        with Board(spec, log_dir=tmp_path) as board:
            assert board.repl.in_raw
            assert board.facts.banner.startswith("MicroPython v1.9.2")
            assert board.exec("print('again')") == "again\n"


def test_only_qemu_boards_can_play_devices():
    with pytest.raises(ConfigError, match=r"an emulated device must be a QEMU board, not process"):
        EmulatedDevice("native").start()
