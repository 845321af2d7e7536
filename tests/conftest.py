"""Fixtures for the harness's own tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pygal  # noqa: F401 - see below
import pytest
from serial.tools.list_ports_common import ListPortInfo

from harness import procs

# pygal (the HTML report's charts) imports the importlib_metadata backport, which removes the
# standard library's distribution finder from sys.meta_path and adds its own. A test that imported
# pygal first inside pytester (which restores sys.meta_path afterwards) left the process with no
# finder at all: every later importlib.metadata lookup in that worker failed (psycopg, the unix
# port's files). Imported here, before any snapshot, the backport's finder is part of every one.

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
# the user's image cache, fixed before pytester gives its subprocesses a fresh HOME
USER_CACHE = Path(os.environ.get("HIL_CACHE") or Path.home() / ".cache" / "hil")


@pytest.fixture(autouse=True)
def _user_image_cache(monkeypatch):
    """pytester runs get a fresh HOME: without this every one would fetch the Debian sources and
    build the firmware again. Tests that want an empty cache set HIL_CACHE themselves."""
    monkeypatch.setenv("HIL_CACHE", str(USER_CACHE))


def qemu_pids(parent: int | None = None) -> set[int]:
    """Running QEMUs (only the children of ``parent`` when given: other runs may share the machine)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if not (entry / "comm").read_text().startswith("qemu-system"):
                    continue
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent is None or ppid == parent:
                pids.add(int(entry.name))
    return pids


@pytest.fixture
def no_leftovers():
    """Fails the test if it leaves a process of ours (or a new QEMU) running."""
    before = qemu_pids(os.getpid())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (procs.live_pids() or qemu_pids(os.getpid()) - before):
        time.sleep(0.05)
    leaked = qemu_pids(os.getpid()) - before
    for pid in leaked:
        os.kill(pid, signal.SIGKILL)
    assert not procs.live_pids(), f"harness processes left running: {procs.live_pids()}"
    assert not leaked, f"QEMU processes left running: {leaked}"


def write_target(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(f'[board]\nname = "{name}"\n' + body)
    return path


def usb_port(device: str, vid: int | None, pid: int | None, serial: str | None = None,
             location: str | None = None) -> ListPortInfo:  # fmt: skip
    """pyserial's own port record, filled in as list_ports fills it for a USB CDC device."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number, info.location = vid, pid, serial, location
    info.description = "test port"
    return info


@contextmanager
def tmpfs(path: Path, options: str):
    """A tmpfs mounted at ``path`` for the block (e.g. ``size=256k`` for a full disk); the test is
    skipped where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount_ro(path: Path) -> None:
    """Make a tmpfs from tmpfs() read-only (root ignores permission bits: only a mount is read-only)."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
