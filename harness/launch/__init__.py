"""Launch kinds by name: a target file's ``[launch] kind`` picks the launcher that starts the board.

A launcher module registers itself with ``@register("kind")``; a new launch kind is one module
here plus its spec in harness/config/boards.py. Nothing outside this package asks which class a
launcher is: the optional abilities are on the Launcher interface (see base.py)."""

from __future__ import annotations

from harness.launch import process, serial  # noqa: F401 - the launch kinds this harness ships register themselves
from harness.launch.base import LaunchContext, Launcher
from harness.launch.qemu import launcher as _qemu  # noqa: F401
from harness.launch.registry import LAUNCHERS, make_launcher, register

__all__ = ["LAUNCHERS", "LaunchContext", "Launcher", "make_launcher", "register"]
