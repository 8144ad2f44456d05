"""SQLAlchemy 2.x ORM models of the knowledge base of past experiments."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    """A dataset seen by metalearn; the content hash makes the same data the same dataset."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(64), default="user")
    openml_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    family: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    n_rows: Mapped[int] = mapped_column(Integer)
    n_features: Mapped[int] = mapped_column(Integer)
    n_classes: Mapped[int] = mapped_column(Integer)
    n_categorical: Mapped[int] = mapped_column(Integer, default=0)
    #: classification or regression (``n_classes`` is 0 for regression)
    task: Mapped[str] = mapped_column(String(16), default="classification", server_default="classification",
                                      index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


#: longest identity name of an API key (see :func:`metalearn.settings.parse_api_keys`)
OWNER_LENGTH = 64


class DatasetOwnerRow(Base):
    """An identity (API key) that uploaded a dataset's table: it may read the dataset and search on it.

    The same data uploaded by two identities is one dataset (one content hash) with two owners. A dataset
    without owners (the shipped seed, CLI runs, uploads from before owners were recorded) is visible to
    admin keys and to a server without keys only.
    """

    __tablename__ = "dataset_owners"
    __table_args__ = (UniqueConstraint("dataset_id", "owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), index=True)
    #: the name this owner gave the dataset (the dataset's own name is the first upload's)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: size of the upload that gave this owner the dataset (counted against its stored-bytes quota)
    n_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MetaFeatureRow(Base):
    """Meta-feature vector of a dataset for one extractor version."""

    __tablename__ = "metafeatures"
    __table_args__ = (UniqueConstraint("dataset_id", "extractor"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    extractor: Mapped[str] = mapped_column(String(128))
    seconds: Mapped[float] = mapped_column(Float)
    values: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConfigurationRow(Base):
    """A pipeline configuration: canonical JSON in one search-space version, unique by hash."""

    __tablename__ = "configurations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_version: Mapped[str] = mapped_column(String(64), index=True)
    algorithm: Mapped[str] = mapped_column(String(64), index=True)
    config_json: Mapped[str] = mapped_column(Text)
    config_hash: Mapped[str] = mapped_column(String(64), unique=True)
    task: Mapped[str] = mapped_column(String(16), default="classification", server_default="classification",
                                      index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SearchRow(Base):
    """One search (warm, cold, random, seeding, ...) on a dataset."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    strategy: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    best_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: the process that runs (or queued) an active search, and its last sign of life (UTC)
    owner_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: the identity (API key) that started it over HTTP; NULL for CLI / library searches and older rows
    owner: Mapped[str | None] = mapped_column(String(OWNER_LENGTH), nullable=True, index=True)


class RunRow(Base):
    """One evaluated trial: a configuration on a dataset, with its score or failure status."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_dataset_metric", "dataset_id", "metric", "status"),
        Index("ix_runs_origin", "origin"),
        Index("ix_runs_budget", "budget"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    configuration_id: Mapped[int] = mapped_column(ForeignKey("configurations.id"), index=True)
    search_id: Mapped[int | None] = mapped_column(ForeignKey("searches.id"), nullable=True, index=True)
    metric: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_std: Mapped[float | None] = mapped_column(Float, nullable=True)
    seconds: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    budget: Mapped[float] = mapped_column(Float, default=1.0)
    origin: Mapped[str] = mapped_column(String(32))
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EnsembleMemberRow(Base):
    """A member of an ensemble run (origin ``ensemble``): which trial's run, with which weight."""

    __tablename__ = "ensemble_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ensemble_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    member_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    weight: Mapped[float] = mapped_column(Float)
