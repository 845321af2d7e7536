"""The history tables, in SQLAlchemy Core (one schema for SQLite and PostgreSQL). A change here
needs a new Alembic script in migrations/versions/ (tests/unit/history/test_store.py compares the
migrated database with this metadata)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started", Float, nullable=False),  # seconds since the epoch (UTC), portable across dialects
    Column("finished", Float),
    Column("host", String(255), nullable=False, server_default=""),
    Column("label", String(255), nullable=False, server_default=""),  # branch label, --hil-label or the git branch
    Column("project", Text, nullable=False, server_default=""),  # rootdir of the project under test
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Column("options", Text, nullable=False, server_default="[]"),  # the command line, JSON list
    Column("exit_status", Integer),
    Column("baseline", String(255)),  # the --baseline REF this run was compared against
)
Index("ix_runs_label", runs.c.label, runs.c.id)

boards = Table(
    "boards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("image_digest", String(128)),
    Column("micropython_version", String(255)),
    Column("banner", Text),
    Column("boot_seconds", Float),
)
Index("ix_boards_run", boards.c.run_id, boards.c.name, unique=True)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("nodeid", Text, nullable=False),  # pytest's id, board parameter included
    Column("board", String(255), nullable=False, server_default=""),
    Column("outcome", String(16), nullable=False),  # passed | failed | error | xfailed | skipped
    Column("duration", Float, nullable=False, server_default="0"),
    Column("retried", Boolean, nullable=False, server_default="0"),
    Column("first_error", Text),
    Column("code_hash", String(64)),  # the test function's source, hashed: flakiness needs the same code
    Column("image_digest", String(128)),  # the board's image for this test (copied: flakiness groups by it)
    Column("label", String(16)),  # NEW | KNOWN | FLAKY | FIXED against the run's baseline
)
Index("ix_results_test", results.c.nodeid, results.c.board, results.c.run_id)
Index("ix_results_run", results.c.run_id)
