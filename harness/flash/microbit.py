"""micro:bit HEX images: copied to the MICROBIT drive (the DAPLink interface chip programs the
nRF51/nRF52 and re-mounts the drive; a FAIL.TXT on it says why it refused), then verified by
reading the HEX's file-system files back from the running board (FsFlasher.verify: CRC-32
computed on the board).

The QEMU micro:bit has no DAPLink: its "flashing" is building the HEX with the files in it
(harness/images/microbit.py) and booting it (``boot_qemu``); the same read-back check applies.
The drive copy is not exercised against hardware here: tests/test_flash.py drives it with a
directory as the drive."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import one_line
from harness.flash import FlashError, FlashReport
from harness.flash.uf2 import find_drives

DETAILS_FILE = "DETAILS.TXT"  # on every DAPLink drive
FAIL_FILE = "FAIL.TXT"


def check_hex(text: str, name: str = "image") -> int:
    """Intel HEX well-formedness (record checksums, an end record); returns the data byte count."""
    data_bytes, ended = 0, False
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if not line.startswith(":") or len(line) < 11:
            raise FlashError(f"microbit: {name} line {number} is not an Intel HEX record: not a .hex file")
        try:
            raw = bytes.fromhex(line[1:])
        except ValueError:
            raise FlashError(f"microbit: {name} line {number} has non-hex characters") from None
        if len(raw) != raw[0] + 5:
            raise FlashError(f"microbit: {name} line {number}: record length {raw[0]} does not fit the line")
        if sum(raw) & 0xFF:
            raise FlashError(f"microbit: {name} line {number}: bad checksum (file corrupt or truncated)")
        if raw[3] == 0x00:
            data_bytes += raw[0]
        elif raw[3] == 0x01:
            ended = True
    if not ended:
        raise FlashError(f"microbit: {name} has no end-of-file record: the file is truncated")
    return data_bytes


def hex_files(text: str) -> list[tuple[str, bytes]]:
    """Files in a MicroPython micro:bit HEX's file system (what the board must show after flashing)."""
    import micropython_microbit_fs as mbfs

    try:
        return [(f.name, f.content) for f in mbfs.get_files(text)]
    except Exception as exc:  # not a MicroPython HEX (or a universal HEX the package cannot read)
        raise FlashError(f"microbit: cannot read the file system in this HEX: {one_line(exc)}") from None


def dap_present(drive: Path) -> bool:
    return (drive / DETAILS_FILE).is_file()


@dataclass
class MicrobitDriveFlasher:
    image: Path
    device: str = "microbit"
    drive: Path | None = None
    timeout: float = 30.0
    find: Callable[[], list[Path]] = lambda: find_drives(DETAILS_FILE)
    present: Callable[[Path], bool] = dap_present
    poll: float = 0.1

    def _wait(self, condition: Callable[[], object]) -> bool:
        deadline = time.monotonic() + self.timeout
        while not condition():
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.poll)
        return True

    def flash(self) -> tuple[FlashReport, list[tuple[str, bytes]]]:
        """Copy the HEX; returns the report and the files the board must now hold (verify them)."""
        try:
            text = self.image.read_text(errors="replace")
        except FileNotFoundError:
            raise FlashError(f"{self.device}: firmware {self.image} does not exist; fix 'firmware' in the lab file") \
                from None
        check_hex(text, self.image.name)
        files = hex_files(text)
        drive = self.drive
        if drive is None:
            drives = self.find()
            if len(drives) != 1:
                raise FlashError(
                    f"{self.device}: {len(drives)} MICROBIT drives ({DETAILS_FILE}) are mounted"
                    f"{' (' + ', '.join(map(str, drives)) + ')' if drives else ''}; mount it or set 'drive'"
                )
            drive = drives[0]
        elif not self.present(drive):
            raise FlashError(f"{self.device}: {drive} is not a MICROBIT drive (no {DETAILS_FILE}); fix 'drive'")
        report = FlashReport(device=self.device, method=f"microbit hex -> {drive}")
        started = time.monotonic()
        data = self.image.read_bytes()
        try:
            with open(drive / self.image.name, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if self.present(drive):
                raise FlashError(f"{self.device}: copying {self.image.name} to {drive} failed: {exc}") from None
        if not self._wait(lambda: not self.present(drive)):
            raise FlashError(f"{self.device}: {drive} did not go away within {self.timeout:g} s: "
                             f"DAPLink did not take {self.image.name}")  # fmt: skip
        if self._wait(lambda: self.present(drive)):
            fail = drive / FAIL_FILE
            if fail.exists():
                reason = one_line(fail.read_text(errors="replace"))
                raise FlashError(f"{self.device}: DAPLink refused the image: {reason}")
            report.notes.append("drive re-mounted, no FAIL.TXT")
        else:
            report.notes.append("drive did not re-mount: FAIL.TXT not checked")
        report.bytes_written = len(data)
        report.seconds = time.monotonic() - started
        return report, files


def boot_qemu(files: list[str], *, log_dir: Path | None = None, log=lambda m: None):
    """The QEMU micro:bit's flashing: build the HEX with ``files`` in its file system, boot it,
    and check the files read back from the running board. Returns (board, report); the caller
    stops the board."""
    from harness.board import Board
    from harness.config.boards import find_board
    from harness.flash.fs import FsFlasher

    spec = copy.deepcopy(find_board("microbit"))
    spec.image.options = {**spec.image.options, "files": list(files)}
    board = Board(spec, log_dir=log_dir, log=log)
    started = time.monotonic()
    try:
        image = board.build()
        hex_path = image.files["hex"]
        expected = hex_files(hex_path.read_text())
        board.start()
        report = FlashReport(device=board.name, method=f"microbit hex (QEMU) {image.digest}")
        report.files = FsFlasher(board).verify(expected)
        report.seconds = time.monotonic() - started
    except BaseException:
        board.stop()
        raise
    return board, report
