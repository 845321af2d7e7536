"""Remote devices, all real processes on loopback: a QEMU micro:bit's pty exported by ser2net
(RFC 2217) and by a labgrid coordinator + exporter, flashed and smoke-tested through them; the
RFC 2217 link surviving a dropped connection; labgrid places always given back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest


def helper_processes(mark: bytes) -> set[int]:
    """ser2net and labgrid processes started from this test (they inherit its marker variable)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                if not (b"ser2net" in cmdline.split(b" ")[0] or b"labgrid-coordinator" in cmdline
                        or b"labgrid-exporter" in cmdline):  # fmt: skip
                    continue
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def no_stray_helpers(monkeypatch):
    """Fails the test if it leaves a ser2net or labgrid process behind (other runs on the machine are
    told apart by an environment variable every process started here inherits)."""
    token = uuid.uuid4().hex
    monkeypatch.setenv("HIL_TEST_HELPERS", token)
    mark = f"HIL_TEST_HELPERS={token}".encode()
    yield
    deadline = time.monotonic() + 5
    while helper_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not helper_processes(mark), f"left running: {helper_processes(mark)}"


