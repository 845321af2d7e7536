"""Content-addressed build cache: an artifact is rebuilt only when its inputs change.

Builds run under a file lock so parallel pytest-xdist workers building the same image
wait for one another instead of racing, and land atomically (build in a temp dir, rename).

A hit needs no write (no lock file either): a read-only cache that holds the entry works. A miss on
a read-only cache, or a full disk during a build, is one CacheError (a BuildError by the time it
leaves harness.images) naming the path and the fix, and leaves no partial output behind."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from filelock import FileLock

from harness.errors import BuildError

DONE_MARKER = ".complete"
# errors of the disk under the cache (not of the build's own logic): reported as one line with a fix
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _root_path() -> Path:
    return Path(os.environ.get("HIL_CACHE") or Path.home() / ".cache" / "hil")


def cache_root() -> Path:
    root = _root_path()
    with disk_errors(root):
        root.mkdir(parents=True, exist_ok=True)
    return root


def is_disk_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


class CacheError(BuildError):
    """A disk problem under the cache (read-only, full, no permission). Its message is one line
    naming the path, the errno text and the fix (an infrastructure error, like any build failure)."""


def disk_error(exc: OSError, where: Path | str | None = None, doing: str = "") -> CacheError:
    """One line for a disk problem: the path, the errno text and what to do about it."""
    path = exc.filename or where or _root_path()
    path = os.fsdecode(path) if isinstance(path, bytes) else path
    text = exc.strerror or str(exc)
    root = _root_path()
    in_cache = Path(os.path.abspath(path)).is_relative_to(os.path.abspath(root))
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free space on that disk"
        fix += f", or set HIL_CACHE to a directory on a disk with room (cache: {root})" if in_cache else ""
    else:
        fix = "make it writable"
        fix += f", or set HIL_CACHE to a writable directory (cache: {root})" if in_cache else ", or use a writable one"
    return CacheError(f"{path}: {text}{f' while {doing}' if doing else ''}: {fix}")


@contextlib.contextmanager
def disk_errors(where: Path | str | None = None, doing: str = "") -> Iterator[None]:
    """Inside the block, a disk problem (read-only, full, no permission) is a one-line CacheError
    naming the path and the fix; other OS errors pass through (they are bugs or the build's own)."""
    try:
        yield
    except OSError as exc:
        if not is_disk_error(exc):
            raise
        raise disk_error(exc, where, doing) from None


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
    base = _root_path() / kind
    final = base / digest
    if (final / DONE_MARKER).exists():  # a hit: nothing to write, no lock (a read-only cache works)
        return final, digest, True
    with disk_errors(base, f"building {kind} {digest} (not in the cache)"):
        base.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(base / f"{digest}.lock"))
        lock.acquire()
    try:
        if (final / DONE_MARKER).exists():  # another process built it while we waited for the lock
            return final, digest, True
        tmp: Path | None = None
        try:
            with disk_errors(base, f"building {kind} {digest}"):
                if final.exists():
                    shutil.rmtree(final)
                tmp = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=base))
                build(tmp)
                (tmp / DONE_MARKER).write_text(digest)
                tmp.rename(final)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.release()
    return final, digest, False
