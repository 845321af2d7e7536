"""Debian source packages (harness/images/debian_source.py): the isolated apt configuration takes
the system's Debian mirror; fetching itself is exercised by the mps2 image build."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BuildError
from harness.images import debian_source


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
    monkeypatch.setattr(debian_source, "APT_SOURCES_DIR", parts)
    monkeypatch.setattr(debian_source, "APT_SOURCES_LIST", tmp_path / "missing.list")
    assert debian_source._system_mirrors() == ["http://mirror.invalid/debian"]
    monkeypatch.setattr(debian_source, "APT_SOURCES_DIR", tmp_path / "empty")
    with pytest.raises(BuildError, match="no Debian archive"):
        debian_source._mirror({})


# --- a mirror that cannot be reached: a stand-in apt-get that answers as apt does offline ------------

UPDATE_OFFLINE = """Ign:1 http://deb.debian.org/debian trixie InRelease
Err:1 http://deb.debian.org/debian trixie InRelease
  Temporary failure resolving 'deb.debian.org'
Reading package lists...
W: Failed to fetch http://deb.debian.org/debian/dists/trixie/InRelease  Temporary failure resolving 'deb.debian.org'
W: Some index files failed to download. They have been ignored, or old ones used instead."""
UPDATE_404 = """Err:1 http://mirror.invalid/debian trixie InRelease
  404  Not Found [IP: 192.0.2.1 80]
E: Failed to fetch http://mirror.invalid/debian/dists/trixie/InRelease  404  Not Found [IP: 192.0.2.1 80]"""
NO_DEB_SRC = "Reading package lists...\nE: You must put some 'deb-src' URIs in your sources.list"


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """apt-get replaced by a script: ``update`` prints what it is given (exit 0, as apt does when
    it only warns), ``source`` fails as apt does with no index."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(b"")
    monkeypatch.setattr(debian_source, "KEYRING", keyring)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")

    def install(update_output: str, update_status: int = 0) -> None:
        (tmp_path / "update.txt").write_text(update_output + "\n")
        (tmp_path / "source.txt").write_text(NO_DEB_SRC + "\n")
        script = bin_dir / "apt-get"
        script.write_text(
            "#!/bin/sh\nfor a in \"$@\"; do case $a in\n"
            f"  update) cat {tmp_path / 'update.txt'}; exit {update_status};;\n"
            f"  source) cat {tmp_path / 'source.txt'}; exit 100;;\nesac; done\nexit 1\n"
        )
        script.chmod(0o755)

    return install


@pytest.mark.parametrize("status", [0, 100])
def test_offline_mirror_is_blamed_not_deb_src(fake_apt, tmp_path: Path, status: int) -> None:
    fake_apt(UPDATE_OFFLINE, status)
    log = tmp_path / "fetch.log"
    log.write_text("")
    with pytest.raises(BuildError) as info:
        debian_source._fetch_source("micropython", "1.25.0+ds-1", {"mirror": "http://deb.debian.org/debian"},
                                    tmp_path / "out", log)  # fmt: skip
    message = str(info.value)
    assert "\n" not in message and "deb-src" not in message
    assert message.startswith("cannot reach the Debian mirror http://deb.debian.org/debian to fetch the source "
                              "micropython=1.25.0+ds-1 (")  # fmt: skip
    assert "Temporary failure resolving 'deb.debian.org'" in message
    assert "check the network" in message and f"(log: {log})" in message


def test_mirror_without_the_suite_says_so(fake_apt, tmp_path: Path) -> None:
    fake_apt(UPDATE_404, 100)
    log = tmp_path / "fetch.log"
    log.write_text("")
    with pytest.raises(BuildError) as info:
        debian_source._fetch_source("micropython", "1.25.0+ds-1", {"mirror": "http://mirror.invalid/debian"},
                                    tmp_path / "out", log)  # fmt: skip
    message = str(info.value)
    assert "cannot reach" not in message and "404  Not Found" in message and "deb-src" not in message


def test_full_disk_under_a_tool_names_the_file_and_the_fix(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_text("")
    script = "echo 'cc1: error: /c/build/main.o: No space left on device' >&2; echo 'make: *** Error 1'; exit 2"
    cmd = ["sh", "-c", script]
    with pytest.raises(BuildError) as info:
        debian_source.run_step(cmd, what="building X", timeout=10, log_file=log)
    message = str(info.value)
    assert message == (f"building X failed: cc1: error: /c/build/main.o: No space left on device: free space there, "
                       f"or set HIL_CACHE (and TMPDIR) to a disk with room (log: {log})")  # fmt: skip
