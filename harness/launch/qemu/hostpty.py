"""A QEMU board's console pty, made by the harness rather than by QEMU.

QEMU's own pty chardev (``-serial pty``) learns that a reader opened /dev/pts/N only from a
1 s timer (QEMU 7.2 chardev/char-pty.c, or when the guest happens to write): until then it
neither reads the host's input nor passes the guest's output on, so every boot, restore or
restart waited about a second for the first prompt. Here the harness opens the pty pair itself
and hands QEMU the master as a plain serial chardev over an inherited fd
(``-add-fd`` + ``-chardev serial,path=/dev/fdset/N``): a plain fd, read as soon as data is
there, no connection state. The console is still opened by path (/dev/pts/N, through pyserial)
exactly like /dev/ttyACM0, so emulated boards keep exercising real boards' code path.

The launcher keeps one slave fd open for as long as QEMU runs: with no slave open a pty
master polls as hung up, which QEMU's fd chardev would read in a busy loop, and the guest's
output would be lost. So the port can be closed and opened again (mpremote, a lab entry) like a
cable that stays plugged in; when QEMU exits, the master closes and /dev/pts/N disappears, as a
pulled USB cable's device does."""

from __future__ import annotations

import os
import tty
from dataclasses import dataclass

FDSET = 1  # QEMU's fd set the master goes into (one console per QEMU)
CHARDEV_ID = "hilcon"


@dataclass
class HostPty:
    master: int
    slave: int
    path: str

    @classmethod
    def open(cls) -> HostPty:
        master, slave = os.openpty()
        try:
            # Raw before QEMU runs: with the default ECHO the guest's own output (its boot banner,
            # written before anyone opens the port) would come straight back to it as input.
            tty.setraw(slave)
            return cls(master, slave, os.ttyname(slave))
        except BaseException:
            os.close(master)
            os.close(slave)
            raise

    def qemu_args(self) -> list[str]:
        """The console chardev on the inherited master (pass ``pass_fds`` to the spawn) as serial0."""
        return ["-add-fd", f"fd={self.master},set={FDSET},opaque=hil-console",
                "-chardev", f"serial,id={CHARDEV_ID},path=/dev/fdset/{FDSET}",
                "-serial", f"chardev:{CHARDEV_ID}"]  # fmt: skip

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.master,) if self.master >= 0 else ()

    def handed_over(self) -> None:
        """QEMU has the master: drop ours, so that QEMU exiting closes the pty like a pulled cable."""
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def close(self) -> None:
        self.handed_over()
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1
