"""Services of the server: the knowledge base's version, cached statistics, recommendations and loaded models
(in process, shared by every request of one server process, see :class:`.dependencies.AppState`); model reports
are in :mod:`.reports`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from metalearn.errors import Conflict, KnowledgeBaseError, NotFound
from metalearn.knowledge_base import DatasetInfo, KnowledgeBase
from metalearn.knowledge_base.models import ConfigurationRow, DatasetRow, MetaFeatureRow, RunRow, SearchRow
from metalearn.model_io import ModelBundle
from metalearn.protocol import DEFAULT_METRICS, dumps_json, metric_for, task_of_metric
from metalearn.restriction import restriction
from metalearn.space import allows
from metalearn.warmstart.recommend import Recommender

log = logging.getLogger(__name__)

DATASET_FIELDS = ("name", "n_rows", "n_features", "n_classes", "n_categorical", "task", "content_hash", "source",
                  "family", "openml_id")


def dataset_json(info: DatasetInfo) -> dict[str, Any]:
    """The ``dataset`` block of a recommendation report, as ``Dataset.describe()`` writes it."""
    return {name: getattr(info, name) for name in DATASET_FIELDS}


def kb_version(kb: KnowledgeBase) -> tuple[int, ...]:
    """Largest ids of the tables that feed statistics and recommendations (cheap: primary-key lookups)."""
    query = select(*(select(func.max(model.id)).scalar_subquery()
                     for model in (RunRow, MetaFeatureRow, DatasetRow, SearchRow, ConfigurationRow)))
    with kb.reading() as session:
        row = session.execute(query).one()
    return tuple(int(v or 0) for v in row)


class KBVersion:
    """:func:`kb_version`, re-read from the database at most every ``max_age`` seconds.

    With it, answers cached per version can be served without touching the database (on the event
    loop); they are at most ``max_age`` seconds stale.
    """

    def __init__(self, kb: KnowledgeBase, max_age: float = 0.2) -> None:
        self.kb = kb
        self.max_age = max_age
        self._seen: tuple[float, tuple[int, ...]] | None = None

    def current(self) -> tuple[int, ...]:
        """The version, from the database unless it was read less than ``max_age`` seconds ago."""
        fresh = self.fresh()
        if fresh is not None:
            return fresh
        version = kb_version(self.kb)
        self._seen = (time.monotonic(), version)
        return version

    def fresh(self) -> tuple[int, ...] | None:
        """The version if it was read less than ``max_age`` seconds ago, else ``None`` (no database access)."""
        seen = self._seen
        if seen is None or time.monotonic() - seen[0] >= self.max_age:
            return None
        return seen[1]


class StatsCache:
    """``KnowledgeBase.stats()`` (and its JSON), recomputed only when a table gained rows."""

    def __init__(self, kb: KnowledgeBase, version: KBVersion | None = None) -> None:
        self.kb = kb
        self.version = version or KBVersion(kb)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, ...], dict[str, Any], bytes] | None = None

    def get(self) -> dict[str, Any]:
        return self._refresh()[1]

    def get_json(self) -> bytes:
        return self._refresh()[2]

    def peek_json(self) -> bytes | None:
        """The JSON if it is current as far as :meth:`KBVersion.fresh` knows (no database access)."""
        version, cached = self.version.fresh(), self._cached
        if version is not None and cached is not None and cached[0] == version:
            return cached[2]
        return None

    def _refresh(self) -> tuple[tuple[int, ...], dict[str, Any], bytes]:
        version = self.version.current()
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached
        stats = self.kb.stats()
        entry = (version, stats, json.dumps(stats, separators=(",", ":")).encode())
        with self._lock:
            self._cached = entry
        return entry


class _LRU:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def fetch(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def pop_where(self, predicate: Any) -> None:
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                del self._items[key]


class RecommendationService:
    """Recommendations by dataset id, with one :class:`Recommender` per metric cached in the process.

    Requests compare the knowledge base's version (largest run and meta-feature ids, primary-key
    lookups re-read at most every 0.2 s, see :class:`KBVersion`) with the one the recommender was built
    from. When runs were added and the recommender is older than ``rebuild_interval`` seconds, the
    first request to notice starts a thread that brings it up to date -- incrementally
    (:meth:`Recommender.updated` reads only the datasets that gained runs or meta-features), or with a full
    rebuild every ``full_rebuild_interval`` seconds -- while every request keeps using the previous one, so a
    search writing trials neither stalls other clients nor defeats the cache.
    Finished responses are cached per (metric, dataset, top, k) until the recommender changes;
    :meth:`peek` serves them without any database access.
    """

    def __init__(self, kb: KnowledgeBase, *, response_cache: bool = True, cache_size: int = 4096,
                 version: KBVersion | None = None, rebuild_interval: float = 2.0,
                 full_rebuild_interval: float = 600.0) -> None:
        self.kb = kb
        self.response_cache = response_cache
        # brought up to date at most this often: a search writes a run every few hundred ms
        self.rebuild_interval = rebuild_interval
        self.full_rebuild_interval = full_rebuild_interval
        self._built_at: dict[str, float] = {}
        self._full_built_at: dict[str, float] = {}
        self.version = version or KBVersion(kb)
        self._lock = threading.Lock()
        self._build_locks: dict[str, threading.Lock] = {}
        self._recommenders: dict[str, tuple[tuple[int, ...], Recommender]] = {}
        self._responses = _LRU(cache_size)
        self._datasets = _LRU(cache_size)
        self._tasks: dict[int, str] = {}
        # recommendations are CPU-bound Python: computed one at a time on this thread, not on the shared pool,
        # where several at once only contend for the GIL (8 clients: 167 -> 299 req/s, p95 96 -> 37 ms)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="recommend")

    @staticmethod
    def _version_key(version: tuple[int, ...]) -> tuple[int, ...]:
        return version[:2]  # runs, meta-features

    def _build(self, metric: str, version: tuple[int, ...], current: Recommender | None = None) -> Recommender:
        """A recommender for ``version``: ``current`` updated incrementally, or built afresh."""
        now = time.monotonic()
        if current is not None and now - self._full_built_at.get(metric, -1e9) < self.full_rebuild_interval:
            recommender = current.updated()
        else:
            recommender = Recommender(self.kb, metric)
            recommender.far_threshold()  # computed once here rather than in the first request
            self._full_built_at[metric] = now
        with self._lock:
            held = self._recommenders.get(metric)
            if held is None or held[0] <= version:
                self._recommenders[metric] = (version, recommender)
                self._built_at[metric] = time.monotonic()
        return recommender

    def _recent(self, metric: str) -> bool:
        return time.monotonic() - self._built_at.get(metric, -1e9) < self.rebuild_interval

    def recommender(self, metric: str) -> tuple[tuple[int, ...], Recommender]:
        version = self._version_key(self.version.current())
        with self._lock:
            current = self._recommenders.get(metric)
            lock = self._build_locks.setdefault(metric, threading.Lock())
        if current is not None and (current[0] == version or self._recent(metric)):
            return current
        if current is None:  # nothing to serve yet: everyone waits for the first build
            with lock:
                with self._lock:
                    current = self._recommenders.get(metric)
                if current is None:
                    self._build(metric, version)
            with self._lock:
                return self._recommenders[metric]
        if lock.acquire(blocking=False):  # stale: a thread brings it up to date; requests use the old one meanwhile
            threading.Thread(target=self._update, args=(metric, version, current[1], lock), daemon=True,
                             name=f"recommender-{metric}").start()
        return current

    def _update(self, metric: str, version: tuple[int, ...], current: Recommender, lock: threading.Lock) -> None:
        """Bring the recommender of ``metric`` up to date (in a thread; ``lock`` is released when done)."""
        try:
            self._build(metric, version, current)
        except Exception as exc:  # the old recommender keeps serving; the next stale request tries again
            log.warning("could not update the %s recommender: %s", metric, exc)
        finally:
            lock.release()

    def dataset(self, dataset_id: int, extractor: str) -> tuple[DatasetInfo, dict[str, Any] | None]:
        key = (dataset_id, extractor)
        cached = self._datasets.fetch(key)
        if cached is not None:
            return cached
        try:
            info = self.kb.dataset(dataset_id)
        except KnowledgeBaseError:
            raise NotFound(f"no dataset with id {dataset_id}") from None
        features = self.kb.metafeatures(dataset_id, extractor)
        if features is not None:
            self._datasets.put(key, (info, features))
        return info, features

    def forget(self, dataset_id: int) -> None:
        self._datasets.pop_where(lambda key: key[0] == dataset_id)

    def known_metric(self, dataset_id: int, metric: str | None) -> str | None:
        """``metric``, or the default metric of the dataset's task when this process already knows the task
        (no database access: safe on the event loop); None when it does not."""
        if metric is not None:
            return metric
        task = self._tasks.get(dataset_id)
        return None if task is None else DEFAULT_METRICS[task]

    def resolve_metric(self, dataset_id: int, metric: str | None) -> str:
        """``metric`` checked against the dataset's task, or that task's default metric."""
        task = self._tasks.get(dataset_id)
        if task is None:
            try:
                task = self.kb.dataset(dataset_id).task
            except KnowledgeBaseError:
                raise NotFound(f"no dataset with id {dataset_id}") from None
            self._tasks[dataset_id] = task
        return metric_for(task, metric)

    def peek(self, dataset_id: int, top: int, k: int, metric: str) -> bytes | None:
        """The cached response if it is current as far as :meth:`KBVersion.fresh` knows; no database access,
        so it can run on the event loop."""
        fresh = self.version.fresh()
        if not self.response_cache or fresh is None:
            return None
        version = self._version_key(fresh)
        with self._lock:
            current = self._recommenders.get(metric)
        if current is None or (current[0] != version and not self._recent(metric)):
            return None
        return self._responses.fetch((metric, current[0], dataset_id, top, k))

    def recommend(self, dataset_id: int, top: int, k: int, metric: str | None,
                  control: tuple[tuple[str, ...], tuple[str, ...], bool] = ((), (), False)) -> tuple[bytes, bool]:
        """JSON bytes of the report (as ``metalearn recommend --json``) and whether it came from the cache;
        ``control`` is (include, exclude, interpretable): only the recommendations they allow."""
        metric = self.resolve_metric(dataset_id, metric)
        version, recommender = self.recommender(metric)
        key = (metric, version, dataset_id, top, k) + ((control,) if any(control) else ())
        limit = (restriction(task_of_metric(metric), control[0], control[1], "interpretable" if control[2] else None)
                 if any(control) else None)  # unknown names: 400 before anything is read
        if self.response_cache:
            cached = self._responses.fetch(key)
            if cached is not None:
                return cached, True
        info, features = self.dataset(dataset_id, recommender.extractor)
        if features is None:
            raise Conflict(f"dataset {dataset_id} ({info.name}) has no meta-features for extractor "
                          f"{recommender.extractor}; upload its table again to compute them")
        report = recommender.recommend(features, top=top, k=k, dataset=dataset_json(info),
                                       exclude_hashes={info.content_hash},
                                       allowed=(lambda config: allows(limit, config)) if limit else None)
        body = dumps_json(report.to_json(), separators=(",", ":")).encode()
        if self.response_cache:
            self._responses.put(key, body)
        return body, False

    async def recommend_async(self, dataset_id: int, top: int, k: int, metric: str | None,
                              control: tuple[tuple[str, ...], tuple[str, ...], bool] = ((), (), False)
                              ) -> tuple[bytes, bool]:
        """:meth:`recommend` on the service's own thread, awaited from the event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, partial(self.recommend, dataset_id, top, k, metric, control))

    def warm_up(self, metric: str) -> None:
        self.recommender(metric)

    def close(self) -> None:
        """Stop the recommendation thread (requests still queued are cancelled)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class ModelCache:
    """Loaded models of finished searches (a few, least recently used first out), reloaded when the file changes."""

    def __init__(self, size: int = 8) -> None:
        self._models = _LRU(size)

    def get(self, path: Path) -> ModelBundle:
        stamp = path.stat().st_mtime_ns
        cached = self._models.fetch(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        bundle = ModelBundle.load(path)
        self._models.put(str(path), (stamp, bundle))
        return bundle

    def forget(self, path: Path) -> None:
        """Drop the model loaded from ``path`` (its file was deleted)."""
        self._models.pop_where(lambda key: key == str(path))
