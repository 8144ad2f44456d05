"""The repository API over the knowledge base: what the rest of metalearn reads and writes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, delete, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from metalearn.errors import Conflict, KnowledgeBaseError
from metalearn.knowledge_base import migrate
from metalearn.knowledge_base.engine import create_kb_engine, is_sqlite
from metalearn.knowledge_base.ensembles import EnsembleRecords
from metalearn.knowledge_base.models import (
    ConfigurationRow,
    DatasetOwnerRow,
    DatasetRow,
    MetaFeatureRow,
    RunRow,
    SearchRow,
    utcnow,
)
from metalearn.knowledge_base.queries import EvidenceQueries, rows_frame
from metalearn.knowledge_base.searches import SearchRecords, this_host
from metalearn.protocol import ACTIVE_STATUSES, CONTINUABLE_STATUSES, DEFAULT_TASK, ENSEMBLE_ORIGIN, RUN_STATUSES
from metalearn.settings import database_url, redact_url
from metalearn.space import SPACE_VERSIONS, canonical_json, config_hash, task_of_config


@dataclass
class RunRecord:
    """One finished trial, as handed to :meth:`KnowledgeBase.record_runs`."""

    dataset_id: int
    config: Mapping[str, Any]
    algorithm: str
    metric: str
    status: str
    score: float | None
    seconds: float
    origin: str
    score_std: float | None = None
    search_id: int | None = None
    budget: float = 1.0
    seed: int | None = None
    error: str | None = None
    run_key: str | None = None
    space_version: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    content_hash: str
    source: str
    openml_id: int | None
    family: str | None
    target: str | None
    n_rows: int
    n_features: int
    n_classes: int | None
    n_categorical: int
    task: str = DEFAULT_TASK

    @classmethod
    def from_row(cls, row: DatasetRow) -> DatasetInfo:
        regression = row.task == "regression"
        return cls(row.id, row.name, row.content_hash, row.source, row.openml_id, row.family, row.target,
                   row.n_rows, row.n_features, None if regression else row.n_classes, row.n_categorical, row.task)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class KnowledgeBase(SearchRecords, EnsembleRecords, EvidenceQueries):
    """Datasets, meta-features, configurations, runs and searches, behind one object.

    ``url`` is a file path (SQLite) or any SQLAlchemy URL; ``None`` reads ``METALEARN_DB``.
    Tables are created on first use.
    """

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        self.url = database_url(url)
        self._reader = create_kb_engine(self.url)
        self._writer = create_kb_engine(self.url, immediate=True) if is_sqlite(self.url) else self._reader
        self._read = sessionmaker(self._reader, expire_on_commit=False)
        self._write = sessionmaker(self._writer, expire_on_commit=False)
        if create:
            self.create_schema()

    @property
    def engine(self) -> Engine:
        return self._reader

    def __repr__(self) -> str:
        return f"KnowledgeBase({redact_url(self.url)!r})"

    def create_schema(self) -> None:
        """Create or migrate the schema to the newest Alembic revision (a no-op when up to date)."""
        try:
            if migrate.current_revision(self._reader) != migrate.head_revision():
                self.upgrade()
        except OperationalError as exc:
            raise KnowledgeBaseError(f"cannot open knowledge base {redact_url(self.url)}: {exc.orig}") from None

    def upgrade(self) -> tuple[str | None, str]:
        """Apply pending migrations; returns (revision before, revision after)."""
        if migrate.current_revision(self._reader) is None and inspect(self._reader).has_table("datasets"):
            migrate.stamp(self._writer, "0001")  # created before migrations existed: same schema as 0001
        return migrate.upgrade(self._writer)

    def dispose(self) -> None:
        self._reader.dispose()
        if self._writer is not self._reader:
            self._writer.dispose()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write transaction: everything in it is committed together or not at all."""
        with self._write() as session, session.begin():
            yield session

    # ------------------------------------------------------------------ datasets

    def register_dataset(
        self,
        *,
        name: str,
        content_hash: str,
        n_rows: int,
        n_features: int,
        n_classes: int,
        n_categorical: int = 0,
        source: str = "user",
        family: str | None = None,
        openml_id: int | None = None,
        target: str | None = None,
        task: str = DEFAULT_TASK,
    ) -> int:
        """Id of the dataset with this content hash, registering it first if new.

        Two processes registering the same new table at once (PostgreSQL: the second insert violates the unique
        content hash) both get the one row.
        """
        with self.writing() as session:
            existing = session.scalar(select(DatasetRow.id).where(DatasetRow.content_hash == content_hash))
            if existing is None:
                try:
                    with session.begin_nested():
                        row = DatasetRow(name=name, content_hash=content_hash, n_rows=n_rows, n_features=n_features,
                                         n_classes=n_classes or 0, n_categorical=n_categorical, source=source,
                                         family=family, openml_id=openml_id, target=target, task=task)
                        session.add(row)
                    return row.id
                except IntegrityError:  # another writer registered it meanwhile: read its row
                    existing = session.scalar(select(DatasetRow.id).where(DatasetRow.content_hash == content_hash))
                    if existing is None:
                        raise
            if family or openml_id:
                row = session.get(DatasetRow, existing)
                row.family = row.family or family
                row.openml_id = row.openml_id or openml_id
            return existing

    def register(self, dataset: Any) -> int:
        """Register a :class:`metalearn.datasets.Dataset`."""
        return self.register_dataset(
            name=dataset.name, content_hash=dataset.content_hash, n_rows=dataset.n_rows,
            n_features=dataset.n_features, n_classes=dataset.n_classes,
            n_categorical=len(dataset.categorical), source=dataset.source, family=dataset.family,
            openml_id=dataset.openml_id, target=dataset.target, task=getattr(dataset, "task", DEFAULT_TASK),
        )

    def dataset(self, dataset_id: int) -> DatasetInfo:
        with self.reading() as session:
            row = session.get(DatasetRow, dataset_id)
            if row is None:
                raise KnowledgeBaseError(f"no dataset with id {dataset_id} in the knowledge base")
            return DatasetInfo.from_row(row)

    def dataset_by_hash(self, content_hash: str) -> DatasetInfo | None:
        with self.reading() as session:
            row = session.scalar(select(DatasetRow).where(DatasetRow.content_hash == content_hash))
            return DatasetInfo.from_row(row) if row else None

    def datasets(self, limit: int | None = None, offset: int = 0, owner: str | None = None) -> list[DatasetInfo]:
        """Datasets, oldest first; with ``owner``, only the ones that identity uploaded."""
        query = select(DatasetRow).order_by(DatasetRow.id).offset(offset)
        if owner is not None:
            query = query.where(DatasetRow.id.in_(select(DatasetOwnerRow.dataset_id)
                                                  .where(DatasetOwnerRow.owner == owner)))
        if limit is not None:
            query = query.limit(limit)
        with self.reading() as session:
            return [DatasetInfo.from_row(r) for r in session.scalars(query)]

    def count_datasets(self, owner: str | None = None) -> int:
        """Number of datasets (one ``COUNT``); with ``owner``, of the ones that identity uploaded."""
        if owner is None:
            query = select(func.count()).select_from(DatasetRow)
        else:
            query = select(func.count()).select_from(DatasetOwnerRow).where(DatasetOwnerRow.owner == owner)
        with self.reading() as session:
            return int(session.scalar(query) or 0)

    # ------------------------------------------------------------------ owners of uploaded datasets

    def add_dataset_owner(self, dataset_id: int, owner: str, n_bytes: int, name: str | None = None) -> bool:
        """Record that ``owner`` uploaded the dataset (``n_bytes``: the upload's size, ``name``: the name it gave);
        False when it had already."""
        with self.writing() as session:
            if self._owns(session, dataset_id, owner):
                return False
            try:
                with session.begin_nested():
                    session.add(DatasetOwnerRow(dataset_id=dataset_id, owner=owner, n_bytes=int(n_bytes),
                                                name=name))
            except IntegrityError:  # the same owner's concurrent upload of the same table (PostgreSQL)
                return False
            return True

    def owns_dataset(self, dataset_id: int, owner: str) -> bool:
        """Whether ``owner`` uploaded the dataset."""
        with self.reading() as session:
            return self._owns(session, dataset_id, owner)

    def owned_names(self, owner: str, dataset_ids: Iterable[int]) -> dict[int, str]:
        """The names ``owner`` gave the datasets it uploaded, by dataset id."""
        ids = [int(i) for i in dataset_ids]
        if not ids:
            return {}
        query = select(DatasetOwnerRow.dataset_id, DatasetOwnerRow.name).where(
            DatasetOwnerRow.owner == owner, DatasetOwnerRow.dataset_id.in_(ids))
        with self.reading() as session:
            return {int(d): n for d, n in session.execute(query) if n}

    def dataset_owners(self, dataset_id: int) -> list[str]:
        """The identities that uploaded the dataset."""
        with self.reading() as session:
            return list(session.scalars(select(DatasetOwnerRow.owner).where(DatasetOwnerRow.dataset_id == dataset_id)
                                        .order_by(DatasetOwnerRow.id)))

    def remove_dataset_owners(self, dataset_id: int, owner: str | None = None) -> None:
        """Forget that ``owner`` (``None``: every identity) uploaded the dataset: it no longer sees it, and the upload
        stops counting against its stored-bytes quota. The dataset, its meta-features and runs stay."""
        query = delete(DatasetOwnerRow).where(DatasetOwnerRow.dataset_id == dataset_id)
        with self.writing() as session:
            session.execute(query if owner is None else query.where(DatasetOwnerRow.owner == owner))

    @staticmethod
    def _owns(session: Session, dataset_id: int, owner: str) -> bool:
        return session.scalar(select(DatasetOwnerRow.id).where(DatasetOwnerRow.dataset_id == dataset_id,
                                                               DatasetOwnerRow.owner == owner)) is not None

    def stored_bytes(self, owner: str) -> int:
        """Bytes of the uploads ``owner`` keeps on the server (each dataset counted once per owner)."""
        with self.reading() as session:
            return int(session.scalar(select(func.coalesce(func.sum(DatasetOwnerRow.n_bytes), 0))
                                      .where(DatasetOwnerRow.owner == owner)) or 0)

    # ------------------------------------------------------------------ meta-features

    def store_metafeatures(self, dataset_id: int, extractor: str, values: Mapping[str, float | None],
                           seconds: float) -> None:
        """Store (or replace) the meta-feature vector of a dataset for one extractor version."""
        with self.writing() as session:
            row = session.scalar(select(MetaFeatureRow).where(
                MetaFeatureRow.dataset_id == dataset_id, MetaFeatureRow.extractor == extractor))
            if row is None:
                session.add(MetaFeatureRow(dataset_id=dataset_id, extractor=extractor, values=dict(values),
                                           seconds=seconds))
            else:
                row.values, row.seconds = dict(values), seconds

    def metafeatures(self, dataset_id: int, extractor: str) -> dict[str, float | None] | None:
        with self.reading() as session:
            return session.scalar(select(MetaFeatureRow.values).where(
                MetaFeatureRow.dataset_id == dataset_id, MetaFeatureRow.extractor == extractor))

    def metafeature_matrix(self, extractor: str) -> pd.DataFrame:
        """All meta-feature vectors of one extractor: one row per dataset id (NaN where undefined)."""
        with self.reading() as session:
            rows = session.execute(select(MetaFeatureRow.dataset_id, MetaFeatureRow.values).where(
                MetaFeatureRow.extractor == extractor)).all()
        frame = pd.DataFrame([r.values for r in rows], index=[r.dataset_id for r in rows], dtype=float)
        frame.index.name = "dataset_id"
        return frame

    # ------------------------------------------------------------------ configurations and runs

    def _configuration_id(self, session: Session, config: Mapping[str, Any], algorithm: str,
                          space_version: str) -> int:
        digest = config_hash(config, space_version)
        found = session.scalar(select(ConfigurationRow.id).where(ConfigurationRow.config_hash == digest))
        if found is not None:
            return found
        try:
            with session.begin_nested():
                row = ConfigurationRow(space_version=space_version, algorithm=algorithm,
                                       config_json=canonical_json(config), config_hash=digest,
                                       task=task_of_config(config))
                session.add(row)
            return row.id
        except IntegrityError:  # another writer inserted it meanwhile (PostgreSQL)
            return session.scalar(select(ConfigurationRow.id).where(ConfigurationRow.config_hash == digest))

    def register_configuration(self, config: Mapping[str, Any], algorithm: str, space_version: str) -> int:
        """The id of ``config`` (inserted if new), without any run."""
        with self.writing() as session:
            return self._configuration_id(session, config, algorithm, space_version)

    def configuration(self, configuration_id: int) -> dict[str, Any]:
        with self.reading() as session:
            row = session.get(ConfigurationRow, configuration_id)
            if row is None:
                raise KnowledgeBaseError(f"no configuration with id {configuration_id}")
            return json.loads(row.config_json)

    def _configuration_ids(self, session: Session, runs: Sequence[RunRecord]) -> list[int]:
        """Configuration id of every run, inserting the new configurations in one statement."""
        keys = [(run.space_version or SPACE_VERSIONS[task_of_config(run.config)], canonical_json(run.config))
                for run in runs]
        hashes = [config_hash(run.config, space) for run, (space, _) in zip(runs, keys, strict=True)]
        unique = list(dict.fromkeys(hashes))
        found: dict[str, int] = {}
        for i in range(0, len(unique), 500):
            chunk = unique[i:i + 500]
            found.update(session.execute(select(ConfigurationRow.config_hash, ConfigurationRow.id).where(
                ConfigurationRow.config_hash.in_(chunk))).tuples().all())
        missing = {}
        for run, (space, text), digest in zip(runs, keys, hashes, strict=True):
            if digest not in found and digest not in missing:
                missing[digest] = {"space_version": space, "algorithm": run.algorithm, "config_json": text,
                                   "config_hash": digest, "task": task_of_config(run.config), "created_at": utcnow()}
        if missing:
            try:
                with session.begin_nested():
                    session.execute(insert(ConfigurationRow), list(missing.values()))
            except IntegrityError:  # a concurrent writer added some of them (PostgreSQL): one by one
                for row in missing.values():
                    self._configuration_id(session, json.loads(row["config_json"]), row["algorithm"],
                                           row["space_version"])
            found.update(session.execute(select(ConfigurationRow.config_hash, ConfigurationRow.id).where(
                ConfigurationRow.config_hash.in_(list(missing)))).tuples().all())
        return [found[h] for h in hashes]

    def record_runs(self, runs: Sequence[RunRecord]) -> list[int]:
        """Store a batch of runs in one transaction (all or nothing), with bulk inserts.

        Runs whose ``run_key`` is already stored are skipped, which makes resumed jobs idempotent.
        Returns the ids of the rows written, in order.
        """
        for run in runs:
            if run.status not in RUN_STATUSES:
                raise KnowledgeBaseError(f"run status must be one of {RUN_STATUSES}, got {run.status!r}")
            if run.status == "success" and run.score is None:
                raise KnowledgeBaseError("a successful run needs a score")
        if not runs:
            return []
        keys = [r.run_key for r in runs if r.run_key]
        with self.writing() as session:
            seen: set[str] = set()
            for i in range(0, len(keys), 500):
                seen.update(session.scalars(select(RunRow.run_key).where(RunRow.run_key.in_(keys[i:i + 500]))))
            fresh = []
            for run in runs:
                if run.run_key and run.run_key in seen:
                    continue
                if run.run_key:
                    seen.add(run.run_key)
                fresh.append(run)
            if not fresh:
                return []
            config_ids = self._configuration_ids(session, fresh)
            now = utcnow()
            rows = [{"dataset_id": run.dataset_id, "configuration_id": config_id, "search_id": run.search_id,
                     "metric": run.metric, "score": run.score, "score_std": run.score_std, "seconds": run.seconds,
                     "status": run.status, "budget": run.budget, "origin": run.origin, "seed": run.seed,
                     "error": run.error, "run_key": run.run_key, "created_at": now}
                    for run, config_id in zip(fresh, config_ids, strict=True)]
            result = session.execute(insert(RunRow).returning(RunRow.id, sort_by_parameter_order=True), rows)
            return [int(i) for i in result.scalars().all()]

    def run_keys(self, prefix: str) -> set[str]:
        with self.reading() as session:
            return set(session.scalars(select(RunRow.run_key).where(RunRow.run_key.startswith(prefix))))

    def runs_frame(self, dataset_id: int | None = None, search_id: int | None = None,
                   run_key_prefix: str | None = None, ensembles: bool = False,
                   search_ids: Iterable[int] | None = None) -> pd.DataFrame:
        """Runs (with algorithm and configuration JSON) as a DataFrame, oldest first; the runs that record a
        search's ensemble (origin ``ensemble``) only with ``ensembles=True``; ``search_ids``: of these searches."""
        query = (select(RunRow.id, RunRow.dataset_id, RunRow.configuration_id, RunRow.search_id, RunRow.metric,
                        RunRow.score, RunRow.score_std, RunRow.seconds, RunRow.status, RunRow.budget,
                        RunRow.origin, RunRow.seed, RunRow.error, RunRow.created_at, RunRow.run_key,
                        ConfigurationRow.algorithm, ConfigurationRow.config_json)
                 .join(ConfigurationRow, ConfigurationRow.id == RunRow.configuration_id).order_by(RunRow.id))
        if dataset_id is not None:
            query = query.where(RunRow.dataset_id == dataset_id)
        if search_id is not None:
            query = query.where(RunRow.search_id == search_id)
        if search_ids is not None:
            query = query.where(RunRow.search_id.in_([int(i) for i in search_ids]))
        if run_key_prefix is not None:
            query = query.where(RunRow.run_key.startswith(run_key_prefix))
        if not ensembles:
            query = query.where(RunRow.origin != ENSEMBLE_ORIGIN)
        with self.reading() as session:
            return rows_frame(session.execute(query), [
                "id", "dataset_id", "configuration_id", "search_id", "metric", "score", "score_std", "seconds",
                "status", "budget", "origin", "seed", "error", "created_at", "run_key", "algorithm", "config_json"])

    def configurations(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = list(ids)
        with self.reading() as session:
            rows = session.execute(select(ConfigurationRow.id, ConfigurationRow.config_json).where(
                ConfigurationRow.id.in_(ids))).all() if ids else []
        return {r.id: json.loads(r.config_json) for r in rows}

    def configuration_hashes(self, ids: Iterable[int]) -> dict[int, str]:
        """The stored ``config_hash`` of each configuration id (the identity that holds across knowledge bases)."""
        ids = [int(i) for i in ids]
        with self.reading() as session:
            rows = session.execute(select(ConfigurationRow.id, ConfigurationRow.config_hash).where(
                ConfigurationRow.id.in_(ids))).all() if ids else []
        return {int(r.id): r.config_hash for r in rows}

    # ------------------------------------------------------------------ continued searches

    def reopen_search(self, search_id: int, status: str = "running", note: Mapping[str, Any] | None = None) -> None:
        """Move a finished search (one of ``CONTINUABLE_STATUSES``) back to ``running`` -- or ``queued``, for a
        worker -- to continue it, owned by this process; ``note`` (e.g. the added budget) is appended to its
        settings' ``continued`` list. The one transition against the forward order of a search's states (see
        :meth:`set_search_status`); :class:`Conflict` for a search that is still queued or running."""
        if status not in ACTIVE_STATUSES:
            raise KnowledgeBaseError(f"a search is continued as one of {ACTIVE_STATUSES}, not {status!r}")
        with self.writing() as session:
            row = session.scalar(select(SearchRow).where(SearchRow.id == search_id).with_for_update())
            if row is None:
                raise KnowledgeBaseError(f"no search with id {search_id}")
            if row.status not in CONTINUABLE_STATUSES:
                raise Conflict(f"search {search_id} is {row.status}; only a finished search can be continued")
            now = utcnow()
            settings = dict(row.settings or {})
            settings["continued"] = [*settings.get("continued", []), {**(note or {}), "at": now.isoformat() + "Z"}]
            row.settings, row.status, row.finished_at, row.error = settings, status, None, None
            row.owner_pid, row.owner_host, row.heartbeat_at = os.getpid(), this_host(), now
