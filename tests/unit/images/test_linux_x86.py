"""The qemu_x86 image: builds, caches, and boots under QEMU (TCG) to a working MicroPython REPL.

Boot tests need qemu-system-x86_64 and apt access for the kernel package on first build; they
are skipped without QEMU. Every QEMU is started in its own process group and killed with it."""

from __future__ import annotations

import lzma
import subprocess
from pathlib import Path

import pytest

from harness.errors import BuildError
from harness.images import BuildContext, linux_x86


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


def test_unknown_kernel_package_is_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"linux-image-6\.1\.0-9999-amd64"):
        linux_x86.build(
            BuildContext(firmware_py=tmp_path), {"kernel_package": "linux-image-6.1.0-9999-amd64"}
        )


