"""Opening a history: where (off, a path, a URL, the default file), schema made by the shipped
Alembic scripts and equal to schema.py, and faults told in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from harness.history import schema
from harness.history.store import HistoryError, current_revision, open_store, resolve_url


def test_settings_resolve_to_urls(tmp_path):
    assert resolve_url("", tmp_path) == f"sqlite:///{tmp_path / 'history.sqlite'}"
    assert resolve_url(None, tmp_path) == f"sqlite:///{tmp_path / 'history.sqlite'}"
    for off in ("off", "OFF", "none", "0"):
        assert resolve_url(off, tmp_path) is None
    assert resolve_url(str(tmp_path / "h.db"), Path("/elsewhere")) == f"sqlite:///{tmp_path / 'h.db'}"
    assert resolve_url("postgresql://u@db.lab/hil", tmp_path) == "postgresql+psycopg://u@db.lab/hil"
    assert resolve_url("postgres://u@/hil?host=/run/pg", tmp_path) == "postgresql+psycopg://u@/hil?host=/run/pg"
    assert resolve_url("postgresql+psycopg://u@h/x", tmp_path) == "postgresql+psycopg://u@h/x"
    assert resolve_url("sqlite:////tmp/x.sqlite", tmp_path) == "sqlite:////tmp/x.sqlite"


def test_migrations_make_the_schema_of_schema_py(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert current_revision(store) == "0001"
    with store.begin() as conn:
        assert set(inspect(conn).get_table_names()) == {"alembic_version", "runs", "boards", "results"}
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == [], "schema.py and migrations/versions/ disagree: add a migration script"


def test_reopening_an_upgraded_database_keeps_its_data(tmp_path, store):
    from harness.history.recorder import record_run
    from harness.history.records import RunInfo

    run_id = record_run(store, RunInfo(started=1.0), [], [])
    again = open_store(store.url)
    try:
        assert current_revision(again) == "0001"
        from harness.history.queries import recent_run_ids

        assert recent_run_ids(again, 5) == [run_id]
    finally:
        again.close()


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(HistoryError) as info:
        open_store(resolve_url(str(blocker / "sub" / "h.sqlite"), tmp_path))
    assert "\n" not in str(info.value)
    not_db = tmp_path / "junk.sqlite"
    not_db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError) as info:
        open_store(resolve_url(str(not_db), tmp_path))
    assert str(not_db) in str(info.value) and "\n" not in str(info.value)


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path):
    with pytest.raises(HistoryError) as info:
        open_store(resolve_url(f"postgresql://u:secret@/hil?host={tmp_path}", tmp_path))
    message = str(info.value)
    assert "secret" not in message and "\n" not in message and "history postgresql+psycopg://u:***@" in message


def test_an_in_memory_url_leaves_no_file_or_folder_behind(tmp_path, monkeypatch):
    from harness.history.store import open_store, sqlite_path

    monkeypatch.chdir(tmp_path)
    for url in ("sqlite://", "sqlite:///:memory:"):
        open_store(url).close()
    assert list(tmp_path.iterdir()) == []  # once "sqlite:/" became a folder with a lock file in it
    assert sqlite_path("sqlite:////tmp/h.sqlite") == "/tmp/h.sqlite"
    assert sqlite_path("postgresql+psycopg://u@h/db") == ""
