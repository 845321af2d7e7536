"""HostPty, the console pty the harness makes for QEMU, on a real pty pair (no QEMU: the test plays
QEMU's side on the master): raw from the start, no hang-up on QEMU's side while nobody has the port
open, the port reopenable like a plugged-in cable, gone once the master's holder is."""

from __future__ import annotations

import os
import select
import termios

import pytest
import serial

from harness.launch.qemu.hostpty import CHARDEV_ID, FDSET, HostPty


@pytest.fixture
def pty():
    p = HostPty.open()
    yield p
    p.close()


def read_some(fd: int, want: bytes, timeout: float = 5.0) -> bytes:
    out = b""
    while want not in out:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"no {want!r} within {timeout} s; got {out!r}"
        out += os.read(fd, 4096)
    return out


def test_slave_is_raw_before_anyone_opens_it(pty):
    """A guest's banner written before the port is opened must not be echoed back to the guest."""
    lflag = termios.tcgetattr(pty.slave)[3]
    assert not lflag & (termios.ECHO | termios.ICANON | termios.ISIG)
    os.write(pty.master, b"MicroPython banner\r\n>>> ")
    ready, _, _ = select.select([pty.master], [], [], 0.2)
    assert not ready, "the pty echoed the guest's output back to it"


def hung_up(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(ev & select.POLLHUP for _, ev in poller.poll(0))


def test_port_opens_closes_and_reopens_like_a_plugged_in_cable(pty):
    for _ in range(2):
        port = serial.Serial(pty.path, 115200, timeout=2, exclusive=True)
        try:
            os.write(pty.master, b"banner\r\n>>> ")  # the guest's side
            assert port.read(13) == b"banner\r\n>>> "
            port.write(b"\r\x03")
            assert read_some(pty.master, b"\r\x03") == b"\r\x03"  # host input reaches the guest's side
        finally:
            port.close()
        # Nobody has the port open, yet QEMU's side sees no hang-up: QEMU's fd chardev would read a
        # hung-up master in a busy loop and drop the guest's output.
        assert not hung_up(pty.master)


def test_without_our_slave_fd_the_master_hangs_up(pty):
    """Why the launcher holds the slave open: the check above has teeth."""
    os.close(pty.slave)
    pty.slave = -1
    assert hung_up(pty.master)


def test_qemu_args_put_the_master_in_an_fd_set_as_serial0(pty):
    args = pty.qemu_args()
    assert args == ["-add-fd", f"fd={pty.master},set={FDSET},opaque=hil-console",
                    "-chardev", f"serial,id={CHARDEV_ID},path=/dev/fdset/{FDSET}",
                    "-serial", f"chardev:{CHARDEV_ID}"]  # fmt: skip
    assert pty.pass_fds == (pty.master,)


def test_handing_over_closes_our_master_so_the_pty_goes_with_its_last_holder(pty):
    holder = os.dup(pty.master)  # plays QEMU's inherited copy
    pty.handed_over()
    assert pty.master == -1 and pty.pass_fds == ()
    assert os.path.exists(pty.path)
    os.close(holder)  # QEMU exits
    assert not os.path.exists(pty.path)  # like a pulled USB cable's device
    pty.close()
    pty.close()  # twice is harmless
    assert pty.slave == -1
