"""Engines for the knowledge base: SQLite (WAL, several processes) or any SQLAlchemy URL.

A database URL is only ever shown through :func:`metalearn.settings.redact_url` (password hidden), and a
knowledge base that cannot be opened (server unreachable, bad password, a file that is not SQLite) raises
one :class:`KnowledgeBaseError` instead of a driver exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url

from metalearn.errors import KnowledgeBaseError
from metalearn.settings import redact_url


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_kb_engine(url: str, *, immediate: bool = False) -> Engine:
    """Create an engine; for SQLite, WAL mode, a busy timeout and (for writers) ``BEGIN IMMEDIATE``.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock at the start of a write transaction, so two
    processes writing at once queue on the busy timeout instead of failing on a lock upgrade.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise KnowledgeBaseError(f"invalid knowledge base URL {redact_url(url)!r}: {exc}") from None
    if parsed.get_backend_name() != "sqlite":
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except Exception as exc:  # unknown dialect, missing driver
            raise KnowledgeBaseError(f"invalid knowledge base URL {redact_url(url)!r}: {exc}") from None
        _report_open_errors(engine, url)
        return engine
    database = parsed.database
    if database and database != ":memory:":
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a folder should be, no permission, read-only disk
            where = exc.filename if isinstance(exc, FileExistsError) else None
            reason = f"{where} is a file, not a folder" if where else exc.strerror or str(exc)
            raise KnowledgeBaseError(f"cannot create the folder of knowledge base {redact_url(url)}: {reason}") \
                from None
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
    _report_open_errors(engine, url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _report_open_errors(engine: Engine, url: str) -> None:
    """Turn a failure to connect (or a file that is not a database) into one :class:`KnowledgeBaseError`."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if context.connection is not None or context.is_pre_ping:
            return  # an error of a statement: the caller handles it
        original = context.original_exception
        detail = " ".join(line.strip() for line in str(original).splitlines() if line.strip())
        hint = " (is it a SQLite knowledge base?)" if "file is not a database" in detail else ""
        raise KnowledgeBaseError(f"cannot open knowledge base {redact_url(url)}: {detail or type(original).__name__}"
                                 f"{hint}") from None
