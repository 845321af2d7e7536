"""Recording runs and reading them back (harness/history/recorder.py, queries.py) on a real SQLite."""

from __future__ import annotations

import json

from harness.history.queries import boards_of, recent_run_ids, results_of, run_exists, runs_table
from harness.history.recorder import record_run
from harness.history.records import BoardInfo, RunInfo, TestResult


def _run(store, label="main", outcomes=("passed", "failed"), started=1000.0) -> int:
    results = [TestResult(f"s/test_a.py::test_{i}[native]", "native", o, duration=0.5, code_hash="c",
                          image_digest="d1", first_error="boom" if o == "failed" else None)
               for i, o in enumerate(outcomes)]  # fmt: skip
    board = BoardInfo("native", "d1", "1.24.0", "MicroPython v1.24.0 on unix", 0.12)
    run = RunInfo(started=started, host="h", label=label, git_commit="abc", git_dirty=True, options=["--board=native"])
    return record_run(store, run, [board], results)


def test_a_run_its_boards_and_results_come_back(store):
    run_id = _run(store)
    assert run_exists(store, run_id) and not run_exists(store, run_id + 1)
    (row,) = runs_table(store)
    assert row["id"] == run_id and row["label"] == "main" and row["git_dirty"] is True
    assert json.loads(row["options"]) == ["--board=native"] and row["counts"] == {"passed": 1, "failed": 1}
    (board,) = boards_of(store, [run_id])
    assert (board["name"], board["image_digest"], board["boot_seconds"]) == ("native", "d1", 0.12)
    results = results_of(store, [run_id])
    assert [(r.outcome, r.first_error) for r in results] == [("passed", None), ("failed", "boom")]
    assert results[0].label == "main" and results[0].code_hash == "c" and results[0].duration == 0.5


def test_newest_runs_by_label_and_before(store):
    a = _run(store, "main")
    b = _run(store, "feature")
    c = _run(store, "main")
    assert recent_run_ids(store, 10) == [c, b, a]
    assert recent_run_ids(store, 10, label="main") == [c, a]
    assert recent_run_ids(store, 1, label="main") == [c]
    assert recent_run_ids(store, 10, before=c) == [b, a]
    assert results_of(store, []) == []


def test_results_filtered_by_part_of_the_test_id(store):
    run_id = _run(store, outcomes=("passed", "passed", "failed"))
    assert [r.nodeid for r in results_of(store, [run_id], nodeid_like="test_2")] == ["s/test_a.py::test_2[native]"]
    assert results_of(store, [run_id], nodeid_like="test_%") == []  # a LIKE wildcard is taken literally
