"""Tasks of datasets: which task a target column poses, its validation per task, and stratified row sampling.

(Not to be confused with :mod:`metalearn.target`, the target transforms of the regression space.)

Task detection (:func:`detect_task`) looks only at the target's values: a non-numeric or boolean target is a
classification target; a numeric one is a regression target when it has more than
:data:`MAX_DETECTED_CLASSES` distinct values, or fractional values and at least three distinct ones;
otherwise (few integer-valued codes such as 0/1/2) it is a classification target. Passing the task
explicitly overrides the detection. Regression targets are stratified on :data:`QUANTILE_BINS` quantile
bins of their values (plain random sampling when the bins are too small).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from metalearn.errors import DatasetError
from metalearn.protocol import TASKS

MAX_DETECTED_CLASSES: int = 20
"""A numeric target with more distinct values than this is detected as a regression target."""

MIN_REGRESSION_ROWS: int = 10
"""Fewest labelled rows a regression dataset may have."""

QUANTILE_BINS: int = 10
"""Quantile bins of a regression target used as strata (fewer when the data are small)."""


def is_numeric(values: Any) -> bool:
    """A numeric dtype (of a series, or a dtype): bool, text and category dtypes are not numeric here. The one rule
    for targets and feature columns alike."""
    return bool(pd.api.types.is_numeric_dtype(values)) and not pd.api.types.is_bool_dtype(values)


def detect_task(y: pd.Series) -> tuple[str, str]:
    """``(task, reason)`` for target values ``y`` (missing values ignored), e.g.
    ``("regression", "numeric target with 412 distinct values -> regression")``."""
    y = pd.Series(y)
    if not is_numeric(y):
        kind = "boolean" if pd.api.types.is_bool_dtype(y) else f"non-numeric ({y.dtype})"
        return "classification", f"{kind} target -> classification"
    values = y.dropna().to_numpy(dtype=float)
    distinct = int(len(np.unique(values)))
    if distinct > MAX_DETECTED_CLASSES:
        return "regression", f"numeric target with {distinct} distinct values -> regression"
    finite = values[np.isfinite(values)]
    if distinct >= 3 and np.any(np.mod(finite, 1) != 0):
        return "regression", f"numeric target with fractional values ({distinct} distinct) -> regression"
    return "classification", (f"numeric target with {distinct} distinct integer values "
                              f"(at most {MAX_DETECTED_CLASSES}) -> classification")


def check_task(task: str) -> str:
    """``task`` if it is one of :data:`metalearn.protocol.TASKS`, else a :class:`DatasetError`."""
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return task


def validate_target(y: pd.Series, task: str, target: str, name: str) -> pd.Series:
    """The labelled target ``y`` checked for ``task``: class labels (int64 or text) for classification,
    float64 for regression. Raises :class:`DatasetError` with a one-line reason when it is unusable."""
    if task == "regression":
        return _regression_target(y, target, name)
    n_classes = y.nunique()
    if n_classes < 2:
        raise DatasetError(
            f"target {target!r} of {name!r} has {n_classes} class(es) in {len(y)} labelled rows; "
            "classification needs at least 2"
        )
    if pd.api.types.is_float_dtype(y) and n_classes > max(50, len(y) // 2):
        raise DatasetError(
            f"target {target!r} of {name!r} looks continuous ({n_classes} distinct values); "
            "use task='regression' (or leave the task to be detected)"
        )
    return class_labels(y)


def _regression_target(y: pd.Series, target: str, name: str) -> pd.Series:
    if not is_numeric(y):
        raise DatasetError(
            f"target {target!r} of {name!r} is not numeric (dtype {y.dtype}); regression needs a numeric target"
        )
    values = y.astype(float)
    if not np.isfinite(values.to_numpy()).all():
        raise DatasetError(f"target {target!r} of {name!r} has infinite values; regression needs finite numbers")
    if len(values) < MIN_REGRESSION_ROWS:
        raise DatasetError(f"target {target!r} of {name!r} has {len(values)} labelled rows; "
                           f"regression needs at least {MIN_REGRESSION_ROWS}")
    if values.nunique() < 2:
        raise DatasetError(f"target {target!r} of {name!r} has a single value; regression needs more than one")
    return values


def class_labels(y: pd.Series) -> pd.Series:
    """Integer labels stay (or become, from integer-like text) ``int64``; others plain Python strings.

    scikit-learn mishandles pandas' Arrow-backed string dtype, and text labels such as "0" / "1"
    (forests with ``class_weight="balanced"`` fail on them), hence the normalisation.
    """
    if pd.api.types.is_bool_dtype(y):
        return y.astype("int64")
    numeric = pd.to_numeric(y.astype(object), errors="coerce")
    if numeric.notna().all() and np.all(np.mod(numeric.to_numpy(dtype=float), 1) == 0):
        return numeric.astype("int64")
    return pd.Series([str(v) for v in y], dtype=object)


def task_of_target(y: pd.Series, task: str | None = None) -> str:
    """``task`` when given; else regression for a float target (how :func:`validate_target` leaves it).

    Not :func:`detect_task`: this reads the task already decided for a validated target from its dtype, while
    detection looks at raw values (a float regression target of a few integer values would become classes)."""
    if task is not None:
        return check_task(task)
    return "regression" if pd.api.types.is_float_dtype(y) else "classification"


def quantile_bins(y: pd.Series | np.ndarray, n_bins: int = QUANTILE_BINS) -> np.ndarray:
    """Codes ``0..k-1`` of up to ``n_bins`` equal-frequency bins of the values ``y`` (tied values share a
    bin, so heavy ties give fewer bins; at least two bins when ``y`` has two distinct values)."""
    values = pd.Series(np.asarray(y, dtype=float))
    if n_bins < 2 or values.nunique() < 2:
        return np.zeros(len(values), dtype=int)
    codes = pd.qcut(values, n_bins, labels=False, duplicates="drop").to_numpy()
    if np.nanmax(codes) == 0:  # one value holds every quantile but the top: split it off
        codes = (values > values.min()).to_numpy()
    return np.asarray(codes, dtype=int)


def strata(y: pd.Series, task: str, n_min: int) -> np.ndarray | pd.Series | None:
    """Labels to stratify ``y`` on when each part must hold at least ``n_min`` rows (None: plain random).

    Classification stratifies on the classes when every class has two rows (``n_min`` is not checked:
    scikit-learn then says why a split is impossible); regression on at most ``min(QUANTILE_BINS, n_min)``
    quantile bins when there are two and each has two rows.
    """
    if task != "regression":
        return y if y.value_counts().min() >= 2 else None
    bins = quantile_bins(y, min(QUANTILE_BINS, n_min, len(y) // 2))
    counts = np.bincount(bins)
    return bins if len(counts) >= 2 and counts.min() >= 2 else None


def stratified_subsample(
    X: pd.DataFrame, y: pd.Series, max_rows: int | None, seed: int = 0, task: str | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """At most ``max_rows`` rows: for classification keeping class proportions (and every class present),
    for regression the target's quantile bins. ``task`` None: regression for a float ``y``."""
    if max_rows is None or len(X) <= max_rows:
        return X, y
    if task_of_target(y, task) == "regression":
        stratify = strata(y, "regression", min(max_rows, len(X) - max_rows))
        chosen, _ = train_test_split(np.arange(len(X)), train_size=max_rows, stratify=stratify,
                                     random_state=seed)
        idx = np.sort(chosen)
        return X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True)
    counts = y.value_counts()
    keep_all = y.isin(counts[counts < 2].index)
    rest = ~keep_all
    size = max(max_rows - int(keep_all.sum()), len(counts))
    idx_rest = np.flatnonzero(rest.to_numpy())
    chosen, _ = train_test_split(idx_rest, train_size=size, stratify=y.iloc[idx_rest], random_state=seed)
    idx = np.sort(np.concatenate([np.flatnonzero(keep_all.to_numpy()), chosen]))
    return X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True)
