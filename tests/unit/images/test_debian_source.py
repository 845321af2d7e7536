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
