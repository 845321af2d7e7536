"""A QEMU board's console on the pty the harness makes (harness/launch/qemu/hostpty.py), on real
QEMU: input typed while the firmware boots is taken (it left mps2_an385's UART deaf for good), the
port closes and reopens like a plugged-in cable's, and goes away with QEMU like a pulled one's."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import serial

from harness import procs
from harness.board import Board
from harness.config.boards import find_board
from harness.launch.qemu.cmdline import machine_command
from harness.launch.qemu.hostpty import HostPty


def read_until(port: serial.Serial, marker: bytes, timeout: float = 15.0) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} within {timeout} s; got {seen[-300:]!r}")
        seen += port.read(4096)
    return seen


def test_mps2_takes_input_typed_before_its_uart_interrupt_is_on(tmp_path):
    """The host's bytes are in the pty before QEMU starts, so the first reaches the UART before the
    firmware enables its RX interrupt: a byte that raises no interrupt, and a UART that takes
    nothing more until it is read. The firmware must still answer, in the friendly and raw REPL."""
    board = Board(find_board("mps2_an385"), log_dir=tmp_path, log=lambda m: None)
    image = board.build()
    pty = HostPty.open()
    port = serial.Serial(pty.path, 115200, timeout=0.05, exclusive=True)
    port.reset_input_buffer()
    port.write(b"\r\x03\r")  # typed before the board exists
    cmd = machine_command(board.spec, image.files, board.workdir) + pty.qemu_args()
    proc = procs.spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                       pass_fds=pty.pass_fds)  # fmt: skip
    pty.handed_over()
    try:
        out = read_until(port, b">>> ")
        assert b"MicroPython" in out
        port.write(b"\r\x01")
        read_until(port, b"raw REPL; CTRL-B to exit\r\n>")
        port.write(b"print(6 * 7)\x04")
        assert b"OK42\r\n\x04\x04>" in read_until(port, b"\x04>")
    finally:
        port.close()
        procs.kill(proc)
        pty.close()
        board.stop()


@pytest.mark.parametrize("name", ["microbit", "mps2_an385"])
def test_console_port_reopens_and_goes_with_qemu(tmp_path, name):
    board = Board(find_board(name), log_dir=tmp_path, log=lambda m: None)
    board.start()
    try:
        path = board.launcher.ptys["serial0"]
        assert path.startswith("/dev/pts/") and board.facts.banner.startswith("MicroPython")
        board.repl.exit_raw()
        board.console.transport.close()  # let go of the port, as EmulatedDevice and mpremote runs do
        for _ in range(2):
            port = serial.Serial(path, 115200, timeout=0.05, exclusive=True)
            try:
                port.write(b"\r")
                read_until(port, b">>> ")
                port.write(b"print(6 * 7)\r")
                assert b"42\r\n>>> " in read_until(port, b"42\r\n>>> ")
            finally:
                port.close()
        procs.kill(board.launcher.proc)  # QEMU goes: its end of the pty with it
        assert not os.path.exists(path)
    finally:
        board.stop()
