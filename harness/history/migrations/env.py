"""Alembic environment: the harness hands its connection over (store.upgrade); no alembic.ini."""

from __future__ import annotations

from alembic import context

from harness.history.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the history migrations through harness.history.store.upgrade")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
