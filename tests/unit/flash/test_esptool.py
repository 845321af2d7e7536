"""Flashing backends.

Real: copying files over the raw REPL with on-board read-back hashes — sha256 on the unix port
(a real file system), the table-free CRC-32 on the QEMU micro:bit reached through its pty as a
plain serial device — a device unplugged mid-flash, and the QEMU micro:bit's HEX flashing (build +
boot + read-back). Unit-tested with stand-ins (no hardware here): esptool's command construction
and verification logic (plus real esptool parsing our command lines), UF2 and MICROBIT drive
copies and their verification."""

from __future__ import annotations

import json
import sys

import pytest

from harness.flash import FlashError, VerifyError, esptool, uf2

RP2040 = 0xE48BFF56

FAKE_ESPTOOL = """\
import json, os, sys
with open(os.environ["FAKE_ESPTOOL_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
mode, step = os.environ.get("FAKE_ESPTOOL_MODE", "ok"), sys.argv[sys.argv.index("--after") + 2]
print("esptool v5.6.0")
if mode == "no-connect":
    print("A fatal error occurred: Failed to connect to ESP32: No serial data received.")
    sys.exit(2)
if step == "write-flash":
    print("Wrote 1546240 bytes (1009342 compressed) at 0x00001000 in 23.1 seconds.")
    if mode != "no-hash":
        print("Hash of data verified.")
if step == "verify-flash":
    print("Verification failed (digest mismatch)." if mode == "bad-verify" else
          "Verification successful (digest matched).")
"""


@pytest.fixture
def fake_esptool(tmp_path, monkeypatch):
    script = tmp_path / "fake_esptool.py"
    script.write_text(FAKE_ESPTOOL)
    log = tmp_path / "esptool-calls.jsonl"
    monkeypatch.setenv("FAKE_ESPTOOL_LOG", str(log))
    image = tmp_path / "ESP32_GENERIC.bin"
    image.write_bytes(b"\xe9\x03\x02\x20" + bytes(4096))

    def plan(**kwargs) -> esptool.EsptoolPlan:
        return esptool.EsptoolPlan(port="/dev/ttyUSB0", image=image, command=[sys.executable, str(script)], **kwargs)

    plan.calls = lambda: [json.loads(line) for line in log.read_text().splitlines()]  # type: ignore[attr-defined]
    return plan


@pytest.mark.spawns
def test_esptool_commands_and_verification(no_leftovers, fake_esptool, monkeypatch):
    plan = fake_esptool(chip="esp32")
    report = esptool.flash(plan, "esp32-1")
    base = ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800", "--before", "default-reset"]
    assert fake_esptool.calls() == [
        [*base, "--after", "no-reset", "erase-flash"],
        [*base, "--after", "no-reset", "write-flash", "0x1000", str(plan.image)],
        [*base, "--after", "hard-reset", "verify-flash", "0x1000", str(plan.image)],
    ]
    assert report.bytes_written == 4100 and report.method == "esptool esp32@0x1000"
    assert fake_esptool(chip="esp32s3", erase=False).commands()[0][-2] == "0x0"  # S3/C3: image at 0

    monkeypatch.setenv("FAKE_ESPTOOL_MODE", "bad-verify")
    with pytest.raises(VerifyError, match=r"esp32-1: esptool verify-flash: flash does not match ESP32_GENERIC.bin: "
                                          r"Verification failed \(digest mismatch\)."):  # fmt: skip
        esptool.flash(plan, "esp32-1")
    monkeypatch.setenv("FAKE_ESPTOOL_MODE", "no-hash")
    with pytest.raises(VerifyError, match=r"write-flash did not confirm the written data"):
        esptool.flash(plan, "esp32-1")
    monkeypatch.setenv("FAKE_ESPTOOL_MODE", "no-connect")
    with pytest.raises(FlashError, match=r"^esp32-1: esptool erase-flash failed \(exit 2\): A fatal error occurred: "
                                         r"Failed to connect to ESP32: No serial data received.$"):  # fmt: skip
        esptool.flash(plan, "esp32-1")


def test_esptool_image_and_plan_mistakes(tmp_path, fake_esptool):
    uf2_file = tmp_path / "firmware.uf2"
    uf2_file.write_bytes(uf2.encode(b"\x00" * 100, 0x10000000, RP2040))
    with pytest.raises(FlashError, match=r"is not an ESP firmware image \(first byte 0x55, expected 0xe9\)"):
        esptool.check_image(uf2_file)
    with pytest.raises(FlashError, match=r"firmware .*nope.bin does not exist"):
        esptool.check_image(tmp_path / "nope.bin")
    with pytest.raises(FlashError, match=r"chip 'esp99' unknown"):
        fake_esptool(chip="esp99")
    with pytest.raises(FlashError, match=r"chip = \"auto\" needs an explicit esptool.offset"):
        fake_esptool(chip="auto")
    assert esptool.parse_offset("0x10000") == 0x10000
    with pytest.raises(FlashError, match=r"offset 'ten' is not an address"):
        esptool.parse_offset("ten")


@pytest.mark.spawns
def test_real_esptool_accepts_our_command_lines(no_leftovers, fake_esptool):
    """Every command we build is well-formed for the installed esptool: each gets as far as opening
    the (absent) port instead of stopping at a usage error."""
    plan = fake_esptool(chip="esp32")
    plan.command, plan.port = [sys.executable, "-m", "esptool"], "/dev/ttyHILNOPE"
    for argv in plan.commands():
        status, output = esptool._run(argv, 120)
        assert status == 2 and "Could not open /dev/ttyHILNOPE" in output, output


