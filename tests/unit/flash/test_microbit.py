"""micro:bit HEX flashing without a micro:bit: Intel HEX checks, the files a HEX carries, and the
MICROBIT drive copy against a directory playing the DAPLink drive (it goes away and comes back)."""

from __future__ import annotations

from pathlib import Path

import micropython_microbit_fs as mbfs
import pytest

from harness.flash import FlashError
from harness.flash.microbit import DETAILS_FILE, FAIL_FILE, MicrobitDriveFlasher, check_hex, hex_files


def record(address: int, kind: int, data: bytes) -> str:
    raw = bytes([len(data), address >> 8, address & 0xFF, kind]) + data
    return ":" + (raw + bytes([-sum(raw) & 0xFF])).hex().upper()


SMALL = "\n".join([record(0, 0, b"\x01\x02\x03\x04"), record(4, 0, b"\xaa" * 16), record(0, 1, b"")]) + "\n"


@pytest.fixture(scope="module")
def mp_hex() -> str:
    """The bundled micro:bit MicroPython HEX with one module in its file system."""
    base = mbfs.get_bundled_hex(1).content
    return mbfs.add_files(base, [mbfs.File(name="hil_info.py", content=b"NAME = 'hil'\n")])


def test_check_hex_counts_data_bytes():
    assert check_hex(SMALL) == 20
    assert check_hex("\r\n" + SMALL.replace("\n", "\r\n")) == 20  # CRLF and blank lines are fine


@pytest.mark.parametrize(("text", "error"), [
    ("hello\n", r"microbit: fw.hex line 1 is not an Intel HEX record: not a .hex file"),
    (":0400000001020Z0400\n", r"line 1 has non-hex characters"),
    (record(0, 0, b"\x01\x02")[:-2] + "FF" + "00\n", r"line 1: record length 2 does not fit the line"),
    (record(0, 0, b"\x01\x02")[:-2] + "00\n" + record(0, 1, b""),
     r"line 1: bad checksum \(file corrupt or truncated\)"),
    ("\n".join(SMALL.splitlines()[:-1]), r"fw.hex has no end-of-file record: the file is truncated"),
])  # fmt: skip
def test_check_hex_errors_are_one_line_with_the_line_number(text, error):
    with pytest.raises(FlashError, match=error) as info:
        check_hex(text, "fw.hex")
    assert "\n" not in str(info.value)


def test_hex_files_reads_the_file_system(mp_hex):
    assert hex_files(mp_hex) == [("hil_info.py", b"NAME = 'hil'\n")]
    with pytest.raises(FlashError, match=r"^microbit: cannot read the file system in this HEX: "):
        hex_files(SMALL)  # well-formed, but not MicroPython


def drive_dir(tmp_path: Path) -> Path:
    drive = tmp_path / "MICROBIT"
    drive.mkdir()
    (drive / DETAILS_FILE).write_text("Version: 0253\n")
    return drive


def remounting(*states: bool):
    """present(drive) answering ``states`` in turn (then the last one): the drive's life during a copy."""
    answers = list(states)

    def present(drive: Path) -> bool:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return present


@pytest.fixture
def quick_files(monkeypatch):
    """Reading a whole MicroPython HEX's file system takes ~0.5 s: the drive tests skip it."""
    from harness.flash import microbit

    files = [("hil_info.py", b"NAME = 'hil'\n")]
    monkeypatch.setattr(microbit, "hex_files", lambda text: files)
    return files


def test_not_a_micropython_hex_fails_before_any_drive_is_touched(tmp_path):
    image = tmp_path / "fw.hex"
    image.write_text(SMALL)
    with pytest.raises(FlashError, match="cannot read the file system"):
        MicrobitDriveFlasher(image, "mb-1", find=lambda: pytest.fail("looked for drives")).flash()


def test_drive_selection_errors(tmp_path, quick_files):
    image = tmp_path / "fw.hex"
    with pytest.raises(FlashError, match=r"^mb-1: firmware .*fw.hex does not exist; fix 'firmware' in the lab file$"):
        MicrobitDriveFlasher(image, "mb-1").flash()
    image.write_text(SMALL)
    with pytest.raises(FlashError, match=r"^mb-1: 0 MICROBIT drives \(DETAILS.TXT\) are mounted; mount it or set"):
        MicrobitDriveFlasher(image, "mb-1", find=lambda: []).flash()
    two = [Path("/media/a/MICROBIT"), Path("/media/b/MICROBIT")]
    with pytest.raises(FlashError, match=r"2 MICROBIT drives .* \(/media/a/MICROBIT, /media/b/MICROBIT\)"):
        MicrobitDriveFlasher(image, "mb-1", find=lambda: two).flash()
    not_a_drive = r"^mb-1: .*notadrive is not a MICROBIT drive \(no DETAILS.TXT\); fix 'drive'$"
    with pytest.raises(FlashError, match=not_a_drive):
        MicrobitDriveFlasher(image, "mb-1", drive=tmp_path / "notadrive").flash()


def test_copy_waits_for_remount_and_returns_the_files_to_verify(tmp_path, quick_files):
    image = tmp_path / "fw.hex"
    image.write_text(SMALL)
    drive = drive_dir(tmp_path)
    flasher = MicrobitDriveFlasher(image, "mb-1", find=lambda: [drive], present=remounting(False, True), poll=0.01)
    report, files = flasher.flash()
    assert (drive / "fw.hex").read_text() == SMALL
    assert files == quick_files
    assert report.bytes_written == len(SMALL) and report.method == f"microbit hex -> {drive}"
    assert report.notes == ["drive re-mounted, no FAIL.TXT"]


def test_daplink_refusal_and_a_drive_that_never_goes_away(tmp_path, quick_files):
    image = tmp_path / "fw.hex"
    image.write_text(SMALL)
    drive = drive_dir(tmp_path)
    (drive / FAIL_FILE).write_text("The hex file cannot be decoded.\r\nType: user\r\n")
    refused = MicrobitDriveFlasher(image, "mb-1", drive=drive, present=remounting(True, False, True), poll=0.01)
    with pytest.raises(FlashError, match=r"^mb-1: DAPLink refused the image: The hex file cannot be decoded\. Type"):
        refused.flash()
    stuck = MicrobitDriveFlasher(image, "mb-1", drive=drive, timeout=0.1, poll=0.01)  # the real check: stays
    with pytest.raises(FlashError, match=r"did not go away within 0.1 s: DAPLink did not take fw.hex$"):
        stuck.flash()
