"""harness/cache.py on a bad disk: a read-only cache that holds the entry still serves it (no lock
file is written for a hit); a miss on a read-only cache and a full disk during a build are one
CacheError naming the path, the errno text and the fix, with no partial output left behind.
Real file systems: a tmpfs mounted read-only, and a tiny tmpfs (skipped where mounting is not allowed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cache import CacheError, cached_build, content_hash  # the real one, bound before the guard
from tests.conftest import remount_ro, tmpfs


def firmware(out: Path) -> None:
    (out / "fw.bin").write_bytes(b"firmware")


def test_read_only_cache_with_the_entry_is_usable(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "cache", "size=4m") as root:
        monkeypatch.setenv("HIL_CACHE", str(root))
        path, digest, cached = cached_build("kind", {"v": "1"}, firmware)
        assert not cached
        for lock in (root / "kind").glob("*.lock"):
            lock.unlink()  # a cache copied without its lock files (e.g. a CI artifact)
        remount_ro(root)
        assert cached_build("kind", {"v": "1"}, firmware) == (path, digest, True)
        assert (path / "fw.bin").read_bytes() == b"firmware"


def test_miss_on_a_read_only_cache_is_one_line_naming_path_and_fix(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "cache", "size=4m") as root:
        monkeypatch.setenv("HIL_CACHE", str(root))
        cached_build("kind", {"v": "1"}, firmware)
        remount_ro(root)
        with pytest.raises(CacheError) as info:
            cached_build("kind", {"v": "2"}, firmware)
    message = str(info.value)
    assert "\n" not in message
    assert str(root / "kind") in message and "Read-only file system" in message
    assert "set HIL_CACHE to a writable directory" in message


def test_read_only_cache_root_that_does_not_exist_yet(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        monkeypatch.setenv("HIL_CACHE", str(ro / "hil"))
        with pytest.raises(CacheError, match=r"Read-only file system.*set HIL_CACHE to a writable directory"):
            cached_build("kind", {"v": "1"}, firmware)


def test_full_disk_during_a_build_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def big(out: Path) -> None:
        (out / "half.bin").write_bytes(b"x" * 100_000)
        with (out / "fw.bin").open("wb") as fh:
            for _ in range(100):
                fh.write(b"\0" * 65536)

    with tmpfs(tmp_path / "cache", "size=1m") as root:
        monkeypatch.setenv("HIL_CACHE", str(root))
        with pytest.raises(CacheError) as info:
            cached_build("kind", {"v": "1"}, big)
        left = sorted(p.name for p in (root / "kind").iterdir() if not p.name.endswith(".lock"))
        assert left == []  # the partial build is gone, space given back
        digest = content_hash({"v": "1"})
        message = str(info.value)
        assert "\n" not in message and "No space left on device" in message
        assert str(root / "kind") in message and digest in message and "free space on that disk" in message
        path, _, cached = cached_build("kind", {"v": "1"}, firmware)  # a small build still fits
        assert not cached and (path / "fw.bin").exists()


def test_nested_build_failing_on_disk_reports_the_inner_path_once(tmp_path, monkeypatch):
    def outer(out: Path) -> None:
        def inner(o: Path) -> None:
            raise OSError(28, "No space left on device", str(o / "x.o"))

        cached_build("inner", {"v": "1"}, inner)

    monkeypatch.setenv("HIL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CacheError) as info:
        cached_build("outer", {"v": "1"}, outer)
    message = str(info.value)
    assert message.count("No space left on device") == 1 and "x.o" in message and "building inner" in message
    assert [p.name for p in (tmp_path / "cache" / "outer").iterdir() if not p.name.endswith(".lock")] == []
