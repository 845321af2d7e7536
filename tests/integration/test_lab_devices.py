"""Lab files: validation (one-line errors naming file, device, key and fix), finding devices by
USB attributes, the board a device becomes, and lab devices opened as serial boards for real
(a QEMU micro:bit's pty plays the attached device)."""

from __future__ import annotations

import pytest

from harness.board import Board
from harness.config.boards import load_board
from harness.config.labs import board_spec, load_lab
from harness.config.ports import parse_port
from harness.io.usb import resolve_lab_port
from harness.testing.emulated import EmulatedDevice
from tests.conftest import write_target as write_board_file
from tests.unit.config.test_labs import lab_file

MICROBIT_CONSOLE = "console = { write_chunk = 16, write_gap_ms = 4, raw_paste = false }"


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


