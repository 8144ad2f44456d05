"""A cache of the seeded SQLite knowledge base: seeding an empty SQLite file a second time is a file copy.

Loading the shipped snapshot (tens of thousands of runs) takes 10-20 s. What it produces depends only on the snapshot's
bytes and the schema revision, so the first load keeps a copy in ``<cache dir>/seed/<sha256>-<revision>.sqlite``
(``METALEARN_CACHE_DIR``); later, an empty SQLite knowledge base is filled from it with SQLite's online backup,
after ``PRAGMA quick_check`` of the copy (a damaged copy is deleted and the snapshot loaded instead).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from metalearn.knowledge_base import migrate
from metalearn.knowledge_base.engine import is_sqlite
from metalearn.knowledge_base.repository import KnowledgeBase
from metalearn.settings import cache_dir

log = logging.getLogger(__name__)


def _database_file(kb: KnowledgeBase) -> Path | None:
    """The SQLite file of ``kb`` (None for other databases and in-memory SQLite)."""
    if not is_sqlite(kb.url):
        return None
    database = make_url(kb.url).database
    return Path(database) if database and database != ":memory:" else None


def cached_copy(snapshot: Path) -> Path:
    """Where the seeded copy of ``snapshot`` for the current schema revision is kept."""
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()[:16]
    return cache_dir() / "seed" / f"{digest}-{migrate.head_revision()}.sqlite"


def restore(kb: KnowledgeBase, snapshot: Path) -> bool:
    """Fill the empty SQLite ``kb`` from the cached copy of ``snapshot``; False when there is none to use."""
    target = _database_file(kb)
    if target is None:
        return False
    copy = cached_copy(snapshot)
    if not copy.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as source:
            if source.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise sqlite3.DatabaseError("quick_check failed")
            with contextlib.closing(sqlite3.connect(target, timeout=60)) as destination:
                source.backup(destination)
    except sqlite3.Error as exc:
        log.warning("the cached seed %s is unusable (%s): loading the snapshot instead", copy, exc)
        copy.unlink(missing_ok=True)
        return False
    kb.dispose()  # pooled connections open the restored file afresh
    return True


def store(kb: KnowledgeBase, snapshot: Path) -> None:
    """Keep a copy of the just-seeded SQLite ``kb`` for :func:`restore` (best effort: a cache)."""
    source_file = _database_file(kb)
    if source_file is None:
        return
    copy = cached_copy(snapshot)
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=copy.name, suffix=".tmp", dir=copy.parent)
        os.close(handle)
        with contextlib.closing(sqlite3.connect(source_file, timeout=60)) as source, \
                contextlib.closing(sqlite3.connect(temporary)) as destination:
            source.backup(destination)
            destination.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        os.replace(temporary, copy)
    except (OSError, sqlite3.Error) as exc:
        log.info("could not cache the seeded knowledge base in %s: %s", copy.parent, exc)
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temporary)
