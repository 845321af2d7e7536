"""The 'none' builder: boards that need no image (native process, a device flashed elsewhere)."""

from __future__ import annotations

from harness.images import BuildContext, Image


def build(ctx: BuildContext, options: dict) -> Image:
    return Image(digest="none")
