"""harness/cache.py: content hashes over named inputs, and a build done once per digest (a
trivial build function here: the unit guard refuses the harness's own image builds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cache import cache_root, cached_build, content_hash  # the real one, bound before the guard


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HIL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_content_hash_covers_names_values_and_files(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.py").write_text("A = 1\n")
    (tmp_path / "src" / "sub" / "b.py").write_text("B = 2\n")
    base = content_hash({"version": "1", "src": tmp_path / "src"})
    assert len(base) == 16 and base == content_hash({"src": tmp_path / "src", "version": "1"})  # order-free
    assert content_hash({"version": "2", "src": tmp_path / "src"}) != base
    assert content_hash({"v": "1", "src": tmp_path / "src"}) != base  # the name counts too
    assert content_hash({"version": b"1", "src": tmp_path / "src"}) == base  # bytes and str alike
    (tmp_path / "src" / "__pycache__").mkdir()
    (tmp_path / "src" / "__pycache__" / "a.pyc").write_bytes(b"junk")
    assert content_hash({"version": "1", "src": tmp_path / "src"}) == base  # byte code is not an input
    (tmp_path / "src" / "sub" / "b.py").write_text("B = 3\n")
    assert content_hash({"version": "1", "src": tmp_path / "src"}) != base


def test_build_once_per_digest(cache):
    builds = []

    def build(out: Path) -> None:
        builds.append(out)
        (out / "fw.bin").write_bytes(b"firmware")

    path, digest, cached = cached_build("kind", {"v": "1"}, build)
    assert (path, cached) == (cache / "kind" / digest, False) and (path / "fw.bin").read_bytes() == b"firmware"
    assert cache_root() == cache
    again = cached_build("kind", {"v": "1"}, build)
    assert again == (path, digest, True) and len(builds) == 1
    _, other_digest, cached = cached_build("kind", {"v": "2"}, build)
    assert other_digest != digest and not cached and len(builds) == 2


def test_failed_build_leaves_nothing_behind(cache):
    def broken(out: Path) -> None:
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        cached_build("kind", {"v": "1"}, broken)
    assert [p.name for p in (cache / "kind").iterdir() if not p.name.endswith(".lock")] == []
    path, _, cached = cached_build("kind", {"v": "1"}, lambda out: (out / "ok").write_text("1"))
    assert not cached and (path / "ok").exists()  # the next try builds afresh
