"""SerialLauncher on a pty's slave path (exactly how /dev/ttyACM0 or a QEMU pty is opened): start
opens the port and leaves a stale raw REPL with Ctrl-B; lab: ports are resolved first; a port
that cannot be opened is a one-line error."""

from __future__ import annotations

import os
import time
import tty

import pytest

from harness.config.boards import load_board
from harness.config.ports import parse_port
from harness.errors import InfrastructureError
from harness.launch import serial as serial_launch
from harness.launch.serial import SerialLauncher
from tests.conftest import write_target


@pytest.fixture
def pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def launcher_on(tmp_path, port: str, console: str = "") -> SerialLauncher:
    spec = load_board(write_target(tmp_path, "dev", f'[launch]\nkind = "serial"\nport = "{port}"\n{console}'))
    return SerialLauncher(spec)


def read_some(fd: int, timeout: float = 2.0) -> bytes:
    deadline = time.monotonic() + timeout
    os.set_blocking(fd, False)
    out = b""
    while time.monotonic() < deadline:
        try:
            out += os.read(fd, 100)
        except BlockingIOError:
            if out:
                return out
            time.sleep(0.01)
    return out


def test_start_opens_the_port_and_sends_ctrl_b(tmp_path, pty):
    master, path = pty
    launcher = launcher_on(tmp_path, path, "[console]\nwrite_chunk = 8\nwrite_gap_ms = 1\n")
    assert not launcher.alive()  # nothing opened yet
    transport = launcher.start()
    try:
        assert read_some(master) == b"\x02"  # leaves a raw REPL an earlier session left behind
        assert transport.name == path and launcher.port == path
        assert (transport.write_chunk, transport.write_gap) == (8, 0.001)  # [console] pacing applies
        assert launcher.alive()
        os.write(master, b">>> ")
        assert transport.read(10, 1.0) == b">>> "
    finally:
        transport.close()
        launcher.stop()
    assert launcher.death() == f"serial port {path} disappeared (unplugged?)"
    assert SerialLauncher.can_hard_reset is False  # stop + start does not reset a bench device


def test_lab_port_is_resolved_before_opening(tmp_path, pty, monkeypatch):
    master, path = pty
    asked = []

    def resolve(ref, directory=None):
        asked.append((ref.name, ref.lab))
        return parse_port(path)

    monkeypatch.setattr(serial_launch, "resolve_lab_port", resolve)  # the name the launcher uses
    launcher = launcher_on(tmp_path, "lab:bench-1/pico-1")
    transport = launcher.start()
    try:
        assert asked == [("pico-1", "bench-1")]
        assert launcher.port == path and transport.name == path
        assert read_some(master) == b"\x02"
    finally:
        transport.close()
        launcher.stop()


def test_missing_device_is_one_line_and_leaves_nothing_open(tmp_path):
    missing = tmp_path / "ttyACM7"
    launcher = launcher_on(tmp_path, str(missing))
    with pytest.raises(InfrastructureError) as info:
        launcher.start()
    # the target file and the key to fix are named (issue 7)
    assert str(info.value) == (f"{launcher.spec.path}: serial port {missing} does not exist: check the cable or "
                               "fix key 'launch.port'")  # fmt: skip
    assert launcher.transport is None and not launcher.alive()


def test_alive_follows_the_device_node(tmp_path):
    node = tmp_path / "ttyUSB0"
    node.touch()
    launcher = launcher_on(tmp_path, str(node))
    launcher.transport = object()  # type: ignore[assignment]  # as start() leaves it
    assert launcher.alive()
    node.unlink()  # unplugged: the kernel removes the node
    assert not launcher.alive()
    network = launcher_on(tmp_path, "socket://127.0.0.1:4000")
    assert network.alive()  # no device node to check: the transport itself notices a dead link
