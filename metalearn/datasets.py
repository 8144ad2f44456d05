"""Load and validate tabular classification and regression datasets.

Sources: CSV / parquet / ARFF files, OpenML datasets and tasks (through the ``openml``
package, cached in :func:`metalearn.settings.cache_dir`), and directories holding a
``manifest.json`` in the format of ``../shared/datasets/manifest.json``. Every loader ends
in :func:`from_frame`, which detects the task from the target (see :mod:`metalearn.tasks`) unless it
is given, validates the table and raises :class:`DatasetError` with a one-line message when it cannot be
used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openml
import pandas as pd
from sklearn.model_selection import train_test_split

from metalearn.errors import DatasetError
from metalearn.settings import Limits, cache_dir
from metalearn.tables import TableBudget, read_arff, read_parquet
from metalearn.tasks import check_task, detect_task, is_numeric, strata, stratified_subsample, validate_target

__all__ = [
    "SUPPORTED_SUFFIXES", "Dataset", "FeatureSchema", "ManifestEntry", "as_text", "configure_openml",
    "detect_task", "from_frame", "from_xy", "load_file", "load_openml_dataset", "load_openml_task",
    "openml_suite_tasks", "read_manifest", "read_table", "stratified_subsample",
]

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq", ".arff")
_MANGLED = re.compile(r".+\.\d+")  # how pandas renames a repeated CSV column name


@dataclass
class Dataset:
    """A validated table: features ``X``, target ``y`` (class labels, or floats for regression), provenance."""

    name: str
    X: pd.DataFrame
    y: pd.Series
    categorical: list[str]
    target: str = "target"
    source: str = "user"
    family: str | None = None
    openml_id: int | None = None
    task: str = "classification"
    _hash: str | None = field(default=None, repr=False)

    @property
    def numeric(self) -> list[str]:
        cats = set(self.categorical)
        return [c for c in self.X.columns if c not in cats]

    @property
    def n_rows(self) -> int:
        return int(len(self.X))

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of classes; None for regression."""
        return None if self.task == "regression" else int(self.y.nunique())

    @property
    def content_hash(self) -> str:
        """SHA-256 over column names, cell values and target values: the same data is the same dataset.

        A regression dataset also hashes its task (a classification hash is unchanged), so the same table
        loaded once per task -- e.g. a fractional target, whose text form is the same either way -- gives
        two datasets."""
        if self._hash is None:
            digest = hashlib.sha256()
            digest.update(json.dumps([str(c) for c in self.X.columns]).encode())
            digest.update(pd.util.hash_pandas_object(self.X, index=False).to_numpy().tobytes())
            digest.update(pd.util.hash_pandas_object(self.y.astype(str), index=False).to_numpy().tobytes())
            if self.task != "classification":
                digest.update(f"task:{self.task}".encode())
            self._hash = digest.hexdigest()
        return self._hash

    def subset(self, rows: Any, name: str | None = None) -> Dataset:
        """The rows at positions ``rows`` as a new dataset (same columns, target and provenance)."""
        return Dataset(name=name or self.name, X=self.X.iloc[rows].reset_index(drop=True),
                       y=self.y.iloc[rows].reset_index(drop=True), categorical=list(self.categorical),
                       target=self.target, source=self.source, family=self.family, openml_id=self.openml_id,
                       task=self.task)

    def split(self, test_size: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Stratified ``(train, test)`` split: on the classes (plain random when a class has a single row),
        for regression on quantile bins of the target (plain random when the data are too small)."""
        if not 0 < test_size < 1:
            raise DatasetError(f"test_size must be between 0 and 1, got {test_size}")
        index = np.arange(self.n_rows)
        n_test = int(np.ceil(test_size * self.n_rows))
        stratify = strata(self.y, self.task, min(n_test, self.n_rows - n_test))
        try:
            train, test = train_test_split(index, test_size=test_size, stratify=stratify, random_state=seed)
        except ValueError as exc:
            raise DatasetError(f"cannot hold out {test_size:g} of {self.name!r} for testing: {exc}") from None
        return self.subset(np.sort(train)), self.subset(np.sort(test))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "n_categorical": len(self.categorical),
            "content_hash": self.content_hash,
            "source": self.source,
            "family": self.family,
            "openml_id": self.openml_id,
        }


def as_text(values: pd.Series) -> pd.Series:
    """A categorical column as plain Python strings, missing values as NaN (at fit and predict time)."""
    return values.astype(object).where(values.notna(), np.nan).map(
        lambda v: v if isinstance(v, float) and np.isnan(v) else str(v)).astype(object)


def _is_categorical(series: pd.Series) -> bool:
    return not is_numeric(series)


def from_frame(
    frame: pd.DataFrame,
    target: str,
    name: str = "dataset",
    categorical: Sequence[str] | None = None,
    *,
    task: str | None = None,
    source: str = "user",
    family: str | None = None,
    openml_id: int | None = None,
    limits: Limits | None = None,
) -> Dataset:
    """Validate ``frame`` and split it into features and target.

    Non-numeric columns (and any listed in ``categorical``) become string categoricals with
    missing values kept as NaN. Rows with a missing target are dropped. ``task`` None detects the task
    from the target (:func:`detect_task`); classification labels become int64 or text, regression
    targets float64.
    """
    limits = limits or Limits.from_env()
    if task is not None:
        check_task(task)
    if not isinstance(frame, pd.DataFrame):
        raise DatasetError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DatasetError(f"dataset {name!r} is empty ({frame.shape[0]} rows, {frame.shape[1]} columns)")
    frame = frame.rename(columns=str)
    if target not in frame.columns:
        shown = ", ".join(list(frame.columns)[:10]) + (", ..." if frame.shape[1] > 10 else "")
        raise DatasetError(f"target column {target!r} not found in {name!r}; columns are: {shown}")
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise DatasetError(f"dataset {name!r} has duplicate column names: {dupes[:5]}")
    if len(frame) > limits.max_rows:
        raise DatasetError(
            f"dataset {name!r} has {len(frame):,} rows, more than the limit of {limits.max_rows:,} "
            "(METALEARN_MAX_ROWS)"
        )
    if frame.shape[1] - 1 > limits.max_columns:
        raise DatasetError(
            f"dataset {name!r} has {frame.shape[1] - 1:,} feature columns, more than the limit of "
            f"{limits.max_columns:,} (METALEARN_MAX_COLUMNS)"
        )
    frame = frame[frame[target].notna()]
    if frame.shape[1] < 2:
        raise DatasetError(f"dataset {name!r} has no feature columns besides the target {target!r}")
    y = frame[target]
    task = task or detect_task(y)[0]
    y = validate_target(y.reset_index(drop=True), task, target, name)
    X = frame.drop(columns=[target]).reset_index(drop=True)
    declared = set(categorical or ())
    unknown = declared - set(X.columns)
    if unknown:
        raise DatasetError(f"categorical columns not in {name!r}: {sorted(unknown)[:5]}")
    cats: list[str] = []
    for column in X.columns:
        if column in declared or _is_categorical(X[column]):
            X[column] = as_text(X[column])
            cats.append(column)
        elif not pd.api.types.is_float_dtype(X[column]):
            X[column] = X[column].astype(float)
    y.name = target
    return Dataset(
        name=name, X=X, y=y, categorical=cats, target=target, source=source, family=family,
        openml_id=openml_id, task=task,
    )


def read_table(path: str | os.PathLike[str], limits: Limits | None = None,
               budget: TableBudget | None = None) -> pd.DataFrame:
    """Read a CSV, parquet or ARFF file into a DataFrame with clear errors.

    Parquet and ARFF files are checked against ``budget`` (default: from ``limits``) before they are loaded
    (:mod:`metalearn.tables`); :class:`~metalearn.tables.TableTooLarge` when they exceed it."""
    limits = limits or Limits.from_env()
    budget = budget or TableBudget.from_limits(limits)
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"file not found: {path}")
    if not path.is_file():
        raise DatasetError(f"not a file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise DatasetError(f"file is empty: {path}")
    if size > limits.max_file_bytes:
        raise DatasetError(
            f"file {path.name} is {size / 2**20:.1f} MiB, more than the limit of "
            f"{limits.max_file_bytes / 2**20:.0f} MiB (METALEARN_MAX_FILE_MB)"
        )
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DatasetError(f"unsupported file type {suffix or '(none)'!r} for {path.name}; use one of "
                           f"{', '.join(SUPPORTED_SUFFIXES)}")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, nrows=limits.max_rows + 1, low_memory=False)
            _check_csv_header(path, frame)
        elif suffix in (".parquet", ".pq"):
            frame = read_parquet(path, budget)
        else:
            frame = read_arff(path, budget)
    except DatasetError:
        raise
    except Exception as exc:  # pandas, pyarrow and liac-arff raise their own exception types
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"cannot read {path.name} as {suffix[1:]}: {detail}") from None
    _check_unique_columns(path, list(frame.columns))
    return frame


def _check_unique_columns(path: Path, names: Sequence[Any]) -> None:
    """A :class:`DatasetError` naming the column names that occur more than once."""
    counts = Counter(name for name in names if not (isinstance(name, str) and name == ""))
    dupes = sorted(str(name) for name, count in counts.items() if count > 1)
    if dupes:
        shown = ", ".join(repr(name) for name in dupes[:5]) + (", ..." if len(dupes) > 5 else "")
        raise DatasetError(f"{path.name} has duplicate column names: {shown}; give every column its own name")


def _check_csv_header(path: Path, frame: pd.DataFrame) -> None:
    """pandas renames a repeated CSV header ``a`` to ``a.1``: check the header row as written instead."""
    if any(isinstance(name, str) and _MANGLED.fullmatch(name) for name in frame.columns):
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, low_memory=False)
        _check_unique_columns(path, header.iloc[0].tolist())


def load_file(
    path: str | os.PathLike[str],
    target: str,
    name: str | None = None,
    categorical: Sequence[str] | None = None,
    limits: Limits | None = None,
    task: str | None = None,
) -> Dataset:
    """Load a CSV / parquet / ARFF file; the name defaults to the file's stem, the task is detected when None."""
    frame = read_table(path, limits)
    return from_frame(frame, target, name or Path(path).stem, categorical, task=task, limits=limits)


def from_xy(
    X: Any, y: Any, name: str = "dataset", categorical: Sequence[str] | None = None, task: str | None = None
) -> Dataset:
    """Build a dataset from array-likes, as scikit-learn's ``fit(X, y)`` receives them (task detected when
    None)."""
    frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    frame.columns = [str(c) for c in frame.columns]
    target = "__target__"
    while target in frame.columns:
        target += "_"
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(frame):
        raise DatasetError(f"y must be 1-d with {len(frame)} entries, got shape {labels.shape}")
    frame[target] = labels
    dataset = from_frame(frame.reset_index(drop=True), target, name, categorical, task=task)
    dataset.y.name = "target"
    return dataset


# --------------------------------------------------------------------------- OpenML

_OPENML_TASK_TYPES = {openml.tasks.TaskType.SUPERVISED_CLASSIFICATION: "classification",
                      openml.tasks.TaskType.SUPERVISED_REGRESSION: "regression"}


def configure_openml(cache: str | os.PathLike[str] | None = None) -> Path:
    """Point openml-python's cache at ``cache`` (default :func:`cache_dir`) and return it."""
    root = cache_dir(cache)
    root.mkdir(parents=True, exist_ok=True)
    openml.config.set_root_cache_directory(str(root))
    return root


def _openml_call(what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except Exception as exc:  # openml raises many types (server, network, cache)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"cannot load {what} from OpenML: {detail}") from None


def load_openml_dataset(
    dataset_id: int, target: str | None = None, cache: str | None = None, task: str | None = None
) -> Dataset:
    """Load OpenML dataset ``dataset_id`` (its default target unless ``target`` is given; the task is
    detected from the target when None)."""
    configure_openml(cache)
    ds = _openml_call(
        f"dataset {dataset_id}", openml.datasets.get_dataset, dataset_id,
        download_data=True, download_qualities=False, download_features_meta_data=True,
    )
    target = target or (ds.default_target_attribute or "").split(",")[0]
    if not target:
        raise DatasetError(f"OpenML dataset {dataset_id} has no default target; pass one")
    X, y, cat_mask, names = _openml_call(
        f"dataset {dataset_id}", ds.get_data, target=target, dataset_format="dataframe"
    )
    frame = X.copy()
    frame[target] = y
    cats = [n for n, is_cat in zip(names, cat_mask, strict=False) if is_cat and n != target]
    ignore = [c for c in (ds.ignore_attribute or []) + ([ds.row_id_attribute] if ds.row_id_attribute else [])
              if c in frame.columns and c != target]
    frame = frame.drop(columns=ignore)
    cats = [c for c in cats if c not in ignore]
    return from_frame(frame, target, ds.name, cats, task=task, source="openml", openml_id=int(dataset_id),
                      family=ds.name)


def load_openml_task(task_id: int, cache: str | None = None) -> Dataset:
    """Load the dataset and target of OpenML task ``task_id`` (a regression task gives a regression dataset)."""
    configure_openml(cache)
    task = _openml_call(f"task {task_id}", openml.tasks.get_task, task_id, download_data=False)
    target = getattr(task, "target_name", None)
    kind = _OPENML_TASK_TYPES.get(getattr(task, "task_type_id", None))
    return load_openml_dataset(task.dataset_id, target=target, cache=cache, task=kind)


def openml_suite_tasks(suite: str | int, cache: str | None = None) -> list[int]:
    """Task ids of an OpenML benchmark suite (id or alias such as ``OpenML-CC18``)."""
    configure_openml(cache)
    study = _openml_call(f"suite {suite}", openml.study.get_suite, suite)
    return [int(t) for t in (study.tasks or [])]


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class ManifestEntry:
    """One dataset of a ``manifest.json`` directory."""

    name: str
    path: Path
    target: str
    family: str
    categorical: tuple[str, ...]
    source: str
    openml_id: int | None
    n_rows: int | None = None
    task: str = "classification"
    target_unique: int | None = None

    def load(self, limits: Limits | None = None) -> Dataset:
        frame = read_table(self.path, limits)
        return from_frame(
            frame, self.target, self.name, list(self.categorical), task=self.task, source="manifest",
            family=self.family, openml_id=self.openml_id, limits=limits,
        )


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestEntry]:
    """Entries of a manifest (the directory or its ``manifest.json``); an entry's ``task`` defaults to
    classification."""
    path = Path(path)
    manifest = path / "manifest.json" if path.is_dir() else path
    if not manifest.is_file():
        raise DatasetError(f"no manifest.json at {path}")
    try:
        items = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"manifest {manifest} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(items, list):
        raise DatasetError(f"manifest {manifest} must hold a JSON list of datasets")
    entries = []
    for i, item in enumerate(items):
        try:
            entries.append(ManifestEntry(
                name=str(item["name"]), path=manifest.parent / item["file"], target=str(item["target"]),
                family=str(item.get("family") or item["name"]),
                categorical=tuple(str(c) for c in item.get("categorical") or ()),
                source=str(item.get("source") or "manifest"),
                openml_id=int(item["openml_id"]) if item.get("openml_id") is not None else None,
                n_rows=int(item["n_rows"]) if item.get("n_rows") is not None else None,
                task=check_task(str(item.get("task") or "classification")),
                target_unique=int(item["target_unique"]) if item.get("target_unique") is not None else None,
            ))
        except (KeyError, TypeError, ValueError, DatasetError) as exc:
            raise DatasetError(f"manifest {manifest} entry {i} is malformed: {exc}") from None
    return entries


@dataclass(frozen=True)
class FeatureSchema:
    """The feature columns a model was fitted on and how each is typed; applied at fit AND predict time."""

    columns: tuple[str, ...]
    categorical: tuple[str, ...]
    classes: tuple[Any, ...] | None = None

    @classmethod
    def of(cls, dataset: Dataset) -> FeatureSchema:
        """The schema of ``dataset``; ``classes`` is None for regression."""
        if dataset.task == "regression":
            return cls(tuple(dataset.X.columns), tuple(dataset.categorical), None)
        classes = tuple(v.item() if hasattr(v, "item") else v for v in sorted(dataset.y.unique()))
        return cls(tuple(dataset.X.columns), tuple(dataset.categorical), classes)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureSchema:
        classes = data.get("classes")
        return cls(tuple(data["columns"]), tuple(data.get("categorical") or ()),
                   None if classes is None else tuple(classes))

    def to_json(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "categorical": list(self.categorical),
                "numeric": [c for c in self.columns if c not in set(self.categorical)],
                "classes": None if self.classes is None else list(self.classes)}

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's columns of ``frame``, typed as in training: categoricals as text (missing as NaN), the
        rest as floats. Other columns (e.g. the target) are ignored; a missing or non-numeric column is a
        :class:`DatasetError`."""
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(np.asarray(frame), columns=list(self.columns))
        frame = frame.rename(columns=str)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise DatasetError(f"the data lacks {len(missing)} column(s) the model needs: {shown}")
        categorical = set(self.categorical)
        X = pd.DataFrame(index=frame.index)
        for column in self.columns:
            values = frame[column]
            if column in categorical:
                X[column] = as_text(values)
                continue
            numbers = pd.to_numeric(values.astype(object).where(values.notna(), np.nan), errors="coerce")
            bad = numbers.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DatasetError(f"column {column!r} needs numbers; row {row} has {values.iloc[row]!r}")
            X[column] = numbers.astype(float)
        return X
