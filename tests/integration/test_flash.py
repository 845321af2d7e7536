"""Flashing backends.

Real: copying files over the raw REPL with on-board read-back hashes — sha256 on the unix port
(a real file system), the table-free CRC-32 on the QEMU micro:bit reached through its pty as a
plain serial device — a device unplugged mid-flash, and the QEMU micro:bit's HEX flashing (build +
boot + read-back). Unit-tested with stand-ins (no hardware here): esptool's command construction
and verification logic (plus real esptool parsing our command lines), UF2 and MICROBIT drive
copies and their verification."""

from __future__ import annotations

import ast
import json
import re
import textwrap
import zlib
from pathlib import Path

import pytest

from harness.board import Board
from harness.config.boards import find_board
from harness.config.labs import load_lab
from harness.flash import FlashError, VerifyError, esptool, microbit
from harness.flash.fs import FsFlasher, default_chunk, host_digest, load_files
from harness.lab.tray import Reporter, flash_only
from harness.paths import resource
from harness.testing.emulated import EmulatedDevice
from tests.conftest import REPO

FIRMWARE_PY = resource("firmware_py")

BLOB = bytes(range(256)) * 8 + b"\x00\r\n\x04\x03'\"\\ end"  # every byte value, REPL control bytes too


@pytest.fixture
def native(tmp_path):
    with Board(find_board("native", REPO / "targets"), log_dir=tmp_path) as board:
        yield board


def test_copy_to_unix_port_is_verified_with_sha256_on_the_board(no_leftovers, native):
    files = [*load_files(["hil_info.py", "hil_fs.py"], FIRMWARE_PY), ("blob.bin", BLOB), ("lib/extra.py", b"X = 1\n")]
    seen: list[tuple[int, int]] = []
    flasher = FsFlasher(native, progress=lambda done, total: seen.append((done, total)))
    report = flasher.flash(files)
    assert flasher.kind == "sha256" and flasher.has_rename
    total = sum(len(d) for _, d in files)
    assert report.bytes_written == total and seen[-1] == (total, total)
    assert [f.digest for f in report.files] == [host_digest("sha256", d) for _, d in files]
    # what the board reads back is byte for byte what was sent; no temporary files are left
    assert native.eval("open('blob.bin', 'rb').read()") == BLOB
    assert native.eval("__import__('lib.extra').extra.X") == 1
    assert not [n for n in native.eval("__import__('os').listdir()") if n.endswith(".hil-new")]
    # unchanged files are left alone unless forced
    again = flasher.flash(files)
    assert again.bytes_written == 0 and not any(f.written for f in again.files)
    assert flasher.flash(files[2:3], force=True).bytes_written == len(BLOB)


def test_writes_are_chunked_within_the_bound(no_leftovers, native, monkeypatch):
    sent = bytearray()
    send = native.console.send
    monkeypatch.setattr(native.console, "send", lambda data: (sent.extend(data), send(data))[1])
    FsFlasher(native, chunk=100).flash([("c.bin", BLOB)])
    calls = re.findall(rb"_hil_k\((b'.*?'|b\".*?\"), (\d+)\)\x04", bytes(sent), re.S)
    sizes = [len(ast.literal_eval(m.decode("latin-1"))) for m, _ in calls]
    assert sizes == [int(n) for _, n in calls]
    assert sum(sizes) == len(BLOB) and max(sizes) == 100
    with pytest.raises(FlashError, match=r"chunk size 8 out of range 16..4096"):
        FsFlasher(native, chunk=8)
    assert default_chunk(10 * 1024) == 256 and default_chunk(140 * 1024) == 2048


class LossyLink:
    """The real board behind a link that damages the code of chosen writes on the way (as a paced UART
    behind a busy network does): ``drop`` loses bytes, ``flip`` changes one byte, same length."""

    def __init__(self, board, damage: dict[int, str]) -> None:
        self.board, self.damage, self.writes = board, damage, 0
        self.name, self.facts, self.repl = board.name, board.facts, board.repl

    def exec(self, code: str, timeout: float | None = None) -> str:
        if code.startswith("_hil_k("):
            self.writes += 1
            how = self.damage.pop(self.writes, None)
            if how == "drop":
                code = code[:20] + code[23:]
            elif how == "flip":
                code = code[:12] + ("1" if code[12] != "1" else "2") + code[13:]
        return self.board.exec(code, timeout)

    def eval(self, expression: str, timeout: float | None = None):
        return self.board.eval(expression, timeout)


def test_damage_on_the_link_is_repaired_and_reported(no_leftovers, native):
    text = b"# " + b"0123456789" * 30 + b"\n"
    link = LossyLink(native, {2: "drop", 5: "flip"})
    report = FsFlasher(link, chunk=64).flash([("lossy.py", text)])
    assert not link.damage  # both damaged writes happened
    assert report.notes == ["link damage repaired: 1 resends, 1 file rewrites"]
    assert native.eval("open('lossy.py', 'rb').read()") == text
    always = LossyLink(native, {n: "flip" for n in range(1, 100)})
    with pytest.raises(VerifyError, match=r"lossy.py reads back as 303 B sha256:\w+, but 303 B sha256:\w+ were written "
                                          r"\(3 attempts\): the copy on the board is corrupt; the previous lossy.py "
                                          r"is kept"):  # fmt: skip
        FsFlasher(always, chunk=64).flash([("lossy.py", text)], force=True)
    assert native.eval("open('lossy.py', 'rb').read()") == text  # rename-into-place: the good copy survives


def test_a_corrupted_copy_is_caught_by_the_read_back(no_leftovers, native):
    flasher = FsFlasher(native)
    flasher.flash([("main.py", b"print('hello')\n")])
    native.exec("f = open('main.py', 'r+b')\nf.seek(7)\nf.write(b'j')\nf.close()")  # one byte flips
    with pytest.raises(VerifyError) as info:
        flasher.verify([("main.py", b"print('hello')\n")])
    want = host_digest("sha256", b"print('hello')\n")
    assert re.search(rf"main.py on the board is 15 B (sha256:\w+), expected 15 B {want}$", str(info.value))
    assert re.search(r"is 15 B (sha256:\w+)", str(info.value)).group(1) != want
    with pytest.raises(VerifyError, match=r"absent.py is not on the board \(3 B expected\)"):
        flasher.verify([("absent.py", b"abc")])




@pytest.fixture
def microbit_device(tmp_path):
    with EmulatedDevice("microbit", log_dir=tmp_path / "emulator") as device:
        yield device


def microbit_lab(tmp_path: Path, port: str, files: list[str]):
    path = tmp_path / "lab-flash.toml"
    path.write_text(textwrap.dedent(f"""\
        [lab]
        name = "flash"
        [[device]]
        name = "mb"
        port = "{port}"
        files = {json.dumps(files)}
        console = {{ write_chunk = 16, write_gap_ms = 4, raw_paste = false }}
        capabilities = {{ fs = true, heap_kb = 10 }}
        expect_version = "1.9.2"
        """))
    return load_lab(path)


def test_copy_over_a_serial_port_without_hashlib_uses_crc32_on_the_board(no_leftovers, microbit_device, tmp_path):
    from harness.lab.tray import open_board

    lab = microbit_lab(tmp_path, microbit_device.port, ["hil_info.py"])
    board = open_board(lab.devices[0], microbit_device.port, tmp_path)
    try:
        flasher = FsFlasher(board)
        report = flasher.flash([("hil_info.py", (FIRMWARE_PY / "hil_info.py").read_bytes()), ("blob.bin", BLOB)],
                               force=True)  # fmt: skip
        assert flasher.kind == "crc32py" and not flasher.has_rename  # micro:bit: no hashlib, flat FS
        assert flasher.chunk == default_chunk(board.facts.heap_bytes) < 300
        assert report.files[1].digest == f"crc32:{zlib.crc32(BLOB):08x}"
        board.exec("_f = open('blob.bin', 'rb')")  # read back in pieces: a 10 KB heap
        back = b"".join(iter(lambda: board.eval("_f.read(256)"), b""))
        board.exec("_f.close()")
        assert back == BLOB
        blob_only = flasher.flash([("blob.bin", BLOB[:2048])], force=True)  # same payload as the RFC 2217 figure
        print(f"\nfs flash over pty (micro:bit): {blob_only.throughput / 1024:.1f} KiB/s")
        board.exec("import os\nos.remove('blob.bin')")
    finally:
        board.stop()


class UnplugAfterFirstChunk(Reporter):
    def __init__(self, device: EmulatedDevice) -> None:
        self.device, self.done = device, False

    def progress(self, name: str, done: int, total: int) -> None:
        if done and not self.done:
            self.done = True
            self.device.unplug()  # QEMU gone: its pty closes, as a pulled USB cable


def test_device_unplugged_mid_flash_is_one_line_error_and_no_success(no_leftovers, microbit_device, tmp_path):
    big = tmp_path / "big.py"
    big.write_text("# " + "x" * 60 + "\n" * 1 + ("pass\n" * 600))
    lab = microbit_lab(tmp_path, microbit_device.port, [str(big)])
    reporter = UnplugAfterFirstChunk(microbit_device)
    result = flash_only(lab, lab.devices[0], tmp_path / "out", reporter, force=True)
    assert reporter.done
    assert result.verdict == "ERROR" and result.flash is None  # no partial success reported
    problem = result.problem
    assert "\n" not in problem
    size = big.stat().st_size
    assert problem.startswith("mb: flashing big.py stopped after "), problem
    assert re.match(rf"mb: flashing big.py stopped after (\d+) of {size} B \(big.py on the board is incomplete\): "
                    r"writing big.py: .*(went away|disappeared)", problem), problem
    assert 0 < int(re.search(r"after (\d+)", problem).group(1)) < size


def test_qemu_microbit_hex_flash_is_verified_on_the_board(no_leftovers, tmp_path):
    """The QEMU micro:bit's flashing: a HEX built with the files, booted, files read back by CRC."""
    board, report = microbit.boot_qemu(["hil_info.py", "hil_fs.py"], log_dir=tmp_path)
    try:
        assert [f.name for f in report.files] == ["hil_info.py", "hil_fs.py"]
        assert report.files[0].digest == f"crc32:{zlib.crc32((FIRMWARE_PY / 'hil_info.py').read_bytes()):08x}"
        with pytest.raises(VerifyError, match=r"hil_info.py on the board is 444 B crc32:\w+, expected 3 B"):
            FsFlasher(board).verify([("hil_info.py", b"old")])
    finally:
        board.stop()


# --- micro:bit HEX handling ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def microbit_hex() -> Path:
    from harness.board import Board as _Board

    b = _Board(find_board("microbit", REPO / "targets"), log=lambda m: None)
    try:
        return b.build().files["hex"]
    finally:
        b.stop()


def test_hex_checks_and_its_files(microbit_hex, tmp_path):
    text = microbit_hex.read_text()
    assert microbit.check_hex(text) > 200_000
    assert [name for name, _ in microbit.hex_files(text)] == ["hil_info.py", "hil_fs.py", "hil_paste.py"]
    lines = text.splitlines()
    broken = [*lines[:10], lines[10][:-2] + ("00" if lines[10][-2:] != "00" else "01"), *lines[11:]]
    with pytest.raises(FlashError, match=r"line 11: bad checksum"):
        microbit.check_hex("\n".join(broken))
    with pytest.raises(FlashError, match=r"no end-of-file record: the file is truncated"):
        microbit.check_hex("\n".join(lines[:-3]))


class FakeDrive:
    """A directory standing in for a USB mass-storage drive whose presence flips as a device's would."""

    def __init__(self, path: Path, marker: str, gone_when: callable) -> None:
        self.path, self.marker, self.gone_when = path, marker, gone_when
        path.mkdir()
        (path / marker).write_text("")
        self.checks = 0

    def present(self, drive: Path) -> bool:
        self.checks += 1
        return not self.gone_when()


def test_microbit_drive_copy_waits_for_remount_and_reads_fail_txt(microbit_hex, tmp_path):
    copied = tmp_path / "MICROBIT" / microbit_hex.name
    state = {"remounted": False}

    def gone() -> bool:  # DAPLink: drive vanishes once the file has landed, then comes back
        if copied.exists() and copied.stat().st_size == microbit_hex.stat().st_size and not state["remounted"]:
            state["remounted"] = True
            return True
        return False

    drive = FakeDrive(tmp_path / "MICROBIT", microbit.DETAILS_FILE, gone)
    flasher = microbit.MicrobitDriveFlasher(microbit_hex, "mb", drive.path, timeout=5, present=drive.present, poll=0)
    report, files = flasher.flash()
    assert copied.read_bytes() == microbit_hex.read_bytes()
    assert report.notes == ["drive re-mounted, no FAIL.TXT"]
    assert [n for n, _ in files] == ["hil_info.py", "hil_fs.py", "hil_paste.py"]

    (drive.path / microbit.FAIL_FILE).write_text("The hex file cannot be decoded.\r\nType: user\r\n")
    state["remounted"] = False
    copied.unlink()
    with pytest.raises(FlashError, match=r"mb: DAPLink refused the image: The hex file cannot be decoded. Type: user$"):
        flasher.flash()


def test_microbit_drive_that_never_takes_the_file(microbit_hex, tmp_path):
    drive = FakeDrive(tmp_path / "MICROBIT", microbit.DETAILS_FILE, lambda: False)
    flasher = microbit.MicrobitDriveFlasher(microbit_hex, "mb", drive.path, timeout=0.2, present=drive.present,
                                            poll=0.01)  # fmt: skip
    with pytest.raises(FlashError, match=r"did not go away within 0.2 s: DAPLink did not take"):
        flasher.flash()
    with pytest.raises(FlashError, match=r"is not a MICROBIT drive \(no DETAILS.TXT\); fix 'drive'"):
        microbit.MicrobitDriveFlasher(microbit_hex, "mb", tmp_path).flash()


# --- UF2 -----------------------------------------------------------------------------------------------------










# --- esptool -------------------------------------------------------------------------------------------------










def test_tray_runs_esptool_on_the_resolved_port_then_checks_the_board(no_leftovers, microbit_device, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    """The tray's esptool path with a stand-in esptool (no ESP32 here); the board that answers
    afterwards is the QEMU micro:bit on the same port."""
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\xe9" + bytes(1000))
    calls = []

    def fake_run(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append(argv)
        return 0, f"{esptool.WRITE_OK}\n{esptool.VERIFY_OK}\n"

    monkeypatch.setattr(esptool, "_run", fake_run)
    path = tmp_path / "lab-esp.toml"
    path.write_text(textwrap.dedent(f"""\
        [[device]]
        name = "esp"
        port = "{microbit_device.port}"
        flasher = "esptool"
        firmware = "fw.bin"
        files = []
        esptool = {{ chip = "esp32s3", baud = 921600 }}
        console = {{ write_chunk = 16, write_gap_ms = 4, raw_paste = false }}
        """))
    lab = load_lab(path)
    result = flash_only(lab, lab.devices[0], tmp_path / "out", Reporter())
    assert result.verdict == "PASS", result.problem
    assert [argv[argv.index("--after") + 2] for argv in calls] == ["erase-flash", "write-flash", "verify-flash"]
    assert calls[1][-3:] == ["write-flash", "0x0", str(image)]
    assert ["--port", microbit_device.port, "--baud", "921600"] == calls[1][calls[1].index("--port"):][:4]
    assert result.flash.method == "esptool esp32s3@0x0" and result.version == "1.9.2"
