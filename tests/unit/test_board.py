"""Board lifecycle on real boards, and every way a board can fail to become usable."""

from __future__ import annotations

import sys

import pytest

from harness.board import Board
from harness.config.boards import find_board, load_board
from harness.errors import BootError, ConfigError, InfrastructureError
from harness.io.repl import parse_board_exception
from harness.net.boardnet import BoardNet
from tests.conftest import REPO, write_target


@pytest.mark.spawns
def test_garbage_on_the_line_is_a_boot_error(no_leftovers, tmp_path):
    noise = tmp_path / "noise.py"
    noise.write_text("import os, signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                     "while True:\n    os.write(1, os.urandom(200))\n    time.sleep(0.01)\n")
    spec = load_board(write_target(tmp_path, "noisy", f"""
[launch]
kind = "process"
command = ["{sys.executable}", "{noise}"]
[console]
boot_timeout = 2
"""))
    with pytest.raises(BootError) as info:
        Board(spec, log_dir=tmp_path).start()
    message = str(info.value)
    assert "noisy: no MicroPython prompt within 2 s (garbage on the line?" in message
    assert "console tail:" in message


@pytest.mark.spawns
def test_firmware_that_crashes_at_boot(no_leftovers, tmp_path):
    spec = load_board(write_target(tmp_path, "crashy", """
[launch]
kind = "process"
command = ["sh", "-c", "echo 'HardFault at 0x0800'; exit 3"]
[console]
boot_timeout = 10
"""))
    with pytest.raises(BootError) as info:
        Board(spec, log_dir=tmp_path).start()
    assert "crashy: board died while booting" in str(info.value)
    assert "last status 3" in str(info.value) and "HardFault" in str(info.value)


@pytest.mark.spawns
def test_firmware_that_never_boots_times_out(no_leftovers, tmp_path):
    spec = load_board(write_target(tmp_path, "silent", """
[launch]
kind = "process"
command = ["sleep", "60"]
[console]
boot_timeout = 1
"""))
    with pytest.raises(BootError, match=r"silent: no MicroPython prompt within 1 s; console was silent"):
        Board(spec, log_dir=tmp_path).start()


def test_missing_serial_port_names_the_port(tmp_path):
    spec = load_board(write_target(tmp_path, "bench", '[launch]\nkind = "serial"\nport = "/dev/ttyHILNOPE"\n'))
    with pytest.raises(InfrastructureError, match=r"serial port /dev/ttyHILNOPE does not exist"):
        Board(spec, log_dir=tmp_path).start()


def test_missing_qemu_is_a_config_error_naming_file_and_key(tmp_path):
    """Even a Board started directly (not through the pool) checks its QEMU first: not retried."""
    spec = load_board(write_target(tmp_path, "q", '[launch]\nkind = "qemu"\nbinary = "qemu-system-x86_64-nope"\n'
                                   'machine = "q35"\n'))
    missing = r"q\.toml: key 'launch.binary' is 'qemu-system-x86_64-nope', which is not on PATH"
    with pytest.raises(ConfigError, match=missing):
        Board(spec, log_dir=tmp_path).start()


def test_unknown_placeholder_in_launch_args(tmp_path):
    spec = load_board(write_target(tmp_path, "q", '[launch]\nkind = "qemu"\nmachine = "microbit"\n'
                                   'args = ["-kernel", "{firmware}"]\n'))
    with pytest.raises(InfrastructureError, match=r"placeholder \{firmware\} in launch arguments is unknown"):
        Board(spec, log_dir=tmp_path).start()


def test_board_error_while_configuring_network_is_one_line(tmp_path, monkeypatch):
    """Whatever the board raises in hil_net.up (a firmware without the network module, ...) is a
    BootError naming the board and the board's error, without the multi-line traceback."""
    board = Board(find_board("mps2_an385", REPO / "targets"), log_dir=tmp_path, log=lambda m: None)
    net = BoardNet(mode="tap", guest_ip="192.168.77.10", host_ip="192.168.77.1")
    sent: list[str] = []
    try:
        for error in ("OSError: link down: no carrier on the LAN after 10000 ms",
                      "ImportError: no module named 'network'"):
            def fail(code, timeout=None, error=error):
                sent.append(code)
                raise parse_board_exception(f"Traceback (most recent call last):\n  File \"<stdin>\"\n{error}\n")

            monkeypatch.setattr(board, "exec", fail)
            with pytest.raises(BootError) as info:
                board._configure_network(net)
            assert str(info.value) == f"mps2_an385: network did not come up: {error}; console was silent"
    finally:
        board.stop()  # never started: removes its work dir
    assert sent[0] == "import hil_net\nhil_net.up('192.168.77.10/24', '192.168.77.1')"  # tap: the static address




# --- run_to_exit: the firmware's verdict vs a signal from outside -----------------------------------

class _ExitingQemu:
    """What run_to_exit sees of a QEMU that ends with ``status`` (negative: killed by that signal)."""

    def __init__(self, status: int) -> None:
        self.status = status

    def wait(self, timeout: float) -> int:
        return self.status

    def poll(self) -> int:
        return self.status


def _board_running_to_exit(tmp_path, monkeypatch, status: int) -> tuple[Board, list[str]]:
    from types import SimpleNamespace

    from harness.images import Image
    from harness.launch.base import LaunchContext
    from harness.launch.qemu.launcher import QemuLauncher

    board = Board(find_board("mps2_an385", REPO / "targets"), log_dir=tmp_path, log=lambda m: None)
    launcher = QemuLauncher(board.spec, LaunchContext(Image(digest="d", files={}), tmp_path, tmp_path))
    launcher.proc = _ExitingQemu(status)  # type: ignore[assignment]
    sent: list[str] = []
    board.launcher = launcher
    board.repl = SimpleNamespace(send_code=sent.append)  # type: ignore[assignment]
    monkeypatch.setattr(board, "restart", lambda: sent.append("restart"))
    return board, sent


def test_qemu_killed_by_a_signal_under_run_to_exit_is_board_died(tmp_path, monkeypatch):
    """kill -9 from outside ends QEMU with status -9: not the firmware's verdict (FirmwareExit, a
    failure never retried) but infrastructure (BoardDied: retried on a fresh board)."""
    from harness.board import FirmwareExit
    from harness.errors import BoardDied

    board, sent = _board_running_to_exit(tmp_path, monkeypatch, -9)
    try:
        with pytest.raises(BoardDied) as info:
            board.run_to_exit("import hil_semihost\nhil_semihost.exit(0)")
        assert not isinstance(info.value, FirmwareExit) and isinstance(info.value, InfrastructureError)
        assert str(info.value).startswith(
            "mps2_an385: while running code to its exit, QEMU was killed by signal 9 (SIGKILL)"
        )
        assert sent == ["import hil_semihost\nhil_semihost.exit(0)"]  # no restart: the pool restarts a dead board
    finally:
        board.launcher = None  # nothing real to stop
        board.stop()


@pytest.mark.parametrize("status", [3, 1, 255])
def test_firmware_exit_status_outside_ok_codes_stays_a_failure(tmp_path, monkeypatch, status):
    from harness.board import FirmwareExit

    board, sent = _board_running_to_exit(tmp_path, monkeypatch, status)
    try:
        with pytest.raises(FirmwareExit) as info:
            board.run_to_exit("import hil_semihost\nhil_semihost.exit(3)")
        assert info.value.status == status and isinstance(info.value, AssertionError)
        assert sent[-1] == "restart"  # booted again for the tests after it
    finally:
        board.launcher = None  # nothing real to stop
        board.stop()


def test_ok_exit_status_is_returned(tmp_path, monkeypatch):
    board, _ = _board_running_to_exit(tmp_path, monkeypatch, 0)
    try:
        assert board.run_to_exit("import hil_semihost\nhil_semihost.exit(0)") == 0
    finally:
        board.launcher = None  # nothing real to stop
        board.stop()


def test_a_bench_device_can_bus_comes_from_its_lab_entry_and_is_journaled(tmp_path):
    """A real bench: the board has no QEMU link; its lab device's can = {...} (the board spec's [can],
    link python_can) says which python-can interface reaches its bus. Here: python-can's virtual
    bus, which the test joins too; the frame lands on the board's evidence journal."""
    import can

    from harness.config.labs import lab_boards

    lab = tmp_path / "lab-bench.toml"
    lab.write_text(
        '[lab]\nname = "bench"\n[[device]]\nname = "pico-can"\nport = "/dev/ttyHILNONE"\n'
        'can = { interface = "virtual", channel = "hil-can-test", bitrate = 250000 }\n'
    )
    spec = lab_boards([lab])["pico-can"]
    board = Board(spec, log_dir=tmp_path)
    bus = board.host_can_bus()
    peer = can.Bus(interface="virtual", channel="hil-can-test")
    try:
        peer.send(can.Message(arbitration_id=0x42, data=b"hi", is_extended_id=False))
        got = bus.recv(2)
        assert got is not None and (got.arbitration_id, bytes(got.data)) == (0x42, b"hi")
        assert any(getattr(e.payload, "arbitration_id", None) == 0x42 for e in board.journal.since(0).entries)
    finally:
        bus.shutdown()
        peer.shutdown()

    spec.can.link = "none"
    with pytest.raises(InfrastructureError, match="pico-can: has capability 'can' but no CAN link"):
        Board(spec, log_dir=tmp_path).host_can_bus()
