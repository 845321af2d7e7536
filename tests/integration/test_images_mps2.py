"""The mps2_an385 builder: a real MicroPython ELF from Debian's source, booted under QEMU.

The first run fetches the source and builds (~20-60 s); later runs hit the cache."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from harness.errors import BuildError
from harness.images import BuildContext, Image, mps2
from tests.conftest import REPO

FIRMWARE_PY = REPO / "firmware_py"
BOOT_TIMEOUT = 30.0  # generous: a loaded 2-core machine slows QEMU a lot


class Qemu:
    """qemu-system-arm on mps2-an385 with its UART on a pty; always killed as a process group."""

    def __init__(self, kernel: Path) -> None:
        self.proc = subprocess.Popen(
            ["qemu-system-arm", "-M", "mps2-an385", "-display", "none", "-monitor", "none",
             "-semihosting", "-serial", "pty", "-kernel", str(kernel)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        self.port = serial.Serial(self._pty_path(), timeout=0.05)

    def _pty_path(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 10
        seen = b""
        while time.monotonic() < deadline and b"\n" not in seen:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1024)
                if not chunk:
                    break
                seen += chunk
        m = re.search(rb"(/dev/pts/\d+)", seen)
        assert m, f"QEMU printed no pty path: {seen!r}"
        return m.group(1).decode()

    def read_until(self, token: bytes, timeout: float) -> bytes:
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and token not in buf:
            buf += self.port.read(4096)
        return buf

    def exec(self, line: str, timeout: float = 10.0) -> str:
        """Run one line in the friendly REPL (which echoes it) and return what it printed."""
        self.port.write(line.encode() + b"\r")
        out = self.read_until(b"\r\n>>> ", timeout).decode(errors="replace")
        assert out.endswith(">>> "), f"no prompt after {line!r}: {out!r}"
        return out.split("\r\n", 1)[1].rsplit("\r\n>>> ", 1)[0] if "\r\n" in out else ""

    def close(self) -> None:
        try:
            self.port.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe:
                    pipe.close()


@pytest.fixture(scope="module")
def firmware_py(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of firmware_py, so edits made to it while the tests run cannot change the digest."""
    snap = tmp_path_factory.mktemp("firmware_py")
    for f in FIRMWARE_PY.glob("*.py"):
        shutil.copy2(f, snap / f.name)
    return snap


@pytest.fixture(scope="module")
def image(firmware_py: Path) -> Image:
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed (Debian package qemu-system-arm)")
    return mps2.build(BuildContext(firmware_py=firmware_py), {})


@pytest.fixture
def qemu(image: Image) -> Iterator[Qemu]:
    q = Qemu(image.files["kernel"])
    try:
        yield q
    finally:
        q.close()


def boot(q: Qemu) -> bytes:
    # Ctrl-C stops anything running, Ctrl-B leaves raw REPL and prints the banner again
    q.port.write(b"\r\x03\x02")
    out = q.read_until(b">>> ", BOOT_TIMEOUT)
    assert b"MicroPython v1.25.0" in out and out.endswith(b">>> "), f"no banner/prompt: {out!r}"
    # the boot banner and the replies to the keys above arrive in any order: a marker that only
    # the output (not the echo) contains shows that everything before it has been read
    q.port.write(b"print('ready', 6 * 7)\r")
    sync = q.read_until(b"ready 42\r\n>>> ", BOOT_TIMEOUT)
    assert sync.endswith(b"ready 42\r\n>>> "), f"REPL did not settle: {sync!r}"
    return out


def test_build_gives_elf_and_second_build_is_cached(image: Image, firmware_py: Path) -> None:
    kernel = image.files["kernel"]
    assert kernel.is_file() and kernel.read_bytes()[:4] == b"\x7fELF"
    assert image.info["micropython_source"] == "1.25.0+ds-1"
    again = mps2.build(BuildContext(firmware_py=firmware_py), {})
    assert again.cached is True
    assert again.digest == image.digest and again.files["kernel"] == kernel


def test_boots_to_banner_with_frozen_module(qemu: Qemu) -> None:
    start = time.monotonic()
    banner = boot(qemu)
    print(f"banner after {time.monotonic() - start:.2f} s: {banner.splitlines()[-3]!r}")
    assert qemu.exec("print(6 * 7)") == "42"
    # there is no file system in this firmware, so a successful import means the module is frozen
    assert qemu.exec("import os; print(os.listdir('/'))") == "[]"
    assert qemu.exec("import hil_semihost; print(hil_semihost.__name__)") == "hil_semihost"


def test_semihost_exit_sets_qemu_status(qemu: Qemu) -> None:
    boot(qemu)
    qemu.exec("import hil_semihost")
    qemu.port.write(b"hil_semihost.write('via semihosting\\n'); hil_semihost.exit(3)\r")
    assert qemu.proc.wait(timeout=BOOT_TIMEOUT) == 3
    assert qemu.proc.stderr is not None
    assert b"via semihosting" in qemu.proc.stderr.read()  # SYS_WRITE0 lands on QEMU's stderr


def test_module_that_does_not_compile_is_named(tmp_path: Path, image: Image) -> None:
    (tmp_path / "good.py").write_text("x = 1\n")
    (tmp_path / "broken_mod.py").write_text("def f(:\n    pass\n")
    with pytest.raises(BuildError) as err:
        mps2.build(BuildContext(firmware_py=tmp_path, log=lambda _m: None), {})
    msg = str(err.value)
    assert "broken_mod.py" in msg and "line 1" in msg and "\n" not in msg












