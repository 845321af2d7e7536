"""Reading the history back, dialect-neutral (SQLAlchemy Core selects; grouping done in Python
over a bounded window of runs)."""

from __future__ import annotations

from sqlalchemy import select

from harness.history import schema
from harness.history.records import PastResult
from harness.history.store import Store


def recent_run_ids(store: Store, limit: int, label: str | None = None, before: int | None = None) -> list[int]:
    """The ``limit`` newest run ids (of ``label`` when given; older than run ``before``), newest first."""
    q = select(schema.runs.c.id).order_by(schema.runs.c.id.desc()).limit(limit)
    if label is not None:
        q = q.where(schema.runs.c.label == label)
    if before is not None:
        q = q.where(schema.runs.c.id < before)
    with store.begin() as conn:
        return [row[0] for row in conn.execute(q)]


def run_exists(store: Store, run_id: int) -> bool:
    with store.begin() as conn:
        return conn.execute(select(schema.runs.c.id).where(schema.runs.c.id == run_id)).first() is not None


def results_of(store: Store, run_ids: list[int], nodeid_like: str | None = None) -> list[PastResult]:
    """Every result of ``run_ids`` (optionally of tests whose id contains ``nodeid_like``), oldest first."""
    if not run_ids:
        return []
    r, runs = schema.results, schema.runs
    q = (
        select(r.c.run_id, runs.c.started, runs.c.label, r.c.nodeid, r.c.board, r.c.outcome, r.c.duration,
               r.c.retried, r.c.first_error, r.c.code_hash, r.c.image_digest, r.c.label)
        .join(runs, runs.c.id == r.c.run_id)
        .where(r.c.run_id.in_(run_ids))
        .order_by(r.c.run_id, r.c.id)
    )  # fmt: skip
    if nodeid_like:
        q = q.where(r.c.nodeid.contains(nodeid_like, autoescape=True))
    with store.begin() as conn:
        return [PastResult(*row) for row in conn.execute(q)]


def runs_table(store: Store, limit: int = 20) -> list[dict]:
    """The newest runs with their counts per outcome, newest first."""
    from sqlalchemy import func

    runs, r = schema.runs, schema.results
    with store.begin() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))]
        if rows:
            counts = conn.execute(
                select(r.c.run_id, r.c.outcome, func.count())
                .where(r.c.run_id.in_([row["id"] for row in rows]))
                .group_by(r.c.run_id, r.c.outcome)
            )
            by_run: dict[int, dict[str, int]] = {}
            for run_id, outcome, n in counts:
                by_run.setdefault(run_id, {})[outcome] = n
            for row in rows:
                row["counts"] = by_run.get(row["id"], {})
    return rows


def boards_of(store: Store, run_ids: list[int]) -> list[dict]:
    if not run_ids:
        return []
    b = schema.boards
    with store.begin() as conn:
        q = select(b).where(b.c.run_id.in_(run_ids)).order_by(b.c.run_id, b.c.name)
        return [dict(row._mapping) for row in conn.execute(q)]
