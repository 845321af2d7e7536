"""Flashing backends.

Real: copying files over the raw REPL with on-board read-back hashes — sha256 on the unix port
(a real file system), the table-free CRC-32 on the QEMU micro:bit reached through its pty as a
plain serial device — a device unplugged mid-flash, and the QEMU micro:bit's HEX flashing (build +
boot + read-back). Unit-tested with stand-ins (no hardware here): esptool's command construction
and verification logic (plus real esptool parsing our command lines), UF2 and MICROBIT drive
copies and their verification."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.flash import FlashError, VerifyError, uf2

RP2040, RP2350 = 0xE48BFF56, 0xE48BFF59


def test_uf2_parse_round_trip_and_damage():
    payload = bytes(range(256)) * 5
    image = uf2.parse(uf2.encode(payload, 0x10000000, RP2040))
    assert (image.blocks, image.payload, image.families, image.base) == (5, 1280, {RP2040}, 0x10000000)
    data = bytearray(uf2.encode(payload, 0x10000000, RP2040))
    with pytest.raises(FlashError, match=r"not a whole number of 512-byte UF2 blocks"):
        uf2.parse(bytes(data[:-10]))
    with pytest.raises(FlashError, match=r"blocks \[4\] of 5 are missing: the file is truncated"):
        uf2.parse(bytes(data[:-512]))
    data[512 + 3] ^= 0xFF
    with pytest.raises(FlashError, match=r"block 1 has bad magic numbers"):
        uf2.parse(bytes(data))


def make_rp2_drive(tmp_path: Path, board_id: str = "RPI-RP2") -> Path:
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / uf2.INFO_FILE).write_text(f"UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: {board_id}\n")
    return drive


def test_uf2_copy_then_reenumeration_then_board_id(tmp_path):
    image_path = tmp_path / "fw.uf2"
    image_path.write_bytes(uf2.encode(b"\x01" * 3000, 0x10000000, RP2040))
    drive = make_rp2_drive(tmp_path)
    events: list[str] = []

    def mounts() -> list[Path]:  # no drive until the board was asked to enter its bootloader
        return [tmp_path / "elsewhere", drive] if "bootloader" in events else [tmp_path / "elsewhere"]

    def present(d: Path) -> bool:  # the drive goes away once the whole image has landed
        return not ((d / "fw.uf2").exists() and (d / "fw.uf2").stat().st_size == image_path.stat().st_size)

    flasher = uf2.Uf2Flasher(image_path, "pico", timeout=5, find=lambda: uf2.find_drives(mounts=mounts),
                             present=present, poll=0)  # fmt: skip
    report = flasher.flash(lambda: events.append("bootloader"), lambda: True, lambda: "E6614103E7452D2F",
                           "e6614103e7452d2f")  # fmt: skip
    assert events == ["bootloader"]
    assert (drive / "fw.uf2").read_bytes() == image_path.read_bytes()
    assert report.bytes_written == image_path.stat().st_size
    assert report.notes == ["drive re-enumerated", "board id E6614103E7452D2F"]

    (drive / "fw.uf2").unlink()
    with pytest.raises(VerifyError, match=r"has id AAAA, expected E661: a different board answered"):
        flasher.flash(None, lambda: True, lambda: "AAAA", "E661")


def test_uf2_mistakes(tmp_path):
    drive = make_rp2_drive(tmp_path)
    wrong = tmp_path / "rp2350.uf2"
    wrong.write_bytes(uf2.encode(b"\x02" * 600, 0x10000000, RP2350))
    with pytest.raises(FlashError, match=r"rp2350.uf2 is for RP2350 Arm secure, but the drive at .* is a RPI-RP2 "
                                         r"bootloader; use the image built for this board"):  # fmt: skip
        uf2.Uf2Flasher(wrong, "pico", drive).flash()
    good = tmp_path / "fw.uf2"
    good.write_bytes(uf2.encode(b"\x02" * 600, 0x10000000, RP2040))
    with pytest.raises(FlashError, match=r"drive .* did not go away \(image not accepted\?\) \(waited 0.2 s\)"):
        uf2.Uf2Flasher(good, "pico", drive, timeout=0.2, poll=0.01).flash()
    with pytest.raises(FlashError, match=r"no UF2 bootloader drive \(INFO_UF2.TXT\) appeared at any mount point; hold"):
        uf2.Uf2Flasher(good, "pico", timeout=0.2, find=lambda: [], poll=0.01).flash()
    with pytest.raises(FlashError, match=r"2 UF2 bootloader drives are mounted .*; set 'drive' in the lab file"):
        uf2.Uf2Flasher(good, "pico", find=lambda: [drive, drive]).flash()
    with pytest.raises(FlashError, match=r"firmware .*missing.uf2 does not exist; fix 'firmware'"):
        uf2.Uf2Flasher(tmp_path / "missing.uf2", "pico", drive).flash()


