"""Fixtures of the plugin's unit tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def targets(tmp_path, monkeypatch):
    """An empty targets/ of the test's own (HIL_TARGETS), and no board selection from the environment."""
    directory = tmp_path / "targets"
    directory.mkdir()
    monkeypatch.setenv("HIL_TARGETS", str(directory))
    monkeypatch.delenv("HIL_BOARDS", raising=False)
    return directory
