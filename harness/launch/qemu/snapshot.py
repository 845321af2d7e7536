"""VM snapshots for fast board start: the first cold boot saves the machine state once
MicroPython is up (QEMU migration to a file); later instances start from it with
`-incoming defer` + migrate-incoming, which skips the kernel and init entirely.

The file is keyed by everything that shapes the guest's state: image digest, QEMU version,
machine and device arguments, guest network settings. A restore that fails (stale format, a
device mismatch) deletes the file, says so, and falls back to a cold boot."""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.cache import cache_root
from harness.launch.qemu.qmp import Qmp


@functools.cache
def qemu_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


@dataclass
class Snapshot:
    path: Path

    @classmethod
    def for_config(cls, board: str, binary: str, shape: list[str]) -> Snapshot:
        """``shape``: the QEMU arguments and guest settings that must match between save and restore."""
        key = hashlib.sha256("\0".join([qemu_version(binary), *shape]).encode()).hexdigest()[:16]
        directory = Path(os.environ.get("HIL_SNAPSHOTS") or cache_root() / "snapshots")
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / f"{board}-{key}.vmstate")

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def lock(self) -> FileLock:
        return FileLock(str(self.path) + ".lock")

    def save(self, qmp: Qmp, timeout: float = 60.0) -> None:
        """Pause, stream the state to the file, resume. Atomic: a half-written file never counts."""
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        qmp.cmd("stop")
        try:
            qmp.cmd("migrate", uri=f"exec:cat > {shlex.quote(str(tmp))}")
            qmp.wait_migration(timeout)
            tmp.rename(self.path)
        finally:
            tmp.unlink(missing_ok=True)
            qmp.cmd("cont")

    def restore(self, qmp: Qmp, timeout: float = 60.0) -> None:
        """On a QEMU started with `-incoming defer`."""
        qmp.cmd("migrate-incoming", uri=f"exec:cat {shlex.quote(str(self.path))}")
        qmp.wait_migration(timeout)
        qmp.cmd("cont")  # saved paused, so it restores paused

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
