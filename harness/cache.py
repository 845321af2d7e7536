"""Content-addressed build cache: an artifact is rebuilt only when its inputs change.

Builds run under a file lock so parallel pytest-xdist workers building the same image
wait for one another instead of racing, and land atomically (build in a temp dir, rename)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from filelock import FileLock

DONE_MARKER = ".complete"


def cache_root() -> Path:
    root = Path(os.environ.get("HIL_CACHE") or Path.home() / ".cache" / "hil")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _iter_files(path: Path) -> Iterable[Path]:
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                yield p
    elif path.is_file():
        yield path


def content_hash(inputs: Mapping[str, str | bytes | Path]) -> str:
    """sha256 over named inputs; a Path contributes every file below it (names and bytes)."""
    h = hashlib.sha256()
    for name in sorted(inputs):
        value = inputs[name]
        h.update(name.encode() + b"\0")
        if isinstance(value, Path):
            for f in _iter_files(value):
                rel = f.relative_to(value) if value.is_dir() else Path(f.name)
                h.update(str(rel).encode() + b"\0" + f.read_bytes() + b"\0")
        elif isinstance(value, bytes):
            h.update(value + b"\0")
        else:
            h.update(value.encode() + b"\0")
    return h.hexdigest()[:16]


def cached_build(
    kind: str, inputs: Mapping[str, str | bytes | Path], build: Callable[[Path], None]
) -> tuple[Path, str, bool]:
    """Return (directory, digest, was_cached). ``build(out_dir)`` fills a fresh directory."""
    digest = content_hash(inputs)
    base = cache_root() / kind
    base.mkdir(parents=True, exist_ok=True)
    final = base / digest
    with FileLock(str(base / f"{digest}.lock")):
        if (final / DONE_MARKER).exists():
            return final, digest, True
        if final.exists():
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=base))
        try:
            build(tmp)
            (tmp / DONE_MARKER).write_text(digest)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final, digest, False
