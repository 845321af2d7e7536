"""The numbers behind the report's trend charts, read from the history for the newest runs up to
a given one: outcome counts per run (failures of flaky tests counted apart), boot time per board,
suite durations, and each test's outcomes across those runs."""

from __future__ import annotations

from harness.history.flaky import flaky_tests
from harness.history.queries import boards_of, recent_run_ids, results_of
from harness.report.junit import suite_of

STRIP = 20  # runs in a test's outcome strip and in the charts
COUNTS = ("passed", "failed", "flaky", "error", "xfailed", "skipped")  # flaky: failures of flaky tests


def _suite(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0].removesuffix(".py")
    return suite_of(path.replace("/", "."))


def trend_data(store, run_id: int, limit: int = STRIP) -> dict:
    """JSON-ready: {"runs": [{id, label, started, passed, failed, flaky, error, xfailed, skipped}],
    "boot": {board: [[run, seconds]]}, "suites": {suite: [[run, seconds]]},
    "strips": {nodeid: [[run, outcome]]} (the tests of run ``run_id``)}, oldest run first."""
    ids = sorted(recent_run_ids(store, limit, before=run_id + 1))
    results = results_of(store, ids)
    flaky = {(g.nodeid, g.board, g.image_digest, g.code_hash) for g in flaky_tests(results)}
    runs: dict[int, dict] = {}
    suites: dict[str, dict[int, float]] = {}
    strips: dict[str, list] = {}
    for r in results:
        row = runs.setdefault(r.run_id, {"id": r.run_id, "label": r.label, "started": r.started,
                                         **dict.fromkeys(COUNTS, 0)})  # fmt: skip
        is_flaky = r.outcome == "failed" and (r.nodeid, r.board, r.image_digest, r.code_hash) in flaky
        row["flaky" if is_flaky else r.outcome] += 1
        per_run = suites.setdefault(_suite(r.nodeid), {})
        per_run[r.run_id] = per_run.get(r.run_id, 0.0) + r.duration
        strips.setdefault(r.nodeid, []).append([r.run_id, r.outcome])
    current = {r.nodeid for r in results if r.run_id == run_id}
    boot: dict[str, list] = {}
    for b in boards_of(store, ids):
        if b["boot_seconds"] is not None:
            boot.setdefault(b["name"], []).append([b["run_id"], b["boot_seconds"]])
    return {
        "runs": [runs[i] for i in ids if i in runs],
        "boot": boot,
        "suites": {s: sorted([run, round(sec, 3)] for run, sec in per_run.items()) for s, per_run in suites.items()},
        "strips": {n: s for n, s in strips.items() if n in current},
    }
