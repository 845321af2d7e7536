"""A MicroPython image for ESP32-family parts, written with esptool (PyPI ``esptool``) and verified
by esptool's ``verify-flash``: the chip hashes the flash region and the digest must match the file.

Commands (esptool >= 5):

    python -m esptool --chip esp32 --port PORT --baud 460800 --before default-reset --after no-reset erase-flash
    python -m esptool --chip esp32 --port PORT --baud 460800 --before default-reset --after no-reset \\
        write-flash 0x1000 firmware.bin          # esptool checks each write's MD5 itself
    python -m esptool --chip esp32 --port PORT --baud 460800 --before default-reset --after hard-reset \\
        verify-flash 0x1000 firmware.bin         # independent read-back of the whole image

PORT may be a device path or an rfc2217:// URL (pyserial opens both). Not exercised against
hardware here: tests/test_flash.py checks command construction, image checks and the
verification logic against a stand-in esptool."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import procs
from harness.errors import one_line
from harness.flash import FlashError, FlashReport, VerifyError

# Where MicroPython's ESP32-family firmware .bin (bootloader + partition table + app) goes.
DEFAULT_OFFSETS = {
    "esp8266": 0x0, "esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c2": 0x0,
    "esp32c3": 0x0, "esp32c6": 0x0, "esp32h2": 0x0, "esp32c5": 0x2000, "esp32p4": 0x2000,
}  # fmt: skip
ESP_IMAGE_MAGIC = 0xE9  # first byte of an ESP bootloader/app image
WRITE_OK = "Hash of data verified."
VERIFY_OK = "Verification successful (digest matched)."


@dataclass
class EsptoolPlan:
    port: str
    image: Path
    chip: str = "esp32"
    offset: int | None = None
    baud: int = 460800
    erase: bool = True
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "esptool"])
    timeout: float = 300.0

    def __post_init__(self) -> None:
        if self.chip not in DEFAULT_OFFSETS and self.chip != "auto":
            raise FlashError(
                f"esptool: chip {self.chip!r} unknown; use one of {', '.join(sorted(DEFAULT_OFFSETS))} "
                f"(set esptool.chip in the lab file)"
            )
        if self.offset is None:
            if self.chip == "auto":
                raise FlashError("esptool: chip = \"auto\" needs an explicit esptool.offset (e.g. \"0x1000\")")
            self.offset = DEFAULT_OFFSETS[self.chip]

    def _base(self, after: str) -> list[str]:
        return [*self.command, "--chip", self.chip, "--port", self.port, "--baud", str(self.baud),
                "--before", "default-reset", "--after", after]  # fmt: skip

    def commands(self) -> list[list[str]]:
        offset = f"0x{self.offset:x}"
        cmds = [[*self._base("no-reset"), "erase-flash"]] if self.erase else []
        cmds.append([*self._base("no-reset"), "write-flash", offset, str(self.image)])
        cmds.append([*self._base("hard-reset"), "verify-flash", offset, str(self.image)])
        return cmds


def parse_offset(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            number = int(value, 0)
        except ValueError:
            number = -1
        if number >= 0:
            return number
    raise FlashError(f"esptool: offset {value!r} is not an address; write it like \"0x1000\"")


def check_image(path: Path) -> int:
    """The file must exist and be an ESP image (magic byte 0xE9); returns its size."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FlashError(f"esptool: firmware {path} does not exist; fix 'firmware' in the lab file") from None
    if not data:
        raise FlashError(f"esptool: firmware {path} is empty")
    if data[0] != ESP_IMAGE_MAGIC:
        raise FlashError(
            f"esptool: {path} is not an ESP firmware image (first byte 0x{data[0]:02x}, expected 0xe9); "
            f"use the .bin from micropython.org/download, not a .uf2/.hex/.elf"
        )
    return len(data)


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    proc = procs.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.kill(proc)
        raise FlashError(f"esptool: '{' '.join(argv[-3:])}' did not finish within {timeout:g} s") from None
    procs.forget(proc)
    return proc.returncode, out.decode(errors="replace")


def _error_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "error" in line.lower() or "failed" in line.lower():
            return one_line(line, 240)
    return one_line(lines[-1], 240) if lines else "no output"


def flash(plan: EsptoolPlan, device: str = "esp32", runner=None) -> FlashReport:
    runner = runner or _run
    size = check_image(plan.image)
    report = FlashReport(device=device, method=f"esptool {plan.chip}@0x{plan.offset:x}")
    started = time.monotonic()
    for argv in plan.commands():
        step = argv[argv.index("--after") + 2]
        status, output = runner(argv, plan.timeout)
        if status != 0:
            raise FlashError(f"{device}: esptool {step} failed (exit {status}): {_error_line(output)}")
        if step == "write-flash" and WRITE_OK not in output:
            raise VerifyError(f"{device}: esptool write-flash did not confirm the written data ('{WRITE_OK}' missing)")
        if step == "verify-flash" and VERIFY_OK not in output:
            raise VerifyError(f"{device}: esptool verify-flash: flash does not match {plan.image.name}: "
                              f"{_error_line(output)}")
    report.bytes_written = size
    report.seconds = time.monotonic() - started
    report.notes.append("verify-flash digest matched")
    return report
