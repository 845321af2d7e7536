"""Fixtures for the harness's own tests."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from harness import procs

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent


def qemu_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("qemu-system"):
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.fixture
def no_leftovers():
    """Fails the test if it leaves a process of ours (or a new QEMU) running."""
    before = qemu_pids()
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (procs.live_pids() or qemu_pids() - before):
        time.sleep(0.05)
    leaked = qemu_pids() - before
    for pid in leaked:
        os.kill(pid, signal.SIGKILL)
    assert not procs.live_pids(), f"harness processes left running: {procs.live_pids()}"
    assert not leaked, f"QEMU processes left running: {leaked}"


def write_target(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(f'[board]\nname = "{name}"\n' + body)
    return path
