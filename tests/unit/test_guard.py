"""The unit guard (tests/unit/conftest.py) has teeth: no QEMU, no image build, no unmarked spawn."""

from __future__ import annotations

import subprocess

import pytest

from harness import board, cache, images, procs
from harness.images import linux_x86, microbit, mps2


def test_unmarked_unit_test_cannot_spawn():
    with pytest.raises(AssertionError, match=r"procs.spawn\(\['sleep', '5'\]\) in a test not marked spawns"):
        procs.spawn(["sleep", "5"])
    assert not procs.live_pids()


@pytest.mark.spawns
def test_marked_unit_test_spawns_helpers_but_never_qemu():
    proc = procs.spawn(["true"])
    assert proc.wait(10) == 0
    procs.forget(proc)
    with pytest.raises(AssertionError, match=r"procs.spawn of qemu-system-arm"):
        procs.spawn(["qemu-system-arm", "-M", "microbit"])
    with pytest.raises(AssertionError, match=r"a unit test started /usr/bin/qemu-system-x86_64"):
        subprocess.run(["/usr/bin/qemu-system-x86_64", "--version"], capture_output=True)


def test_image_builds_are_refused_wherever_they_were_imported():
    for build in (images.build_image, board.build_image):
        with pytest.raises(AssertionError, match=r"harness.images.build_image\('microbit'\) called"):
            build("microbit", None, {})
        assert build("none", None, {}).digest == "none"  # the builder of boards that need no image
    for build in (cache.cached_build, microbit.cached_build, mps2.cached_build, linux_x86.cached_build):
        with pytest.raises(AssertionError, match=r"harness.cache.cached_build called"):
            build("x", {}, lambda out: None)
