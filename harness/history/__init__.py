"""Run history: every run and test result in a database (SQLite by default, PostgreSQL by URL),
and what the harness reads back from it: flaky tests and baseline labels (NEW, KNOWN, FLAKY,
FIXED).

One job per module: schema (the tables, SQLAlchemy Core), records (what a run hands over), store
(open a database, bring its schema up to date with the Alembic scripts in migrations/), recorder
(write a run), queries (read outcomes back), flaky (flip rates), baseline (the REF grammar and the
labels). History sits beside the report layer: it reads results and knows nothing of boards."""
