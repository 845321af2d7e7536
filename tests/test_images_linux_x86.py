"""The qemu_x86 image: builds, caches, and boots under QEMU (TCG) to a working MicroPython REPL.

Boot tests need qemu-system-x86_64 and apt access for the kernel package on first build; they
are skipped without QEMU. Every QEMU is started in its own process group and killed with it."""

from __future__ import annotations

import lzma
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from harness.errors import BuildError
from harness.images import BuildContext, Image, linux_x86

BOOT_TIMEOUT = 90.0  # TCG boots take 4-60 s on a loaded 2-core machine
TIMEOUT = 15.0
BANNER = b"MicroPython "
PROMPT = b">>> "
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Guest:
    """One QEMU running the image, its ttyS0 on a pty opened with pyserial."""

    def __init__(self, image: Image, extra: list[str], cmdline: str) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*linux_x86.qemu_args(image, cmdline), "-serial", "pty", *extra],
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


def boot(image: Image, extra: list[str], cmdline: str) -> Guest:
    """A guest at its first >>> prompt; one retry, since a loaded host sometimes stalls a boot."""
    for attempt in (1, 2):
        guest = Guest(image, extra, cmdline)
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
        image, ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"], linux_x86.kernel_cmdline()
    )
    try:
        yield g
    finally:
        g.kill()


# --- no QEMU needed ---------------------------------------------------------------------------


def test_kernel_cmdline() -> None:
    assert linux_x86.kernel_cmdline() == "console=ttyS0 quiet loglevel=0 panic=-1"
    line = linux_x86.kernel_cmdline("192.168.7.2/24", "192.168.7.1", can=True)
    assert line.split()[-3:] == ["hil.ip=192.168.7.2/24", "hil.gw=192.168.7.1", "hil.can=1"]


def test_extract_vmlinux_skips_false_magic() -> None:
    elf = b"\x7fELF" + bytes(range(256)) * 64
    blob = (
        b"junk" + linux_x86.XZ_MAGIC + b"not a stream" + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"tail"
    )
    assert linux_x86.extract_vmlinux(blob) == elf
    with pytest.raises(BuildError):
        linux_x86.extract_vmlinux(b"no kernel here")


def test_cpio_layout(tmp_path: Path) -> None:
    tree = linux_x86.Tree()
    tree.file("lib/hil/a.py", b"x = 1\n")
    tree.symlink("bin/sh", "/bin/busybox")
    tree.write_cpio(tmp_path / "t.cpio")
    listing = subprocess.run(
        ["cpio", "-t", "-F", str(tmp_path / "t.cpio")], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    assert listing == ["bin", "bin/sh", "lib", "lib/hil", "lib/hil/a.py"]


def test_firmware_files_all_or_freeze_list(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    for name in ("a.py", "b.py", "pkg/c.py", "notes.txt"):
        (tmp_path / name).write_text("x = 1\n")
    ctx = BuildContext(firmware_py=tmp_path)
    assert set(linux_x86.firmware_files(ctx, {})) == {"a.py", "b.py", "pkg/c.py"}
    assert set(linux_x86.firmware_files(ctx, {"freeze": ["a.py"]})) == {"a.py"}
    with pytest.raises(BuildError, match=r"missing\.py"):
        linux_x86.firmware_files(ctx, {"freeze": ["missing.py"]})


# --- build ------------------------------------------------------------------------------------


def test_unknown_kernel_package_is_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"linux-image-6\.1\.0-9999-amd64"):
        linux_x86.build(
            BuildContext(firmware_py=tmp_path), {"kernel_package": "linux-image-6.1.0-9999-amd64"}
        )


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
