"""Server settings, on-disk storage, caches and the FastAPI dependencies that hand them to the routers.

Settings come from the environment (see :class:`ServerSettings`); everything a request needs is
reached through :func:`get_state`, which returns the :class:`AppState` built at startup.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import platformdirs
from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from metalearn.errors import KnowledgeBaseError, MetalearnError
from metalearn.settings import database_url

if TYPE_CHECKING:  # pragma: no cover
    from metalearn.api.jobs import JobManager
    from metalearn.knowledge_base import DatasetInfo, KnowledgeBase
    from metalearn.warmstart.recommend import Recommender

    from metalearn.datasets import Dataset

MAX_TRIALS = 1000
MAX_TIME_BUDGET = 24 * 3600.0
MAX_TRIAL_TIME_LIMIT = 3600.0
MAX_ID = 2**62
DATASET_FIELDS = ("name", "n_rows", "n_features", "n_classes", "n_categorical", "content_hash", "source",
                  "family", "openml_id")




class NotFound(MetalearnError):
    """No such dataset, search or model (HTTP 404)."""


class Conflict(MetalearnError):
    """The request does not fit the current state, e.g. a model of a running search (HTTP 409)."""


# --------------------------------------------------------------------------------------------- settings


def _env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MetalearnError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise MetalearnError(f"{name} must be at least {minimum}, got {value}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise MetalearnError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise MetalearnError(f"{name} must be a positive number, got {raw!r}")
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise MetalearnError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def parse_api_keys(raw: str) -> tuple[bytes, ...]:
    """SHA-256 digests of the comma-separated keys; ``sha256:<hex>`` entries are taken as digests already."""
    digests = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("sha256:"):
            try:
                digest = bytes.fromhex(item[len("sha256:"):])
            except ValueError:
                raise MetalearnError("METALEARN_API_KEYS: a sha256: entry must be 64 hex digits") from None
            if len(digest) != 32:
                raise MetalearnError("METALEARN_API_KEYS: a sha256: entry must be 64 hex digits")
            digests.append(digest)
        else:
            digests.append(hash_api_key(item))
    return tuple(digests)


def default_data_dir(db_url: str) -> Path:
    """A folder next to a SQLite file (``<stem>-api-data``), else the user data directory."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        return db.parent / f"{db.stem}-api-data"
    return Path(platformdirs.user_data_dir("metalearn")) / "api-data"


@dataclass(frozen=True)
class ServerSettings:
    """Settings of the HTTP service (environment variable in brackets).

    - ``db_url`` [``METALEARN_DB``]: the knowledge base.
    - ``data_dir`` [``METALEARN_DATA_DIR``]: uploaded tables, models and cancel flags; default
      ``<knowledge base stem>-api-data/`` next to a SQLite file, else ``<user data dir>/metalearn/api-data``.
    - ``api_key_hashes`` [``METALEARN_API_KEYS``]: comma-separated keys (or ``sha256:<hex>`` digests);
      when set, every endpoint but ``/v1/health`` needs ``Authorization: Bearer <key>``.
    - ``max_upload_bytes`` [``METALEARN_API_MAX_UPLOAD_BYTES`` or ``METALEARN_API_MAX_UPLOAD_MB``; 100 MiB],
      ``max_rows`` [``METALEARN_API_MAX_ROWS``; 1,000,000], ``max_columns`` [``METALEARN_API_MAX_COLUMNS``;
      2,000], ``max_cells`` [``METALEARN_API_MAX_CELLS``; 50,000,000]: the largest upload accepted.
    - ``max_body_bytes`` [``METALEARN_API_MAX_BODY_MB``; 16 MiB]: the largest JSON request body.
    - ``max_predict_rows`` [``METALEARN_API_MAX_PREDICT_ROWS``; 10,000].
    - ``search_workers`` [``METALEARN_API_SEARCH_WORKERS``; 1] searches run at once, each in its own
      process; ``search_queue`` [``METALEARN_API_SEARCH_QUEUE``; 8] more may wait, beyond that 429.
    - ``trial_time_limit`` [``METALEARN_API_TRIAL_TIME_LIMIT``; 120 s] per trial unless a request sets one.
    - ``worker_niceness`` [``METALEARN_API_WORKER_NICE``; 10]: search processes run at a lower priority so
      that they do not slow the API down.
    - ``cancel_grace`` [``METALEARN_API_CANCEL_GRACE``; 30 s]: a cancelled search still running after this
      long (a trial in progress) is killed.
    - ``seed_kb`` [``METALEARN_API_SEED``; on]: load the shipped seed into an empty knowledge base.
    - ``recover`` [``METALEARN_API_RECOVER``; on]: at startup mark searches left queued/running as failed.
    - ``recommender_max_age`` [``METALEARN_API_RECOMMENDER_MAX_AGE``; 10 s]: how stale recommendations may
      get while searches add runs (the recommender is rebuilt at most this often).
    - ``response_cache`` [``METALEARN_API_RECOMMEND_CACHE``; on]: cache recommendation responses until
      the knowledge base changes.
    """

    db_url: str
    data_dir: Path
    api_key_hashes: tuple[bytes, ...] = ()
    max_upload_bytes: int = 100 * 2**20
    max_rows: int = 1_000_000
    max_columns: int = 2_000
    max_cells: int = 50_000_000
    max_body_bytes: int = 16 * 2**20
    max_predict_rows: int = 10_000
    search_workers: int = 1
    search_queue: int = 8
    trial_time_limit: float = 120.0
    worker_niceness: int = 10
    cancel_grace: float = 30.0
    seed_kb: bool = True
    recover: bool = True
    response_cache: bool = True
    recommender_max_age: float = 10.0

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        db_url = database_url()
        raw_dir = os.environ.get("METALEARN_DATA_DIR", "").strip()
        data_dir = Path(raw_dir).expanduser().resolve() if raw_dir else default_data_dir(db_url)
        if os.environ.get("METALEARN_API_MAX_UPLOAD_BYTES", "").strip():
            upload = _env_int("METALEARN_API_MAX_UPLOAD_BYTES", cls.max_upload_bytes)
        else:
            upload = _env_int("METALEARN_API_MAX_UPLOAD_MB", cls.max_upload_bytes // 2**20) * 2**20
        values: dict[str, Any] = {
            "db_url": db_url,
            "data_dir": data_dir,
            "api_key_hashes": parse_api_keys(os.environ.get("METALEARN_API_KEYS", "")),
            "max_upload_bytes": upload,
            "max_rows": _env_int("METALEARN_API_MAX_ROWS", cls.max_rows),
            "max_columns": _env_int("METALEARN_API_MAX_COLUMNS", cls.max_columns),
            "max_cells": _env_int("METALEARN_API_MAX_CELLS", cls.max_cells),
            "max_body_bytes": _env_int("METALEARN_API_MAX_BODY_MB", cls.max_body_bytes // 2**20) * 2**20,
            "max_predict_rows": _env_int("METALEARN_API_MAX_PREDICT_ROWS", cls.max_predict_rows),
            "search_workers": _env_int("METALEARN_API_SEARCH_WORKERS", cls.search_workers),
            "search_queue": _env_int("METALEARN_API_SEARCH_QUEUE", cls.search_queue, minimum=0),
            "trial_time_limit": _env_float("METALEARN_API_TRIAL_TIME_LIMIT", cls.trial_time_limit),
            "worker_niceness": _env_int("METALEARN_API_WORKER_NICE", cls.worker_niceness, minimum=0),
            "cancel_grace": _env_float("METALEARN_API_CANCEL_GRACE", cls.cancel_grace),
            "seed_kb": _env_bool("METALEARN_API_SEED", cls.seed_kb),
            "recover": _env_bool("METALEARN_API_RECOVER", cls.recover),
            "response_cache": _env_bool("METALEARN_API_RECOMMEND_CACHE", cls.response_cache),
            "recommender_max_age": _env_float("METALEARN_API_RECOMMENDER_MAX_AGE", cls.recommender_max_age),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def auth_required(self) -> bool:
        return bool(self.api_key_hashes)


# --------------------------------------------------------------------------------------------- JSON


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN and infinities as ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and not isinstance(value, str | int | float | bool):
        if hasattr(value, "isoformat"):
            return value.isoformat()
        try:  # pandas NA / NaT
            import pandas as pd

            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
        return str(value)
    return value


def dataset_json(info: DatasetInfo) -> dict[str, Any]:
    """The ``dataset`` block of a recommendation report, as ``Dataset.describe()`` writes it."""
    return {name: getattr(info, name) for name in DATASET_FIELDS}


# --------------------------------------------------------------------------------------------- storage


class DataStore:
    """Files of the server: uploaded tables (parquet + JSON sidecar), models and cancel flags.

    ``datasets/<id>.parquet`` holds the validated table (features and target), ``datasets/<id>.json``
    the target, categorical columns and content hash; ``searches/<id>/model.joblib`` the refitted best
    pipeline of a search and ``searches/<id>/cancel`` a cancellation request.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def ensure(self) -> DataStore:
        (self.root / "datasets").mkdir(parents=True, exist_ok=True)
        (self.root / "searches").mkdir(parents=True, exist_ok=True)
        return self

    # datasets
    def table_path(self, dataset_id: int) -> Path:
        return self.root / "datasets" / f"{int(dataset_id)}.parquet"

    def sidecar_path(self, dataset_id: int) -> Path:
        return self.root / "datasets" / f"{int(dataset_id)}.json"

    def sidecar(self, dataset_id: int) -> dict[str, Any] | None:
        try:
            return json.loads(self.sidecar_path(dataset_id).read_text())
        except (OSError, ValueError):
            return None

    def has_table(self, dataset_id: int, content_hash: str) -> bool:
        meta = self.sidecar(dataset_id)
        return bool(meta and meta.get("content_hash") == content_hash and self.table_path(dataset_id).is_file())

    def save_dataset(self, dataset_id: int, dataset: Dataset) -> None:
        """Write the table atomically (temporary file, then rename); a no-op when already stored."""
        if self.has_table(dataset_id, dataset.content_hash):
            return
        frame = dataset.X.copy()
        frame[dataset.target] = dataset.y.to_numpy()
        folder = self.root / "datasets"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".parquet.tmp", delete=False) as handle:
            tmp = Path(handle.name)
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, self.table_path(dataset_id))
        finally:
            tmp.unlink(missing_ok=True)
        meta = {"id": int(dataset_id), "name": dataset.name, "target": dataset.target,
                "categorical": list(dataset.categorical), "columns": list(dataset.X.columns),
                "content_hash": dataset.content_hash, "n_rows": dataset.n_rows, "stored_at": time.time()}
        tmp_meta = self.sidecar_path(dataset_id).with_suffix(".json.tmp")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, self.sidecar_path(dataset_id))

    def load_dataset(self, dataset_id: int) -> Dataset:
        """The stored table as a :class:`Dataset` (the same content hash as when it was uploaded)."""
        import pandas as pd

        from metalearn.datasets import from_frame
        from metalearn.settings import Limits

        meta = self.sidecar(dataset_id)
        if meta is None or not self.table_path(dataset_id).is_file():
            raise MetalearnError(f"dataset {dataset_id} has no stored table on this server")
        frame = pd.read_parquet(self.table_path(dataset_id))
        unlimited = Limits(max_rows=2**62, max_columns=2**62, max_file_bytes=2**62)
        dataset = from_frame(frame, meta["target"], meta["name"], meta["categorical"], limits=unlimited)
        if dataset.content_hash != meta["content_hash"]:
            raise MetalearnError(f"stored table of dataset {dataset_id} does not match its content hash")
        return dataset

    # searches
    def search_dir(self, search_id: int) -> Path:
        return self.root / "searches" / str(int(search_id))

    def model_path(self, search_id: int) -> Path:
        return self.search_dir(search_id) / "model.joblib"

    def cancel_path(self, search_id: int) -> Path:
        return self.search_dir(search_id) / "cancel"

    def request_cancel(self, search_id: int) -> None:
        path = self.cancel_path(search_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(time.time()))

    def cancel_requested(self, search_id: int) -> bool:
        return self.cancel_path(search_id).exists()

    def remove_search(self, search_id: int) -> None:
        shutil.rmtree(self.search_dir(search_id), ignore_errors=True)


# --------------------------------------------------------------------------------------------- caches


def kb_version(kb: KnowledgeBase) -> tuple[int, ...]:
    """Largest ids of the tables that feed statistics and recommendations (cheap: primary-key lookups)."""
    from metalearn.knowledge_base.models import ConfigurationRow, DatasetRow, MetaFeatureRow, RunRow, SearchRow

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
    first request to notice rebuilds it while concurrent requests keep using the previous one, so a
    search writing trials neither stalls other clients nor defeats the cache.
    Finished responses are cached per (metric, dataset, top, k) until the recommender is rebuilt;
    :meth:`peek` serves them without any database access.
    """

    def __init__(self, kb: KnowledgeBase, *, response_cache: bool = True, cache_size: int = 4096,
                 version: KBVersion | None = None, rebuild_interval: float = 10.0) -> None:
        self.kb = kb
        self.response_cache = response_cache
        # a recommender is rebuilt at most this often: a search writes a run every few hundred ms, and
        # rebuilding on every new run (~0.2 s on the seed knowledge base) would defeat every cache
        self.rebuild_interval = rebuild_interval
        self._built_at: dict[str, float] = {}
        self.version = version or KBVersion(kb)
        self._lock = threading.Lock()
        self._build_locks: dict[str, threading.Lock] = {}
        self._recommenders: dict[str, tuple[tuple[int, ...], Recommender]] = {}
        self._responses = _LRU(cache_size)
        self._datasets = _LRU(cache_size)

    @staticmethod
    def _version_key(version: tuple[int, ...]) -> tuple[int, ...]:
        return version[:2]  # runs, meta-features

    def _build(self, metric: str, version: tuple[int, ...]) -> Recommender:
        from metalearn.warmstart.recommend import Recommender

        recommender = Recommender(self.kb, metric)
        recommender.far_threshold()  # computed once here rather than in the first request
        with self._lock:
            current = self._recommenders.get(metric)
            if current is None or current[0] <= version:
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
        if lock.acquire(blocking=False):  # stale: this request rebuilds, the others use the old one
            try:
                self._build(metric, version)
            finally:
                lock.release()
        with self._lock:
            return self._recommenders[metric]

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

    def recommend(self, dataset_id: int, top: int, k: int, metric: str) -> tuple[bytes, bool]:
        """JSON bytes of the report (as ``metalearn recommend --json``) and whether it came from the cache."""
        version, recommender = self.recommender(metric)
        key = (metric, version, dataset_id, top, k)
        if self.response_cache:
            cached = self._responses.fetch(key)
            if cached is not None:
                return cached, True
        info, features = self.dataset(dataset_id, recommender.extractor)
        if features is None:
            raise Conflict(f"dataset {dataset_id} ({info.name}) has no meta-features for extractor "
                          f"{recommender.extractor}; upload its table again to compute them")
        report = recommender.recommend(features, top=top, k=k, dataset=dataset_json(info),
                                       exclude_hashes={info.content_hash})
        body = json.dumps(jsonable(report.to_json()), separators=(",", ":"), allow_nan=False).encode()
        if self.response_cache:
            self._responses.put(key, body)
        return body, False

    def warm_up(self, metric: str) -> None:
        self.recommender(metric)


class ModelCache:
    """Loaded models of finished searches (a few, least recently used first out)."""

    def __init__(self, size: int = 8) -> None:
        self._lock = threading.Lock()
        self._models = _LRU(size)

    def get(self, path: Path) -> tuple[Any, dict[str, Any]]:
        from metalearn.model_io import load_model

        stamp = path.stat().st_mtime_ns
        with self._lock:
            cached = self._models.fetch(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        model, meta = load_model(path)
        with self._lock:
            self._models.put(str(path), (stamp, model, meta))
        return model, meta


# --------------------------------------------------------------------------------------------- state


@dataclass
class AppState:
    """Everything the routers share, built once at startup (see :func:`metalearn.api.app.create_app`)."""

    settings: ServerSettings
    kb: KnowledgeBase
    store: DataStore
    jobs: JobManager
    stats: StatsCache
    recommendations: RecommendationService
    models: ModelCache = field(default_factory=ModelCache)
    started: float = field(default_factory=time.time)
    seed_loaded: str | None = None


async def get_state(request: Request) -> AppState:
    """The application state (a FastAPI dependency)."""
    return request.app.state.metalearn


async def get_settings(request: Request) -> ServerSettings:
    return request.app.state.metalearn.settings
