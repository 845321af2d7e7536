"""The history on a real PostgreSQL server (started here on a unix socket, removed afterwards):
the same migrations, recording, queries and baseline resolution as on SQLite."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

from harness.history import schema
from harness.history.baseline import parse_ref, resolve
from harness.history.flaky import flaky_tests
from harness.history.queries import recent_run_ids, results_of, runs_table
from harness.history.recorder import record_run
from harness.history.records import BoardInfo, RunInfo, TestResult
from harness.history.store import current_revision, open_store, resolve_url
from tests.unit.history.pg import postgres_server

pytestmark = pytest.mark.spawns  # initdb, pg_ctl: helper processes, never a board


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield resolve_url(url, None)


def test_schema_is_migrated_and_equal_to_schema_py(pg_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = open_store(pg_url)
    try:
        assert store.engine.dialect.name == "postgresql"
        assert current_revision(store) == "0001"
        with store.begin() as conn:
            assert {"runs", "boards", "results"} <= set(inspect(conn).get_table_names())
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    finally:
        store.close()


def test_concurrent_opens_migrate_once(pg_url):
    """Parallel runs opening a new database at once: the advisory lock lets one migrate."""
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_store(pg_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_runs_results_and_baselines_round_trip(pg_url):
    store = open_store(pg_url)
    try:
        ids = []
        for i, outcome in enumerate(["passed", "failed", "passed"]):
            result = TestResult("s/t.py::test_coin[native]", "native", outcome, 0.25, retried=i == 1,
                                first_error="assert 0" if outcome == "failed" else None, code_hash="c",
                                image_digest="d")  # fmt: skip
            run = RunInfo(started=100.0 + i, host="h", label="main", git_commit="f00", git_dirty=False,
                          options=["-q"], exit_status=0)  # fmt: skip
            ids.append(record_run(store, run, [BoardInfo("native", "d", "1.24", "MicroPython", 0.1)], [result]))
        assert recent_run_ids(store, 2, label="main") == [ids[2], ids[1]]
        assert resolve(store, parse_ref("main~2")) == [ids[2], ids[1]]
        results = results_of(store, ids, nodeid_like="coin")
        assert [r.outcome for r in results] == ["passed", "failed", "passed"] and results[1].retried is True
        (group,) = flaky_tests(results)
        assert group.flip_rate == 1.0
        assert runs_table(store, 1)[0]["counts"] == {"passed": 1}
    finally:
        store.close()
