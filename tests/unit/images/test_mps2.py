"""The mps2_an385 builder: a real MicroPython ELF from Debian's source, booted under QEMU.

The first run fetches the source and builds (~20-60 s); later runs hit the cache."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from harness.errors import BuildError, ConfigError
from harness.images import BuildContext, mps2
from tests.conftest import REPO

FIRMWARE_PY = REPO / "firmware_py"


def test_freeze_list_selects_files_and_rejects_unknown(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("")
    (tmp_path / "b.py").write_text("")
    assert [p.name for p in mps2.frozen_files(tmp_path, "all")] == ["a.py", "b.py"]
    assert [p.name for p in mps2.frozen_files(tmp_path, ["b.py"])] == ["b.py"]
    assert mps2.manifest_text(mps2.frozen_files(tmp_path, ["b.py"])) == "freeze('modules', ('b.py',))\n"
    with pytest.raises(ConfigError, match=r"nope\.py"):
        mps2.frozen_files(tmp_path, ["nope.py"])


def test_freeze_packages_are_included_from_the_micropython_tree(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("")
    files = mps2.frozen_files(tmp_path, "all")
    assert mps2.manifest_text(files, mps2.frozen_packages(["extmod/asyncio"])) == (
        'include("$(MPY_DIR)/extmod/asyncio")\n' "freeze('modules', ('a.py',))\n"
    )
    for bad in ("extmod/asyncio", ["/etc"], ["../x"], ["a b"]):
        with pytest.raises(ConfigError, match="image option 'freeze_packages'"):
            mps2.frozen_packages(bad)
    (tmp_path / "extmod" / "asyncio").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"'extmod/asyncio', which has no manifest\.py"):
        mps2._check_packages(tmp_path, ["extmod/asyncio"])
    (tmp_path / "extmod" / "asyncio" / "manifest.py").write_text("")
    mps2._check_packages(tmp_path, ["extmod/asyncio"])


def test_missing_toolchain_names_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(mps2.shutil, "which", lambda t: None if t == "arm-none-eabi-gcc" else real_which(t))
    with pytest.raises(BuildError, match="gcc-arm-none-eabi"):
        mps2.build(BuildContext(firmware_py=FIRMWARE_PY), {})


def test_net_versions_come_in_pairs() -> None:
    assert mps2._net_versions("1.25.0+ds-1", {}) is None  # the plain port
    assert mps2._net_versions("1.25.0+ds-1", {"lwip_version": "", "mbedtls_version": ""}) is None
    assert mps2._net_versions("1.25.0+ds-1", {"lwip_version": "2.2.1", "mbedtls_version": "3.6.6"}) == {
        "micropython": "1.25.0+ds-1", "lwip": "2.2.1", "mbedtls": "3.6.6"}
    for half in ({"lwip_version": "2.2.1"}, {"mbedtls_version": "3.6.6"}):
        with pytest.raises(ConfigError, match=r"'image.lwip_version' and 'image.mbedtls_version' go together"):
            mps2._net_versions("1.25.0+ds-1", half)


@pytest.mark.parametrize("heap_kb", [32, 4096, 140.5, "2048", True])
def test_heap_kb_must_be_whole_kib_in_range(heap_kb: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mps2, "_require_tools", lambda tools: None)  # options are checked without a toolchain
    monkeypatch.setattr(mps2, "_require_picolibc", lambda: None)
    monkeypatch.setattr(mps2, "cached_build", lambda *a: pytest.fail("built despite a bad heap_kb"))
    with pytest.raises(ConfigError) as err:
        mps2.build(BuildContext(firmware_py=FIRMWARE_PY), {"heap_kb": heap_kb})
    assert str(err.value) == (f"key 'image.heap_kb' must be a whole number of KiB from 64 to 3072, "
                              f"not {heap_kb!r}")


def test_shipped_target_builds_a_network_board(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target file's options select the lwIP board and its heap, and all of them reach the digest."""
    seen: dict = {}

    def fake_cached_build(kind: str, inputs: dict, _build) -> tuple[Path, str, bool]:
        seen.update(inputs)
        return Path("/nonexistent"), "digest", True

    monkeypatch.setattr(mps2, "_require_tools", lambda tools: None)
    monkeypatch.setattr(mps2, "_require_picolibc", lambda: None)
    monkeypatch.setattr(mps2, "cached_build", fake_cached_build)
    options = tomllib.loads((REPO / "targets" / "mps2_an385.toml").read_text())["image"]
    options.pop("builder")
    image = mps2.build(BuildContext(firmware_py=FIRMWARE_PY), options)
    assert seen["board"] == mps2.NET_BOARD and seen["heap_kb"] == "2048"
    assert (seen["lwip_version"], seen["mbedtls_version"]) == (options["lwip_version"], options["mbedtls_version"])
    assert seen["firmware_c"] == REPO / "firmware_c" / "mps2"
    assert image.info == {"micropython_source": "1.25.0+ds-1", "lwip_source": options["lwip_version"],
                          "mbedtls_source": options["mbedtls_version"]}
    seen.clear()
    mps2.build(BuildContext(firmware_py=FIRMWARE_PY), {})
    assert seen["board"] == mps2.BOARD and seen["heap_kb"] == str(mps2.DEFAULT_HEAP_KB)
    assert "lwip_version" not in seen and "firmware_c" not in seen


