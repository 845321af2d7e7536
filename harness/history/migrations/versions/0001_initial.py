"""The first history schema: runs, the boards of each run, and every test result.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("finished", sa.Float),
        sa.Column("host", sa.String(255), nullable=False, server_default=""),
        sa.Column("label", sa.String(255), nullable=False, server_default=""),
        sa.Column("project", sa.Text, nullable=False, server_default=""),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("options", sa.Text, nullable=False, server_default="[]"),
        sa.Column("exit_status", sa.Integer),
        sa.Column("baseline", sa.String(255)),
    )
    op.create_index("ix_runs_label", "runs", ["label", "id"])
    op.create_table(
        "boards",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("image_digest", sa.String(128)),
        sa.Column("micropython_version", sa.String(255)),
        sa.Column("banner", sa.Text),
        sa.Column("boot_seconds", sa.Float),
    )
    op.create_index("ix_boards_run", "boards", ["run_id", "name"], unique=True)
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("nodeid", sa.Text, nullable=False),
        sa.Column("board", sa.String(255), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("duration", sa.Float, nullable=False, server_default="0"),
        sa.Column("retried", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("first_error", sa.Text),
        sa.Column("code_hash", sa.String(64)),
        sa.Column("image_digest", sa.String(128)),
        sa.Column("label", sa.String(16)),
    )
    op.create_index("ix_results_test", "results", ["nodeid", "board", "run_id"])
    op.create_index("ix_results_run", "results", ["run_id"])


def downgrade() -> None:
    op.drop_table("results")
    op.drop_table("boards")
    op.drop_table("runs")
