"""The microbit_hex builder without building in the cache: which firmware_py files go into the
HEX (one-line ConfigErrors for bad lists), a file system too small (a BuildError naming the file
and the space left), and the HEX assembly itself (``make`` run into a temporary directory)."""

from __future__ import annotations

import json
from pathlib import Path

import micropython_microbit_fs as mbfs
import pytest

from harness.errors import BuildError, ConfigError
from harness.images import BuildContext
from harness.images import microbit as builder


@pytest.fixture
def fw(tmp_path) -> Path:
    directory = tmp_path / "firmware_py"
    directory.mkdir()
    (directory / "hil_info.py").write_text("NAME = 'hil'\n")
    (directory / "main.py").write_text("print('booted')\n")
    return directory


@pytest.mark.parametrize(("names", "error"), [
    ("hil_info.py", r"^image.files must be a non-empty list of file names, got 'hil_info.py'$"),
    ([], r"^image.files must be a non-empty list of file names, got \[\]$"),
    (["lib/hil_info.py"], r"^image.files: 'lib/hil_info.py': the micro:bit file system is flat, use a bare name$"),
    (["hil_info.py", "nope.py"], r"^image.files: 'nope.py' not found in .*firmware_py$"),
])  # fmt: skip
def test_file_selection_errors_are_one_line(fw, names, error):
    with pytest.raises(ConfigError, match=error):
        builder._read_files(fw, names)


def test_selected_files_are_read_in_order(fw):
    files = builder._read_files(fw, ["main.py", "hil_info.py"])
    assert [(f.name, f.content) for f in files] == [("main.py", b"print('booted')\n"),
                                                    ("hil_info.py", b"NAME = 'hil'\n")]


def test_unknown_version_is_config_error():
    with pytest.raises(ConfigError, match=r"^image.version: ") as info:
        builder._base_hex("0.0.1")
    assert "\n" not in str(info.value)


def test_too_big_for_the_file_system_names_the_file_and_the_space():
    base = mbfs.get_bundled_hex(1).content
    small = mbfs.File(name="a.py", content=b"x = 1\n")
    big = mbfs.File(name="huge.py", content=b"#" * 200_000)
    with pytest.raises(BuildError) as info:
        builder._add_files(base, [small, big])
    message = str(info.value)
    assert message.startswith(f"microbit image: huge.py (200000 B, {big.size_fs} B on flash) does not fit: ")
    assert message.endswith(" B free in the HEX file system") and "\n" not in message
    free = int(message.split("does not fit: ")[1].split(" B free")[0])
    assert 0 < free < 200_000 and free % 128 == 0  # whole chunks, what is left after a.py


def test_build_assembles_a_hex_with_the_files(fw, tmp_path, monkeypatch):
    out = tmp_path / "out"
    seen = {}

    def build_here(kind, inputs, make):  # what cached_build does on a miss, minus the cache
        seen.update(kind=kind, inputs=inputs)
        out.mkdir()
        make(out)
        return out, "digest123", False

    monkeypatch.setattr(builder, "cached_build", build_here)
    logged: list[str] = []
    image = builder.build(BuildContext(firmware_py=fw, log=logged.append), {"files": ["hil_info.py", "main.py"]})
    assert (image.digest, image.cached, image.files) == ("digest123", False, {"hex": out / builder.HEX_NAME})
    assert seen["kind"] == "microbit" and seen["inputs"]["file:main.py"] == b"print('booted')\n"
    assert {"builder", "base_hex", "file:hil_info.py", "file:main.py"} == set(seen["inputs"])
    files = {f.name: f.content for f in mbfs.get_files(image.files["hex"].read_text())}
    assert files == {"hil_info.py": b"NAME = 'hil'\n", "main.py": b"print('booted')\n"}
    info = json.loads((out / builder.INFO_NAME).read_text())
    assert image.info == info
    assert info["micropython"].count(".") == 2 and int(info["fs_used"]) > 0 and int(info["fs_free"]) > 0
    assert logged and "hil_info.py, main.py" in logged[0]
