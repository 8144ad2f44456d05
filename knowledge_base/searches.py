"""The search lifecycle: the only writer of a search's status, its owner and its heartbeat.

A search moves only forward (queued -> running -> one terminal status). An active search names the process
that runs it (``owner_pid`` on ``owner_host``), which writes a heartbeat every :data:`HEARTBEAT_INTERVAL`
seconds (:meth:`SearchRecords.keep_alive`). A search is found orphaned -- and marked ``interrupted``, its
finished runs kept -- only when its owner is gone: an owner on this host when that process no longer
exists (however old or fresh its heartbeat), an owner on another host (or none, a search stored before
heartbeats) when its last heartbeat is older than :data:`STALE_AFTER` seconds. A server restart therefore
never ends a search that another live process is still running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psutil
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from metalearn.errors import KnowledgeBaseError
from metalearn.knowledge_base.models import DatasetRow, SearchRow, utcnow
from metalearn.protocol import ACTIVE_STATUSES, SEARCH_STATUSES, TERMINAL_STATUSES

log = logging.getLogger(__name__)

#: seconds between two heartbeats of a running search
HEARTBEAT_INTERVAL = 5.0
#: a search whose last heartbeat is older than this (seconds) is orphaned
STALE_AFTER = 30.0


def this_host() -> str:
    return socket.gethostname()


def owner_alive(pid: int, beat: datetime | None = None) -> bool:
    """Whether process ``pid`` of this host is alive and is the one that beat at ``beat`` (UTC): a zombie (dead,
    not yet reaped) is gone, and so is a process started after that beat (the pid was reused)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return beat is None or process.create_time() <= beat.replace(tzinfo=UTC).timestamp() + 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # exists, another user's
        return True


class SearchRecords:
    """Mixin of :class:`~metalearn.knowledge_base.KnowledgeBase`: the search lifecycle."""

    writing: Callable[[], AbstractContextManager[Session]]  # provided by KnowledgeBase
    reading: Callable[[], AbstractContextManager[Session]]

    def start_search(self, dataset_id: int, strategy: str, settings: dict[str, Any],
                     status: str = "running", owner: str | None = None) -> int:
        """A new search row (``running``, or ``queued`` for a job that waits for a worker), run by this process;
        ``owner`` is the identity (API key) it belongs to, ``None`` for a search outside the HTTP API."""
        if status not in ACTIVE_STATUSES:
            raise KnowledgeBaseError(f"a search starts as one of {ACTIVE_STATUSES}, not {status!r}")
        now = utcnow()
        with self.writing() as session:
            row = SearchRow(dataset_id=dataset_id, strategy=strategy, settings=dict(settings), status=status,
                            started_at=now, owner_pid=os.getpid(), owner_host=this_host(), heartbeat_at=now,
                            owner=owner)
            session.add(row)
            session.flush()
            return row.id

    def set_search_status(self, search_id: int, status: str, *, when: Iterable[str] = ACTIVE_STATUSES,
                          error: str | None = None, best_run_id: int | None = None) -> bool:
        """Move a search to ``status`` if it is now one of ``when``; returns whether it moved.

        The only writer of a search's status: states move only forward (queued -> running -> one of
        the terminal statuses), so a late writer can never undo a final status.
        """
        if status not in SEARCH_STATUSES:
            raise KnowledgeBaseError(f"unknown search status {status!r}")
        allowed = [s for s in when if SEARCH_STATUSES.index(s) < SEARCH_STATUSES.index(status)
                   and s not in TERMINAL_STATUSES]
        values: dict[str, Any] = {"status": status}
        if status in TERMINAL_STATUSES:
            values.update(finished_at=utcnow(), error=error, best_run_id=best_run_id)
        elif status == "running":
            values["started_at"] = values["heartbeat_at"] = utcnow()
        with self.writing() as session:
            result = session.execute(update(SearchRow).where(SearchRow.id == search_id,
                                                             SearchRow.status.in_(allowed)).values(**values))
            return bool(result.rowcount)

    def finish_search(self, search_id: int, status: str, best_run_id: int | None = None,
                      error: str | None = None) -> bool:
        """Set the final status of an active search (a finished one keeps its status)."""
        return self.set_search_status(search_id, status, error=error, best_run_id=best_run_id)

    @staticmethod
    def _search_json(row: SearchRow) -> dict[str, Any]:
        return {"id": row.id, "dataset_id": row.dataset_id, "strategy": row.strategy,
                "settings": row.settings, "status": row.status, "error": row.error,
                "best_run_id": row.best_run_id, "started_at": row.started_at, "finished_at": row.finished_at,
                "owner_pid": row.owner_pid, "owner_host": row.owner_host, "heartbeat_at": row.heartbeat_at,
                "owner": row.owner}

    def search(self, search_id: int) -> dict[str, Any]:
        with self.reading() as session:
            row = session.get(SearchRow, search_id)
            if row is None:
                raise KnowledgeBaseError(f"no search with id {search_id}")
            return self._search_json(row)

    def list_searches(self, *, owner: str | None = None, status: str | None = None, dataset_id: int | None = None,
                      limit: int | None = None, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """A page of searches, newest first, as :meth:`search` has them plus ``dataset_name``, and how many match;
        only ``owner``'s (an identity; ``None``: everyone's), with ``status``, on ``dataset_id``."""
        where = [condition for condition, given in ((SearchRow.owner == owner, owner),
                                                    (SearchRow.status == status, status),
                                                    (SearchRow.dataset_id == dataset_id, dataset_id))
                 if given is not None]
        query = (select(SearchRow, DatasetRow.name).join(DatasetRow, DatasetRow.id == SearchRow.dataset_id)
                 .where(*where).order_by(SearchRow.id.desc()).offset(offset))
        with self.reading() as session:
            rows = session.execute(query if limit is None else query.limit(limit)).all()
            total = session.scalar(select(func.count()).select_from(SearchRow).where(*where))
            return [self._search_json(row) | {"dataset_name": name} for row, name in rows], int(total or 0)

    def count_active_searches(self, owner: str | None, dataset_id: int | None = None) -> int:
        """Searches of ``owner`` (an identity; ``None``: every one) that are queued or running (on ``dataset_id``)."""
        query = select(func.count()).select_from(SearchRow).where(SearchRow.status.in_(ACTIVE_STATUSES))
        if owner is not None:
            query = query.where(SearchRow.owner == owner)
        if dataset_id is not None:
            query = query.where(SearchRow.dataset_id == dataset_id)
        with self.reading() as session:
            return int(session.scalar(query) or 0)

    def note_search_settings(self, search_id: int, values: dict[str, Any]) -> None:
        """Merge ``values`` into a search's stored settings (e.g. the fairness request its final model was made fair
        for, recorded by the CLI once the search row exists)."""
        with self.writing() as session:
            row = session.scalar(select(SearchRow).where(SearchRow.id == search_id).with_for_update())
            if row is None:
                raise KnowledgeBaseError(f"no search with id {search_id}")
            row.settings = {**(row.settings or {}), **values}

    # ------------------------------------------------------------------ heartbeat

    def beat(self, search_ids: Iterable[int], *, claim: bool = False) -> int:
        """Record a heartbeat of the active searches ``search_ids`` (with ``claim``, this process becomes their
        owner); returns how many are still active."""
        ids = [int(i) for i in search_ids]
        if not ids:
            return 0
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if claim:
            values.update(owner_pid=os.getpid(), owner_host=this_host())
        with self.writing() as session:
            result = session.execute(update(SearchRow).where(SearchRow.id.in_(ids),
                                                             SearchRow.status.in_(ACTIVE_STATUSES)).values(**values))
            return int(result.rowcount or 0)

    @contextlib.contextmanager
    def keep_alive(self, search_id: int | None, interval: float = HEARTBEAT_INTERVAL) -> Iterator[None]:
        """Own ``search_id`` and beat for it from a small thread while the block runs (nothing for ``None``)."""
        if search_id is None:
            yield
            return
        self.beat([search_id], claim=True)
        done = threading.Event()

        def run() -> None:
            while not done.wait(interval):
                try:
                    if not self.beat([search_id]):
                        return  # finished (or found orphaned meanwhile): nothing left to keep alive
                except Exception as exc:  # a busy database must not stop the search: beat again later
                    log.warning("heartbeat of search %s failed: %s", search_id, exc)

        thread = threading.Thread(target=run, name=f"metalearn-heartbeat-{search_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)

    def orphaned_searches(self, stale_after: float = STALE_AFTER) -> list[tuple[int, str]]:
        """Active searches whose owner is gone, each with why: (search id, reason)."""
        return [(search_id, why) for search_id, why, _ in self._orphans(stale_after)]

    def interrupt_orphaned_searches(self, stale_after: float = STALE_AFTER) -> int:
        """Mark every orphaned active search ``interrupted`` (its finished runs stay); returns how many.

        Used at a server's startup and by knowledge base maintenance. A search whose owner still beats is
        left alone, and so is one that beat again since it was looked at (the update re-checks the beat).
        """
        count = 0
        for search_id, why, seen in self._orphans(stale_after):
            same_beat = SearchRow.heartbeat_at.is_(None) if seen is None else SearchRow.heartbeat_at == seen
            with self.writing() as session:
                result = session.execute(update(SearchRow).where(
                    SearchRow.id == search_id, SearchRow.status.in_(ACTIVE_STATUSES), same_beat).values(
                    status="interrupted", finished_at=utcnow(),
                    error=f"interrupted: {why}; its finished trials are kept"))
                count += int(result.rowcount or 0)
        return count

    def _orphans(self, stale_after: float) -> list[tuple[int, str, datetime | None]]:
        now, host, me = utcnow(), this_host(), os.getpid()
        with self.reading() as session:
            rows = session.execute(select(SearchRow.id, SearchRow.owner_pid, SearchRow.owner_host,
                                          SearchRow.heartbeat_at, SearchRow.started_at)
                                   .where(SearchRow.status.in_(ACTIVE_STATUSES)).order_by(SearchRow.id)).all()
        found = []
        for row in rows:
            last = row.heartbeat_at or row.started_at  # a search stored before heartbeats: its start
            if row.owner_pid is not None and row.owner_host == host:  # its owner ran here: ask the system
                if row.owner_pid != me and not owner_alive(row.owner_pid, last):
                    found.append((row.id, f"its process {row.owner_pid} on {host} is gone", row.heartbeat_at))
                continue
            age = (now - last).total_seconds() if last is not None else None
            if age is None or age > stale_after:
                beat = "ever" if age is None else f"{age:.0f} s"
                found.append((row.id, f"no heartbeat for {beat}", row.heartbeat_at))
        return found

