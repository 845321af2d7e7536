"""The microbit_hex builder: files land in the HEX's file system, rebuilds hit the cache, and the image
boots in QEMU (-M microbit) with hil_info importable through the raw REPL."""

from __future__ import annotations

import ast
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import micropython_microbit_fs as mbfs
import pytest
import serial

from harness.errors import BuildError, ConfigError
from harness.images import BuildContext, Image, build_image
from tests.conftest import REPO

FIRMWARE_PY = REPO / "firmware_py"
QEMU = "qemu-system-arm"
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
# The guest's UART ring buffer holds 63 bytes and drops the rest: write small chunks with gaps.
CHUNK, GAP = 32, 0.002


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIL_CACHE", str(tmp_path / "cache"))


def _build(firmware_py: Path = FIRMWARE_PY, **options: object) -> Image:
    return build_image("microbit_hex", BuildContext(firmware_py, log=lambda _msg: None), options)


def test_build_puts_files_in_hex(tmp_path: Path) -> None:
    (tmp_path / "hil_info.py").write_bytes((FIRMWARE_PY / "hil_info.py").read_bytes())
    (tmp_path / "extra.py").write_text("X = 1\n")
    image = _build(tmp_path, files=["hil_info.py", "extra.py"])
    files = {f.name: f.content for f in mbfs.get_files(image.files["hex"].read_text())}
    assert files == {"hil_info.py": (tmp_path / "hil_info.py").read_bytes(), "extra.py": b"X = 1\n"}
    assert image.info["micropython"] == "1.9.2"


def test_second_build_is_cache_hit() -> None:
    first, second = _build(), _build()
    assert (first.cached, second.cached) == (False, True)
    assert first.digest == second.digest and first.files == second.files


def test_changed_file_rebuilds(tmp_path: Path) -> None:
    (tmp_path / "hil_info.py").write_text("A = 1\n")
    first = _build(tmp_path)
    (tmp_path / "hil_info.py").write_text("A = 2\n")
    second = _build(tmp_path)
    assert not second.cached and second.digest != first.digest


def test_too_big_file_names_file_and_free_space(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text("# " + "x" * 40_000 + "\n")
    with pytest.raises(BuildError, match=r"big\.py .*does not fit: \d+ B free"):
        _build(tmp_path, files=["big.py"])


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.py"):
        _build(tmp_path, files=["nope.py"])


# ---------------------------------------------------------------------------------------------
# QEMU


class Console:
    """Just enough of a raw-REPL client for this test: pyserial on QEMU's pty, paced writes."""

    def __init__(self, port: str) -> None:
        self.port = serial.Serial(port, 115200, timeout=0.05)

    def write(self, data: bytes) -> None:
        for i in range(0, len(data), CHUNK):
            self.port.write(data[i : i + CHUNK])
            self.port.flush()
            time.sleep(GAP)

    def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        buf, deadline = b"", time.monotonic() + timeout
        while marker not in buf:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {marker!r} within {timeout} s; got {buf[-300:]!r}")
            buf += self.port.read(4096)
        return buf

    def exec_raw(self, code: str) -> tuple[bytes, bytes]:
        """Run code in the raw REPL: reply is OK<out>\\x04<err>\\x04>."""
        self.write(code.encode() + b"\x04")
        reply = self.read_until(b"\x04>")
        assert reply.startswith(b"OK"), reply
        out, err, _ = reply[2:].split(b"\x04", 2)
        return out, err


def _pty_path(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> str:
    """QEMU prints 'char device redirected to /dev/pts/N (label serial0)' before the guest runs."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    text, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(deadline - time.monotonic()):
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            text += chunk
            if m := re.search(rb"(/dev/pts/\d+)", text):
                return m.group(1).decode()
    raise AssertionError(f"QEMU printed no pty path: {text!r}")


@pytest.fixture
def microbit() -> Iterator[Console]:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} not installed (Debian package qemu-system-arm)")
    hex_path = _build().files["hex"]
    cmd = [QEMU, "-M", "microbit", "-display", "none", "-monitor", "none", "-no-reboot",
           "-device", f"loader,file={hex_path}", "-serial", "pty"]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    console = None
    try:
        console = Console(_pty_path(proc))
        yield console
    finally:
        if console is not None:
            console.port.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def test_boots_and_imports_hil_info(microbit: Console) -> None:
    # The boot banner is lost if the pty is opened late, so ask for it: Ctrl-B reprints it.
    microbit.write(b"\r\x03\x02")
    banner = microbit.read_until(b'Type "help()" for more information.\r\n>>> ')
    assert b"MicroPython v1.9.2" in banner and b"micro:bit v1.1.1 with nRF51822" in banner
    microbit.write(b"\x01")
    microbit.read_until(RAW_PROMPT)
    out, err = microbit.exec_raw("import hil_info\nprint(repr(hil_info.info()), hil_info.echo(42))")
    assert err == b"", err.decode(errors="replace")
    info_repr, echoed = out.decode().strip().rsplit(" ", 1)
    info = ast.literal_eval(info_repr)
    assert echoed == "42"
    assert (info["impl"], info["version"], info["platform"]) == ("micropython", (1, 9, 2), "microbit")
    assert info["mem_free"] > 0
