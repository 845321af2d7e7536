"""UF2 images onto RP2040 / RP2350 boards through their bootloader's USB drive.

1. check the image: every 512-byte block has UF2's magic numbers, block numbers are complete, the
   family id suits the board (INFO_UF2.TXT's Board-ID: RPI-RP2 -> RP2040, RP2350 -> RP2350);
2. find the drive: a mount point holding INFO_UF2.TXT (``drive`` in the lab file, else
   /proc/mounts); if there is none, ask the running MicroPython for ``machine.bootloader()``;
3. copy the file and fsync it;
4. verify: the bootloader takes the image and reboots, so the drive goes away (re-enumeration),
   the board's serial port comes back, and the board's unique id (``machine.unique_id()``, which
   MicroPython also uses as the USB serial number) is the expected one.

Not exercised against hardware here: tests/test_flash.py drives it with a directory as the drive
and stand-ins for USB enumeration."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.flash import FlashError, FlashReport, VerifyError

BLOCK = 512
MAGIC_START0, MAGIC_START1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_NOT_MAIN_FLASH, FLAG_FAMILY_ID = 0x00000001, 0x00002000
FAMILIES = {
    0xE48BFF56: "RP2040", 0xE48BFF57: "RP2XXX absolute", 0xE48BFF58: "RP2XXX data",
    0xE48BFF59: "RP2350 Arm secure", 0xE48BFF5A: "RP2350 RISC-V", 0xE48BFF5B: "RP2350 Arm non-secure",
}  # fmt: skip
BOARD_FAMILIES = {  # INFO_UF2.TXT Board-ID -> families its bootloader accepts
    "RPI-RP2": {0xE48BFF56},
    "RP2350": {0xE48BFF57, 0xE48BFF59, 0xE48BFF5A, 0xE48BFF5B},
}
INFO_FILE = "INFO_UF2.TXT"


@dataclass
class Uf2Image:
    blocks: int
    payload: int  # bytes of flash data
    families: set[int] = field(default_factory=set)
    base: int = 0  # lowest target address

    def family_names(self) -> str:
        return ", ".join(FAMILIES.get(f, f"0x{f:08x}") for f in sorted(self.families)) or "none"


def parse(data: bytes, name: str = "image") -> Uf2Image:
    if not data or len(data) % BLOCK:
        raise FlashError(f"uf2: {name} is {len(data)} B, not a whole number of 512-byte UF2 blocks: not a UF2 file")
    count = len(data) // BLOCK
    seen: set[int] = set()
    image = Uf2Image(blocks=count, payload=0, base=0xFFFFFFFF)
    total = None
    for i in range(count):
        block = data[i * BLOCK : (i + 1) * BLOCK]
        m0, m1, flags, addr, size, number, blocks, family = struct.unpack_from("<8I", block)
        (end,) = struct.unpack_from("<I", block, BLOCK - 4)
        if (m0, m1, end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise FlashError(f"uf2: {name}: block {i} has bad magic numbers: not a UF2 file (or truncated)")
        if size > 476:
            raise FlashError(f"uf2: {name}: block {i} claims {size} B of data (at most 476)")
        if total is None:
            total = blocks
        if blocks != total or number >= blocks:
            raise FlashError(f"uf2: {name}: block {i} is numbered {number}/{blocks}, others say {total} blocks")
        seen.add(number)
        if flags & FLAG_NOT_MAIN_FLASH:
            continue
        if flags & FLAG_FAMILY_ID:
            image.families.add(family)
        image.payload += size
        image.base = min(image.base, addr)
    if total is not None and seen != set(range(total)):
        missing = sorted(set(range(total)) - seen)[:5]
        raise FlashError(f"uf2: {name}: blocks {missing} of {total} are missing: the file is truncated")
    return image


def encode(payload: bytes, base: int, family: int, block_data: int = 256) -> bytes:
    """A UF2 file for ``payload`` at ``base`` (what picotool/elf2uf2 produce: 256 B per block)."""
    chunks = [payload[i : i + block_data] for i in range(0, len(payload), block_data)] or [b""]
    out = bytearray()
    for n, chunk in enumerate(chunks):
        header = struct.pack("<8I", MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID, base + n * block_data,
                             len(chunk), n, len(chunks), family)  # fmt: skip
        out += header + chunk.ljust(476, b"\0") + struct.pack("<I", MAGIC_END)
    return bytes(out)


def read_info(drive: Path) -> dict[str, str]:
    info = {}
    for line in (drive / INFO_FILE).read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def mount_points() -> list[Path]:
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    return [Path(line.split()[1].replace("\\040", " ")) for line in lines if len(line.split()) > 1]


def find_drives(marker: str = INFO_FILE, mounts: Callable[[], list[Path]] = mount_points) -> list[Path]:
    """Mounted drives holding ``marker`` (INFO_UF2.TXT for UF2 bootloaders, DETAILS.TXT for DAPLink)."""
    found = []
    for mount in mounts():
        try:
            if (mount / marker).is_file():
                found.append(mount)
        except OSError:
            continue
    return found


def drive_present(drive: Path) -> bool:
    return (drive / INFO_FILE).is_file()


@dataclass
class Uf2Flasher:
    image: Path
    device: str = "rp2"
    drive: Path | None = None  # None: look in /proc/mounts
    timeout: float = 30.0
    find: Callable[[], list[Path]] = find_drives
    present: Callable[[Path], bool] = drive_present
    poll: float = 0.1

    def _wait(self, what: str, condition: Callable[[], object]) -> object:
        deadline = time.monotonic() + self.timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise FlashError(f"{self.device}: {what} (waited {self.timeout:g} s)")
            time.sleep(self.poll)

    def locate(self, enter_bootloader: Callable[[], None] | None = None) -> Path:
        def look() -> Path | None:
            if self.drive is not None:
                return self.drive if self.present(self.drive) else None
            drives = self.find()
            if len(drives) > 1:
                raise FlashError(
                    f"{self.device}: {len(drives)} UF2 bootloader drives are mounted ({', '.join(map(str, drives))}); "
                    f"set 'drive' in the lab file"
                )
            return drives[0] if drives else None

        drive = look()
        if drive is None and enter_bootloader is not None:
            enter_bootloader()
        where = str(self.drive) if self.drive else "any mount point"
        return self._wait(f"no UF2 bootloader drive ({INFO_FILE}) appeared at {where}; hold BOOTSEL while "
                          f"plugging in, or mount the drive and set 'drive'", look)  # type: ignore[return-value]

    def flash(
        self,
        enter_bootloader: Callable[[], None] | None = None,
        port_back: Callable[[], bool] = lambda: True,
        unique_id: Callable[[], str] | None = None,
        expect_id: str | None = None,
    ) -> FlashReport:
        try:
            data = self.image.read_bytes()
        except FileNotFoundError:
            raise FlashError(f"{self.device}: firmware {self.image} does not exist; fix 'firmware' in the lab file") \
                from None
        image = parse(data, self.image.name)
        drive = self.locate(enter_bootloader)
        info = read_info(drive)
        board_id = info.get("Board-ID", "")
        accepted = BOARD_FAMILIES.get(board_id)
        if accepted is not None and image.families and not image.families & accepted:
            raise FlashError(
                f"{self.device}: {self.image.name} is for {image.family_names()}, but the drive at {drive} is a "
                f"{board_id} bootloader; use the image built for this board"
            )
        report = FlashReport(device=self.device, method=f"uf2 -> {drive} ({board_id or 'unknown board'})")
        started = time.monotonic()
        target = drive / self.image.name
        try:
            with open(target, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            # The bootloader may reboot as soon as the last block lands: the drive vanishing then is success.
            if self.present(drive):
                raise FlashError(f"{self.device}: copying {self.image.name} to {drive} failed: {exc}") from None
        self._wait(f"the bootloader drive {drive} did not go away (image not accepted?)",
                   lambda: not self.present(drive))  # fmt: skip
        self._wait("the board's serial port did not come back after flashing", port_back)
        report.bytes_written = len(data)
        report.seconds = time.monotonic() - started
        report.notes.append("drive re-enumerated")
        if unique_id is not None and expect_id:
            got = unique_id()
            if got.lower() != expect_id.lower():
                raise VerifyError(f"{self.device}: after flashing, the board on that port has id {got}, "
                                  f"expected {expect_id}: a different board answered")  # fmt: skip
            report.notes.append(f"board id {got}")
        return report


# MicroPython: enter the UF2 bootloader (the USB link drops right away: nothing comes back).
BOOTLOADER_CODE = "import machine\nmachine.bootloader()"
UNIQUE_ID_CODE = "import machine\nprint(''.join('%02x' % b for b in machine.unique_id()))"
