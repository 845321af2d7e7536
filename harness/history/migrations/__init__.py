"""Alembic migration scripts of the history schema (run by harness/history/store.py upgrade)."""
