"""Open a history database and bring its schema up to date.

Where: ``--hil-history``/``$HIL_HISTORY`` is ``off``, a file path (SQLite) or a database URL
(``sqlite:///...``, ``postgresql://user@host/db``, ``postgresql://user@/db?host=/run/socket``);
the default is ``history.sqlite`` in the run's output folder (next to the reports it describes).
The schema is made and upgraded by the Alembic scripts shipped in migrations/, never by
``create_all``: a database written by an older harness is migrated in place."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, one_line

OFF = ("off", "no", "none", "0", "false")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class HistoryError(HarnessError):
    """The history database cannot be opened, migrated, read or written (one line, with the URL)."""


def resolve_url(setting: str | None, default_dir: Path) -> str | None:
    """The SQLAlchemy URL for a ``--hil-history`` setting; None when history is switched off."""
    setting = (setting or "").strip()
    if setting.lower() in OFF and setting:
        return None
    if not setting:
        return f"sqlite:///{(default_dir / 'history.sqlite').resolve()}"
    if "://" not in setting:  # a plain path: a SQLite file
        return f"sqlite:///{Path(setting).expanduser().resolve()}"
    scheme, rest = setting.split("://", 1)
    if scheme in ("postgresql", "postgres"):  # the driver the project installs (psycopg 3)
        return f"postgresql+psycopg://{rest}"
    return setting


def redacted(url: str) -> str:
    """The URL fit for a message: no password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///PATH`` URL; "" for an in-memory SQLite or another database."""
    if not url.startswith("sqlite") or ":///" not in url:
        return ""
    path = url.split(":///", 1)[1]
    return "" if path == ":memory:" else path


@dataclass
class Store:
    url: str
    engine: object  # sqlalchemy.Engine

    @contextlib.contextmanager
    def begin(self) -> Iterator[object]:
        """A connection in a transaction; any database fault as one HistoryError line."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except HistoryError:
            raise
        except Exception as exc:
            raise HistoryError(f"history {redacted(self.url)}: {one_line(exc, 300)}") from None

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, migrate: bool = True) -> Store:
    """An engine on ``url`` with the schema at the newest revision (``migrate``); HistoryError when
    the database cannot be reached or upgraded."""
    try:
        from sqlalchemy import create_engine, event

        kwargs: dict = {}
        if url.startswith("sqlite"):
            path = sqlite_path(url)
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}  # parallel runs writing one file wait for each other
        else:
            kwargs["connect_args"] = {"connect_timeout": 10}
        engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):

            @event.listens_for(engine, "connect")
            def _foreign_keys(dbapi_conn, _record) -> None:
                dbapi_conn.execute("PRAGMA foreign_keys=ON")

    except Exception as exc:
        raise HistoryError(f"history {redacted(url)}: {one_line(exc, 300)}") from None
    store = Store(url, engine)
    if migrate:
        try:
            upgrade(store)
        except Exception:
            store.close()
            raise
    return store


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


_IN_PROCESS = threading.Lock()  # Alembic's context is module state: one migration per process at a time


def upgrade(store: Store, revision: str = "head") -> None:
    """Run the migration scripts up to ``revision``; concurrent runs serialise on a lock (a file
    lock beside a SQLite file, an advisory lock on PostgreSQL)."""
    from alembic import command
    from sqlalchemy import text

    with _IN_PROCESS, _migration_lock(store), store.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(72917)"))  # released at commit
        command.upgrade(_alembic_config(conn), revision)


def current_revision(store: Store) -> str | None:
    from alembic.migration import MigrationContext

    with store.begin() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _migration_lock(store: Store) -> Iterator[None]:
    path = sqlite_path(store.url)
    if not path:
        yield
        return
    from filelock import FileLock, Timeout

    try:
        with FileLock(path + ".lock", timeout=60):
            yield
    except Timeout:
        raise HistoryError(f"history {path}: another run holds {path}.lock for over 60 s") from None
