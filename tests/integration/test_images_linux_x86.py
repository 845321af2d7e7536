"""The qemu_x86 image: builds, caches, and boots under QEMU (TCG) to a working MicroPython REPL.

Boot tests need qemu-system-x86_64 and apt access for the kernel package on first build; they
are skipped without QEMU. Every QEMU is started in its own process group and killed with it."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from harness.config.boards import find_board
from harness.images import BuildContext, Image, linux_x86
from harness.launch.qemu.cmdline import machine_command

BOOT_TIMEOUT = 90.0  # TCG boots take 4-60 s on a loaded 2-core machine
TIMEOUT = 15.0
BANNER = b"MicroPython "
PROMPT = b">>> "
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 missing")


class Guest:
    """One QEMU running the image, its ttyS0 on a pty opened with pyserial."""

    def __init__(self, image: Image, extra: list[str], kernel_params: list[str]) -> None:
        self.started = time.monotonic()
        # the board's own machine (targets/qemu_x86.toml), console on a pty, the test's devices
        command = machine_command(find_board("qemu_x86"), image.files, Path(tempfile.gettempdir()), kernel_params)
        self.proc = subprocess.Popen(
            [*command, "-serial", "pty", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so kill() can take QEMU's whole process group
        )
        try:
            self.port = serial.Serial(self._pty_path(), timeout=0.1)
        except BaseException:
            self._kill_qemu()
            raise
        self.buf = b""
        self.preamble = b""  # console output before init's ready marker

    def _pty_path(self) -> str:
        out = b""
        deadline = time.monotonic() + TIMEOUT
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                if m := re.search(rb"char device redirected to (/dev/pts/\d+)", out):
                    return m.group(1).decode()
        raise AssertionError(f"QEMU printed no pty path: {out.decode(errors='replace')}")

    def read_until(self, marker: bytes, timeout: float = TIMEOUT) -> bytes:
        """Everything up to and including marker; the rest stays buffered."""
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {marker!r} within {timeout} s; console tail: {self.buf[-500:]!r}")
            self.buf += self.port.read(max(1, self.port.in_waiting))
        head, _, self.buf = self.buf.partition(marker)
        return head + marker

    def read_exact(self, n: int, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {n} bytes within {timeout} s; console tail: {self.buf[-500:]!r}")
            self.buf += self.port.read(n - len(self.buf))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def raw_exec(self, code: str, timeout: float = TIMEOUT) -> tuple[bytes, bytes]:
        """Run code in the raw REPL (already entered); (stdout, stderr) as the protocol frames them."""
        self.write(code.encode() + b"\x04")
        self.read_until(b"OK", timeout)
        out = self.read_until(b"\x04", timeout)[:-1]
        err = self.read_until(b"\x04>", timeout)[:-2]
        return out, err

    def _kill_qemu(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)
        if self.proc.stdout:
            self.proc.stdout.close()

    def kill(self) -> None:
        try:
            self.port.close()
        finally:
            self._kill_qemu()


def boot(image: Image, extra: list[str], kernel_params: list[str]) -> Guest:
    """A guest at its first >>> prompt; one retry, since a loaded host sometimes stalls a boot."""
    for attempt in (1, 2):
        guest = Guest(image, extra, kernel_params)
        try:
            guest.preamble = guest.read_until(b"hil: ready", BOOT_TIMEOUT)[: -len(b"hil: ready")]
            guest.read_until(BANNER, TIMEOUT)
            guest.read_until(PROMPT, TIMEOUT)
            print(f"boot to prompt: {time.monotonic() - guest.started:.1f} s (attempt {attempt})")
            return guest
        except AssertionError:
            guest.kill()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fw = tmp_path_factory.mktemp("firmware_py")
    (fw / "hil_probe.py").write_text('def hello():\n    return "hil-probe-ok"\n')
    return fw


@pytest.fixture(scope="module")
def image(firmware: Path) -> Image:
    return linux_x86.build(BuildContext(firmware_py=firmware), {})


@pytest.fixture
def guest(image: Image) -> Iterator[Guest]:
    g = boot(
        image, ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"], []
    )
    try:
        yield g
    finally:
        g.kill()


# --- no QEMU needed ---------------------------------------------------------------------------










# --- build ------------------------------------------------------------------------------------




def test_build_is_cached_and_complete(image: Image, firmware: Path) -> None:
    again = linux_x86.build(BuildContext(firmware_py=firmware), {})
    assert again.cached and again.digest == image.digest
    assert again.files == image.files
    assert image.files["kernel"].read_bytes()[:4] == b"\x7fELF"
    assert image.info["kernel"].startswith("linux-image-6.1.0-")
    assert image.info["micropython"].startswith("1.")
    listing = subprocess.run(
        ["cpio", "-t", "-F", str(image.files["initrd"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    for path in ("init", "lib/hil/hil_probe.py", "usr/bin/python3.11", "usr/bin/micropython", "bin/busybox"):
        assert path in listing
    modules = {Path(p).name for p in listing if p.endswith(".ko")}
    assert {"virtio_net.ko", "slcan.ko", "can-raw.ko", "vcan.ko"} <= modules
    assert "e1000.ko" not in modules


def test_firmware_change_changes_digest(image: Image, tmp_path: Path) -> None:
    (tmp_path / "other.py").write_text("y = 2\n")
    assert linux_x86.build(BuildContext(firmware_py=tmp_path), {}).digest != image.digest


# Booting this image as a board (REPL, soft reset, Ctrl-C, network, CAN, snapshots) is covered
# through the harness itself in tests/test_qemu_x86.py.
