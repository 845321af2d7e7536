"""Flashing real devices, each backend verifying what it wrote:

- ``fs``: firmware_py files copied to the board's file system over the raw REPL, in bounded
  chunks, then read back and hashed ON the board (sha256, else CRC-32) and compared with the host;
- ``esptool``: a MicroPython image written to an ESP32's flash with esptool, then checked with
  esptool's verify-flash (the chip hashes its flash);
- ``uf2``: a UF2 image copied to an RP2040/RP2350 bootloader drive (found by its INFO_UF2.TXT),
  checked by the drive going away, the serial port coming back and the board's unique id;
- ``microbit_hex``: a HEX copied to the micro:bit's MICROBIT drive (DAPLink), checked by the
  absence of FAIL.TXT and the HEX's files read back from the board. The QEMU micro:bit's
  equivalent is building the HEX (harness/images/microbit.py) and booting it.

No partial success: any failure raises FlashError (an InfrastructureError) in one line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.errors import InfrastructureError

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class FlashError(InfrastructureError):
    """Writing failed or could not be verified: the device is not (completely) flashed."""


class VerifyError(FlashError):
    """What reads back differs from what was written."""


@dataclass
class FileResult:
    name: str
    size: int
    digest: str  # "sha256:<hex>" or "crc32:<hex>": the board's read-back
    written: bool = True  # False: already identical on the board, left alone


@dataclass
class FlashReport:
    device: str
    method: str
    files: list[FileResult] = field(default_factory=list)
    bytes_written: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Payload bytes per second (0 when nothing was written)."""
        return self.bytes_written / self.seconds if self.seconds > 0 and self.bytes_written else 0.0

    def summary(self) -> str:
        parts = [self.method]
        if self.files:
            written = sum(1 for f in self.files if f.written)
            parts.append(f"{written}/{len(self.files)} files written, all verified")
        if self.bytes_written:
            parts.append(f"{self.bytes_written} B in {self.seconds:.1f} s ({self.throughput / 1024:.1f} KiB/s)")
        return ", ".join(parts + self.notes)


def one_line(text: object, limit: int = 400) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
