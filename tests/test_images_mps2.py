"""The mps2_an385 builder: a real MicroPython ELF from Debian's source, booted under QEMU.

The first run fetches the source and builds (~20-60 s); later runs hit the cache."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from harness.errors import BuildError, ConfigError
from harness.images import BuildContext, Image, mps2

REPO = Path(__file__).resolve().parents[1]
FIRMWARE_PY = REPO / "firmware_py"
BOOT_TIMEOUT = 30.0  # generous: a loaded 2-core machine slows QEMU a lot


class Qemu:
    """qemu-system-arm on mps2-an385 with its UART on a pty; always killed as a process group."""

    def __init__(self, kernel: Path) -> None:
        self.proc = subprocess.Popen(
            ["qemu-system-arm", "-M", "mps2-an385", "-display", "none", "-monitor", "none",
             "-semihosting", "-serial", "pty", "-kernel", str(kernel)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        self.port = serial.Serial(self._pty_path(), timeout=0.05)

    def _pty_path(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 10
        seen = b""
        while time.monotonic() < deadline and b"\n" not in seen:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1024)
                if not chunk:
                    break
                seen += chunk
        m = re.search(rb"(/dev/pts/\d+)", seen)
        assert m, f"QEMU printed no pty path: {seen!r}"
        return m.group(1).decode()

    def read_until(self, token: bytes, timeout: float) -> bytes:
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and token not in buf:
            buf += self.port.read(4096)
        return buf

    def exec(self, line: str, timeout: float = 10.0) -> str:
        """Run one line in the friendly REPL (which echoes it) and return what it printed."""
        self.port.write(line.encode() + b"\r")
        out = self.read_until(b"\r\n>>> ", timeout).decode(errors="replace")
        assert out.endswith(">>> "), f"no prompt after {line!r}: {out!r}"
        return out.split("\r\n", 1)[1].rsplit("\r\n>>> ", 1)[0] if "\r\n" in out else ""

    def close(self) -> None:
        try:
            self.port.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe:
                    pipe.close()


@pytest.fixture(scope="module")
def firmware_py(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of firmware_py, so edits made to it while the tests run cannot change the digest."""
    snap = tmp_path_factory.mktemp("firmware_py")
    for f in FIRMWARE_PY.glob("*.py"):
        shutil.copy2(f, snap / f.name)
    return snap


@pytest.fixture(scope="module")
def image(firmware_py: Path) -> Image:
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed (Debian package qemu-system-arm)")
    return mps2.build(BuildContext(firmware_py=firmware_py), {})


@pytest.fixture
def qemu(image: Image) -> Iterator[Qemu]:
    q = Qemu(image.files["kernel"])
    try:
        yield q
    finally:
        q.close()


def boot(q: Qemu) -> bytes:
    # Ctrl-C stops anything running, Ctrl-B leaves raw REPL and prints the banner again
    q.port.write(b"\r\x03\x02")
    out = q.read_until(b">>> ", BOOT_TIMEOUT)
    assert b"MicroPython v1.25.0" in out and out.endswith(b">>> "), f"no banner/prompt: {out!r}"
    # the boot banner and the replies to the keys above arrive in any order: a marker that only
    # the output (not the echo) contains shows that everything before it has been read
    q.port.write(b"print('ready', 6 * 7)\r")
    sync = q.read_until(b"ready 42\r\n>>> ", BOOT_TIMEOUT)
    assert sync.endswith(b"ready 42\r\n>>> "), f"REPL did not settle: {sync!r}"
    return out


def test_build_gives_elf_and_second_build_is_cached(image: Image, firmware_py: Path) -> None:
    kernel = image.files["kernel"]
    assert kernel.is_file() and kernel.read_bytes()[:4] == b"\x7fELF"
    assert image.info["micropython_source"] == "1.25.0+ds-1"
    again = mps2.build(BuildContext(firmware_py=firmware_py), {})
    assert again.cached is True
    assert again.digest == image.digest and again.files["kernel"] == kernel


def test_boots_to_banner_with_frozen_module(qemu: Qemu) -> None:
    start = time.monotonic()
    banner = boot(qemu)
    print(f"banner after {time.monotonic() - start:.2f} s: {banner.splitlines()[-3]!r}")
    assert qemu.exec("print(6 * 7)") == "42"
    # there is no file system in this firmware, so a successful import means the module is frozen
    assert qemu.exec("import os; print(os.listdir('/'))") == "[]"
    assert qemu.exec("import hil_semihost; print(hil_semihost.__name__)") == "hil_semihost"


def test_semihost_exit_sets_qemu_status(qemu: Qemu) -> None:
    boot(qemu)
    qemu.exec("import hil_semihost")
    qemu.port.write(b"hil_semihost.write('via semihosting\\n'); hil_semihost.exit(3)\r")
    assert qemu.proc.wait(timeout=BOOT_TIMEOUT) == 3
    assert qemu.proc.stderr is not None
    assert b"via semihosting" in qemu.proc.stderr.read()  # SYS_WRITE0 lands on QEMU's stderr


def test_module_that_does_not_compile_is_named(tmp_path: Path, image: Image) -> None:
    (tmp_path / "good.py").write_text("x = 1\n")
    (tmp_path / "broken_mod.py").write_text("def f(:\n    pass\n")
    with pytest.raises(BuildError) as err:
        mps2.build(BuildContext(firmware_py=tmp_path, log=lambda _m: None), {})
    msg = str(err.value)
    assert "broken_mod.py" in msg and "line 1" in msg and "\n" not in msg


def test_freeze_list_selects_files_and_rejects_unknown(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("")
    (tmp_path / "b.py").write_text("")
    assert [p.name for p in mps2.frozen_files(tmp_path, "all")] == ["a.py", "b.py"]
    assert [p.name for p in mps2.frozen_files(tmp_path, ["b.py"])] == ["b.py"]
    assert mps2.manifest_text(mps2.frozen_files(tmp_path, ["b.py"])) == "freeze('modules', ('b.py',))\n"
    with pytest.raises(ConfigError, match=r"nope\.py"):
        mps2.frozen_files(tmp_path, ["nope.py"])


def test_missing_toolchain_names_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(mps2.shutil, "which", lambda t: None if t == "arm-none-eabi-gcc" else real_which(t))
    with pytest.raises(BuildError, match="gcc-arm-none-eabi"):
        mps2.build(BuildContext(firmware_py=FIRMWARE_PY), {})


def test_mirror_comes_from_system_apt_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    (parts / "other.list").write_text("deb [arch=amd64] http://other.invalid/repo stable-x main\n")
    monkeypatch.setattr(mps2, "APT_SOURCES_DIR", parts)
    monkeypatch.setattr(mps2, "APT_SOURCES_LIST", tmp_path / "missing.list")
    assert mps2._system_mirrors() == ["http://mirror.invalid/debian"]
    monkeypatch.setattr(mps2, "APT_SOURCES_DIR", tmp_path / "empty")
    with pytest.raises(BuildError, match="no Debian archive"):
        mps2._mirror({})


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
