"""Lab files: validation (one-line errors naming file, device, key and fix), finding devices by
USB attributes, the board a device becomes, and lab devices opened as serial boards for real
(a QEMU micro:bit's pty plays the attached device)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.labs import board_spec, find_labs, lab_boards, load_lab, select_devices
from harness.errors import ConfigError
from harness.lab.pool import board_tags, candidates
from tests.conftest import REPO
from tests.conftest import write_target as write_board_file


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
    assert esp.match.location == "1-1.2" and esp.esptool.offset == "0x1000"
    assert esp.can == {"interface": "slcan", "channel": "/dev/serial/by-id/usb-CANable-if00", "bitrate": 500000}
    assert esp.capabilities["can"] is True
    can = board_spec(esp, "/dev/ttyUSB0").can  # the lab device's can = {...} overrides the board's [can]
    assert (can.link, can.interface, can.channel, can.bitrate) == (
        "python_can", "slcan", "/dev/serial/by-id/usb-CANable-if00", 500000)
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
        ('[[device]]\nname = "a"\nport = "/dev/x"\nflasher = "esptool"\nfirmware = "f.bin"\n'
         'esptool = { baud = "fast" }\n',
         "key 'esptool.baud' must be int, got str 'fast'"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nflasher = "esptool"\nfirmware = "f.bin"\nesptool = { speed = 1 }\n',
         "unknown key 'esptool.speed' (known: baud, chip, erase, offset)"),
        ('[[device]]\nname = "a"\nport = "/dev/x"\nchunk = "big"\n', "key 'chunk' must be int, got str 'big'"),
        ('[[device]]\nname = "a"\nmatch = { serial = 42 }\n', "key 'match.serial' must be str | None, got int 42"),
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


def test_board_spec_applies_every_override(tmp_path):
    write_board_file(tmp_path, "uart_board", 'tags = ["uart"]\n[launch]\nkind = "serial"\nport = "/dev/ttyX"\n'
                     '[can]\nlink = "python_can"\ninterface = "socketcan"\nchannel = "can0"\nbitrate = 250000\n'
                     "[capabilities]\nfs = true\n")  # fmt: skip
    lab = load_lab(lab_file(tmp_path, '[[device]]\nname = "d1"\nboard = "uart_board"\nport = "/dev/ttyUSB3"\n'
                                     'description = "mine"\ntags = ["bench-a", "uart"]\n'
                                     'can = { channel = "can1" }\nconsole = { reset = "none" }\n'))  # fmt: skip
    spec = board_spec(lab.devices[0], "rfc2217://h:1")
    assert (spec.name, spec.description, spec.default, spec.image.builder) == ("d1", "mine", False, "none")
    assert (spec.launch.kind, spec.launch.port) == ("serial", "rfc2217://h:1")
    assert spec.tags == ["uart", "bench-a"]  # the board type's tags plus the device's
    assert (spec.can.link, spec.can.interface, spec.can.channel, spec.can.bitrate) == (
        "python_can", "socketcan", "can1", 250000)  # only the channel overridden
    assert spec.console.reset == "none" and spec.capabilities.fs and spec.capabilities.can
    assert lab.devices[0].base is not None and lab.devices[0].base.can.channel == "can0"  # the board type is untouched


def test_device_without_can_keeps_the_board_types_link(tmp_path):
    lab = load_lab(lab_file(tmp_path, '[[device]]\nname = "d1"\nport = "/dev/ttyUSB3"\n'))
    spec = board_spec(lab.devices[0], "/dev/ttyUSB3")
    assert spec.can.link == "none" and not spec.capabilities.can and spec.tags == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('tags = "x"\n', "key 'tags' must be list[str], got str 'x'"),
        ('tags = ["a b"]\n', "key 'tags' must be a list of names"),
        ('console = { reset = "hard" }\n', "key 'console.reset' is 'hard'; use \"soft\" or \"none\""),
        ('console = { chardev = 1 }\n', "key 'console.chardev' is 1; use \"pty\" or \"socket\""),
        ('can = { interface = "socketcan", channel = "can0", link = "none" }\n',
         "unknown key 'can.link' (known: bitrate, channel, interface)"),
        ('can = { interface = "socketcan", channel = "can0", bitrate = "fast" }\n', "key 'can.bitrate' must be int"),
        ('can = "can0"\n', "key 'can' must be a table like"),
        ('console = { boot_timeout = 0 }\n', "key 'console.boot_timeout' must be > 0"),
    ],
)  # fmt: skip
def test_override_mistakes_name_the_device(tmp_path, body, fragment):
    path = lab_file(tmp_path, '[[device]]\nname = "a"\nport = "/dev/x"\n' + body)
    with pytest.raises(ConfigError) as info:
        load_lab(path)
    message = str(info.value)
    assert message.startswith(f"{path}: device 'a': ") and fragment in message and "\n" not in message


def test_lab_boards_for_pytest_and_tag_selection(tmp_path):
    """pytest --hil-lab FILE --hil-port NAME=PORT: the lab's devices as boards, selectable by name or tag."""
    path = lab_file(tmp_path, '[[device]]\nname = "d1"\nmatch = { vid = "2e8a" }\ntags = ["rp2040"]\n'
                              '[[device]]\nname = "d2"\nport = "rfc2217://h:4001"\ntags = ["rp2040"]\n'
                              '[[device]]\nname = "d3"\nport = "/dev/ttyUSB9"\n')  # fmt: skip
    boards = lab_boards([path], {"d3": "/dev/ttyACM7"})
    assert {n: b.launch.port for n, b in boards.items()} == {
        "d1": "lab:t/d1", "d2": "rfc2217://h:4001", "d3": "/dev/ttyACM7"}
    assert "rp2040" in board_tags(boards["d1"])
    targets = tmp_path / "targets"
    targets.mkdir()
    write_board_file(targets, "emu", 'tags = ["rp2040"]\n[launch]\nkind = "qemu"\nmachine = "m"\n')
    assert [s.name for s in candidates("tag:rp2040", targets, boards)] == ["emu", "d1", "d2"]
    assert candidates("d3", targets, boards) == [boards["d3"]]
    with pytest.raises(ConfigError, match=r"--hil-port nope: no such device in .*\(devices: d1, d2, d3\)"):
        lab_boards([path], {"nope": "/dev/x"})


def test_lab_table_values_are_checked(tmp_path):
    path = tmp_path / "lab-typed.toml"
    path.write_text('[lab]\ncoordinator = 5\n')
    with pytest.raises(ConfigError, match=r"lab-typed.toml: key 'lab.coordinator' must be str, got int 5$"):
        load_lab(path)
    path.write_text('[lab]\ndescription = "bench"\n')
    assert (load_lab(path).name, load_lab(path).description) == ("lab-typed", "bench")
