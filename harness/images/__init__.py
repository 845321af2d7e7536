"""Image builders: turn a board's [image] section into files QEMU (or a flasher) can use.

Each builder module exposes ``build(ctx: BuildContext, options: dict) -> Image`` and is
registered in BUILDERS by the name a target file uses in ``image.builder``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.cache import disk_errors
from harness.errors import ConfigError

# builder name -> module under harness.images
BUILDERS: dict[str, str] = {
    "none": "harness.images.none",
    "mps2_micropython": "harness.images.mps2",
    "microbit_hex": "harness.images.microbit",
    "linux_micropython": "harness.images.linux_x86",
    "prebuilt": "harness.images.prebuilt",
}


def _print(msg: str) -> None:
    print(msg, flush=True)


@dataclass
class BuildContext:
    firmware_py: Path  # directory of on-board modules to bake in
    log: Callable[[str], None] = _print  # progress lines for long steps
    target: Path | None = None  # the board's target file, when known (relative image paths start at its folder)


@dataclass
class Image:
    """What a builder produced. ``files`` names artifacts for the launcher (e.g. kernel, initrd)."""

    digest: str
    files: dict[str, Path] = field(default_factory=dict)
    cached: bool = False
    info: dict[str, str] = field(default_factory=dict)


def build_image(builder: str, ctx: BuildContext, options: dict) -> Image:
    if builder not in BUILDERS:
        raise ConfigError(f"unknown image builder {builder!r}; known: {', '.join(sorted(BUILDERS))}")
    module = importlib.import_module(BUILDERS[builder])
    with disk_errors(doing=f"building the {builder} image"):  # a full /tmp, ...: one line too
        return module.build(ctx, options)
