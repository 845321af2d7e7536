"""Unit tests need no board, no image and no QEMU. This guard makes that hold: in a unit test,
harness.procs.spawn refuses to start anything (unless the test is marked ``spawns``: a helper
process such as ``sleep`` or a stand-in tool), nothing may start a qemu-system-* binary, and
building or fetching an image (harness.images.build_image, harness.cache.cached_build) fails."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness import cache, images, procs

GUARD = "unit tests start no board, no QEMU and build no image"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spawns: this unit test starts helper processes (never QEMU or a board)")


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{GUARD}: {what} called; move the test to tests/integration/")

    return refuse


def _is_qemu(argv) -> bool:
    if isinstance(argv, (str, bytes, os.PathLike)):
        argv = [argv]
    first = os.fsdecode(next(iter(argv), ""))
    return os.path.basename(first.split()[0] if first else "").startswith("qemu-system")


@pytest.fixture(autouse=True)
def _unit_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    spawns = request.node.get_closest_marker("spawns") is not None
    real_spawn, real_popen_init = procs.spawn, subprocess.Popen.__init__

    def spawn(argv, *args, **kwargs):
        if not spawns:
            raise AssertionError(f"{GUARD}: procs.spawn({list(argv)!r}) in a test not marked spawns")
        if _is_qemu(argv):
            raise AssertionError(f"{GUARD}: procs.spawn of {next(iter(argv))}")
        return real_spawn(argv, *args, **kwargs)

    def popen_init(self, args, *rest, **kwargs):
        if _is_qemu(args):
            raise AssertionError(f"{GUARD}: a unit test started {args if isinstance(args, str) else next(iter(args))}")
        return real_popen_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(procs, "spawn", spawn)
    monkeypatch.setattr(subprocess.Popen, "__init__", popen_init)
    # every module that imported the builders by name gets the refusing stand-in too
    real_build_image = images.build_image

    def build_image(builder, ctx, options):
        if builder == "none":  # boards that need no image (a process, a serial device)
            return real_build_image(builder, ctx, options)
        return _refuse(f"harness.images.build_image({builder!r})")()

    refusals = {images.build_image: build_image,
                cache.cached_build: _refuse("harness.cache.cached_build")}  # fmt: skip
    for name, module in list(sys.modules.items()):
        if name == "harness" or name.startswith("harness."):
            for attr, value in list(vars(module).items()):
                for real, stand_in in refusals.items():
                    if value is real:
                        monkeypatch.setattr(module, attr, stand_in)
