"""Launch kinds by name: the registry and ``make_launcher``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.config.boards import BoardSpec
from harness.errors import ConfigError
from harness.images import Image
from harness.launch.base import LaunchContext, Launcher

LauncherFactory = Callable[[BoardSpec, LaunchContext], Launcher]
LAUNCHERS: dict[str, LauncherFactory] = {}


def register(kind: str) -> Callable[[LauncherFactory], LauncherFactory]:
    def add(factory: LauncherFactory) -> LauncherFactory:
        LAUNCHERS[kind] = factory
        return factory

    return add


def make_launcher(
    spec: BoardSpec, image: Image, workdir: Path, firmware_py: Path, log: Callable[[str], None] = print
) -> Launcher:
    factory = LAUNCHERS.get(spec.launch.kind)
    if factory is None:
        raise ConfigError(
            f"{spec.path}: key 'launch.kind' is {spec.launch.kind!r}; no launcher is registered for it "
            f"(known: {', '.join(sorted(LAUNCHERS))})"
        )
    return factory(spec, LaunchContext(image, workdir, firmware_py, log))
