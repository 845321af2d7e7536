"""A fresh SQLite history (a real database file) for each test."""

from __future__ import annotations

import pytest

from harness.history.store import open_store, resolve_url


@pytest.fixture
def store(tmp_path):
    s = open_store(resolve_url("", tmp_path))
    yield s
    s.close()
