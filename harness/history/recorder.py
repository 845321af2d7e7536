"""Write one run (its facts, boards and results) to the store, in one transaction."""

from __future__ import annotations

import json
from dataclasses import asdict

from harness.history import schema
from harness.history.records import BoardInfo, RunInfo, TestResult
from harness.history.store import Store


def record_run(store: Store, run: RunInfo, boards: list[BoardInfo], results: list[TestResult]) -> int:
    """Insert the run; returns its id (what ``--baseline ID`` names)."""
    values = asdict(run)
    values["options"] = json.dumps(run.options)
    with store.begin() as conn:
        run_id = conn.execute(schema.runs.insert().values(**values)).inserted_primary_key[0]
        if boards:
            conn.execute(schema.boards.insert(), [{**asdict(b), "run_id": run_id} for b in boards])
        if results:
            conn.execute(schema.results.insert(), [{**asdict(r), "run_id": run_id} for r in results])
    return int(run_id)
