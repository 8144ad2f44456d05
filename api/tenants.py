"""Tenants of the server: what an identity (API key) may see, and its quotas.

**Visibility** (:class:`Access`). Every uploaded dataset records the identities that uploaded it
(``dataset_owners``) and every search the identity that started it (``searches.owner``); a model and a report
belong to their search. An identity sees its own datasets and searches only: another identity's is answered
exactly as an id that does not exist (404), so ids reveal nothing. Admin keys, and the single ``anonymous``
identity of a server without keys, see everything, including rows from before owners were recorded. The
knowledge itself -- statistics, and recommendations computed from every dataset's meta-features and runs --
stays shared.

**Quotas** (:class:`Quotas`, only when the server has keys; 429 with ``Retry-After``): searches queued or
running per identity (checked by :meth:`metalearn.api.jobs.JobManager.submit` under its lock), upload requests
per identity in any hour (per server process), and bytes of uploads kept per identity.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from metalearn.api.services import _LRU
from metalearn.errors import KnowledgeBaseError, NotFound, QueueFull
from metalearn.knowledge_base import DatasetInfo, KnowledgeBase
from metalearn.settings import ANONYMOUS, ServerSettings

UPLOAD_WINDOW = 3600.0  # seconds: uploads are counted per identity over the last hour
RETRY_SEARCH = 30  # seconds a client should wait after the per-key search quota
RETRY_STORAGE = 3600  # stored bytes do not free themselves: retry much later (or ask an admin)


@dataclass(frozen=True)
class Identity:
    """Who a request is: the name of its API key's identity; ``admin`` sees every identity's objects.

    ``keyed`` is false for the one identity of a server without keys (``anonymous``), which sees everything
    and records no owner on what it creates.
    """

    name: str
    admin: bool = False
    keyed: bool = True

    @property
    def sees_all(self) -> bool:
        return self.admin or not self.keyed

    @property
    def owner(self) -> str | None:
        """The owner recorded on the datasets and searches this identity creates."""
        return self.name if self.keyed else None


ANONYMOUS_IDENTITY = Identity(ANONYMOUS, admin=True, keyed=False)


def quota_exceeded(message: str, retry_after: int) -> QueueFull:
    """A 429 with ``Retry-After: retry_after`` (read by the server's error handler)."""
    error = QueueFull(message)
    error.retry_after = max(1, int(retry_after))  # type: ignore[attr-defined]
    return error


class Access:
    """Owner checks of datasets and searches: the object, or :class:`NotFound` for a missing id *and* for
    another identity's object. Positive answers are cached until :meth:`forget_dataset` (an owner loses a dataset
    only by deleting it)."""

    def __init__(self, kb: KnowledgeBase, cache_size: int = 65_536) -> None:
        self.kb = kb
        self._allowed = _LRU(cache_size)

    def _dataset_visible(self, user: Identity, dataset_id: int) -> bool:
        if user.sees_all or self._allowed.fetch(("dataset", user.name, dataset_id)):
            return True
        if self.kb.owns_dataset(dataset_id, user.name):
            self._allowed.put(("dataset", user.name, dataset_id), True)
            return True
        return False

    def forget_dataset(self, dataset_id: int) -> None:
        """Drop the cached answers about ``dataset_id`` (its upload was deleted: owners may have changed)."""
        self._allowed.pop_where(lambda key: key[0] == "dataset" and key[2] == dataset_id)

    def check_dataset(self, user: Identity, dataset_id: int) -> None:
        """:class:`NotFound` unless ``user`` may see the dataset (no database access once it was allowed)."""
        if not self._dataset_visible(user, dataset_id):
            raise NotFound(f"no dataset with id {dataset_id}")

    async def require_dataset(self, user: Identity, dataset_id: int) -> None:
        """:meth:`check_dataset` for the event loop: the database is read in a thread, and only when needed."""
        if not (user.sees_all or self._allowed.fetch(("dataset", user.name, dataset_id))):
            await run_in_threadpool(self.check_dataset, user, dataset_id)

    def dataset(self, user: Identity, dataset_id: int) -> DatasetInfo:
        """The dataset's row as ``user`` may see it (with the name it gave it), or :class:`NotFound`."""
        self.check_dataset(user, dataset_id)
        try:
            info = self.kb.dataset(dataset_id)
        except KnowledgeBaseError:
            raise NotFound(f"no dataset with id {dataset_id}") from None
        return self.named(user, [info])[0]

    def named(self, user: Identity, infos: list[DatasetInfo]) -> list[DatasetInfo]:
        """``infos`` with the names ``user`` gave them (the same data uploaded by two identities is one dataset,
        named by its first upload: another identity's name is never shown)."""
        if user.sees_all or not infos:
            return infos
        names = self.kb.owned_names(user.name, [info.id for info in infos])
        return [DatasetInfo(**(info.to_json() | {"name": names.get(info.id, info.name)})) for info in infos]

    def datasets(self, user: Identity, limit: int, offset: int) -> tuple[list[DatasetInfo], int]:
        """A page of the datasets ``user`` may see, oldest first, and how many there are."""
        owner = None if user.sees_all else user.name
        infos = self.kb.datasets(limit=limit, offset=offset, owner=owner)
        return self.named(user, infos), self.kb.count_datasets(owner)

    def search(self, user: Identity, search_id: int) -> dict[str, Any]:
        """The search's row, or :class:`NotFound` (also for another identity's search)."""
        try:
            row = self.kb.search(search_id)
        except KnowledgeBaseError:
            row = None
        if row is None or not (user.sees_all or row["owner"] == user.name):
            raise NotFound(f"no search with id {search_id}")
        return row

    def check_search(self, user: Identity, search_id: int) -> None:
        """:class:`NotFound` unless ``user`` may see the search (no database access once it was allowed)."""
        if user.sees_all or self._allowed.fetch(("search", user.name, search_id)):
            return
        self.search(user, search_id)
        self._allowed.put(("search", user.name, search_id), True)


class Quotas:
    """Per-identity limits of a server with keys (a server without keys has none)."""

    def __init__(self, settings: ServerSettings, kb: KnowledgeBase,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.kb, self.clock = settings, kb, clock
        self._uploads: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def applies(self, user: Identity) -> bool:
        return user.keyed and self.settings.auth_required

    def search_limit(self, user: Identity) -> int | None:
        """Searches ``user`` may have queued or running at once (``None``: no per-key limit)."""
        return self.settings.max_searches_per_key if self.applies(user) else None

    def check_storage(self, user: Identity, n_bytes: int, content_hash: str) -> None:
        """Refuse (429) an upload of ``n_bytes`` that would take ``user`` past its stored-bytes quota; the same
        table uploaded again by its owner adds nothing."""
        limit = self.settings.max_stored_bytes_per_key
        if not (self.applies(user) and limit):
            return
        known = self.kb.dataset_by_hash(content_hash)
        if known is not None and self.kb.owns_dataset(known.id, user.name):
            return
        stored = self.kb.stored_bytes(user.name)
        if stored + n_bytes > limit:
            raise quota_exceeded(
                f"{user.name} keeps {stored:,} bytes of uploads; {n_bytes:,} more would pass the limit of {limit:,} "
                "bytes per key (METALEARN_API_MAX_STORED_MB_PER_KEY)", RETRY_STORAGE)

    def count_upload(self, user: Identity) -> None:
        """Count an upload request of ``user``, or refuse it (429) beyond its uploads in the last hour."""
        per_hour = self.settings.uploads_per_hour
        if not (self.applies(user) and per_hour):
            return
        name = user.name
        now = self.clock()
        with self._lock:
            recent = self._uploads.setdefault(name, deque())
            while recent and recent[0] <= now - UPLOAD_WINDOW:
                recent.popleft()
            if len(recent) >= per_hour:
                wait = math.ceil(recent[-per_hour] + UPLOAD_WINDOW - now)
                raise quota_exceeded(f"{name} has sent {len(recent)} uploads in the last hour, the limit per key "
                                     f"(METALEARN_API_UPLOADS_PER_HOUR); retry in {wait} s", wait)
            recent.append(now)
