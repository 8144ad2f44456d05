"""What the classification and regression meta-features share: input checks, the bounded copy of the table
handed to pymfe (row and column caps, categorical level caps, imputation) and a silenced, guarded pymfe run.

See :mod:`metalearn.metafeatures` for what the caps mean; every value here is part of the extractor
versions there, so a change here must bump them.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pymfe.mfe import MFE
from threadpoolctl import threadpool_limits

from metalearn.errors import DatasetError
from metalearn.tasks import is_numeric

MAX_ROWS: int = 2000
"""Default cap on the rows handed to pymfe (stratified, seeded subsample)."""

MAX_COLS: int = 100
"""Cap on the columns handed to pymfe (seeded random subset when the table is wider)."""

MAX_CAT_LEVELS: int = 10
"""Most levels a categorical column keeps (its most frequent ones; the rest are merged as ``__other__``)."""

MAX_DUMMIES: int = 200
"""Budget of dummy columns over all categoricals: with ``c`` categorical columns each keeps at most
``max(2, min(MAX_CAT_LEVELS, 1 + MAX_DUMMIES // c))`` levels, so the encoded width stays bounded."""

LANDMARK_FOLDS: int = 5
"""Cross-validation folds for the landmarking features."""

MIN_ROWS_PER_CLASS: int = 2
"""Every class (or target bin) keeps at least ``min(MIN_ROWS_PER_CLASS, class size)`` rows in the subsample."""

SUMMARIES: tuple[str, ...] = ("nanmean", "nansd")
"""pymfe summary functions for multi-valued features."""

_SUMMARISED = "{}.nanmean", "{}.nansd"
_SCALAR = "{}"
# How pymfe names each requested feature after summarisation: scalar features keep their bare name,
# multi-valued ones get one name per summary. Checked against real pymfe output by the tests.
PYMFE_NAME_PATTERNS: dict[str, tuple[str, ...]] = {
    # general
    "freq_class": _SUMMARISED,
    "nr_attr": (_SCALAR,),
    "nr_bin": (_SCALAR,),
    "nr_cat": (_SCALAR,),
    "nr_num": (_SCALAR,),
    # statistical
    "can_cor": _SUMMARISED,
    "cor": _SUMMARISED,
    "kurtosis": _SUMMARISED,
    "nr_cor_attr": (_SCALAR,),
    "nr_disc": (_SCALAR,),
    "nr_norm": (_SCALAR,),
    "nr_outliers": (_SCALAR,),
    "skewness": _SUMMARISED,
    "sparsity": _SUMMARISED,
    "w_lambda": (_SCALAR,),
    # info-theory
    "attr_ent": _SUMMARISED,
    "class_ent": (_SCALAR,),
    "eq_num_attr": (_SCALAR,),
    "joint_ent": _SUMMARISED,
    "mut_inf": _SUMMARISED,
    "ns_ratio": (_SCALAR,),
    # model-based
    "leaves": (_SCALAR,),
    "leaves_branch": _SUMMARISED,
    "leaves_per_class": _SUMMARISED,
    "nodes": (_SCALAR,),
    "nodes_per_attr": (_SCALAR,),
    "nodes_per_inst": (_SCALAR,),
    "tree_depth": _SUMMARISED,
    "tree_imbalance": _SUMMARISED,
    "tree_shape": _SUMMARISED,
    "var_importance": _SUMMARISED,
    # landmarking
    "best_node": _SUMMARISED,
    "elite_nn": _SUMMARISED,
    "linear_discr": _SUMMARISED,
    "naive_bayes": _SUMMARISED,
    "one_nn": _SUMMARISED,
    "random_node": _SUMMARISED,
    "worst_node": _SUMMARISED,
}

_MISSING_LEVEL = "__missing__"
_OTHER_LEVEL = "__other__"


def group_names(features: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """For each pymfe group of ``features``, the sorted names pymfe gives its features after summarising."""
    return {
        group: tuple(sorted(pattern.format(name) for name in names for pattern in PYMFE_NAME_PATTERNS[name]))
        for group, names in features.items()
    }


def pymfe_feature_names(features: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The names of the pymfe part of a vector requesting ``features``, in pymfe's (sorted) output order."""
    return tuple(sorted(name for names in group_names(features).values() for name in names))


def checked_input(
    X: pd.DataFrame, y: Any, categorical: Sequence[str], seed: int, max_rows: int
) -> tuple[pd.DataFrame, pd.Series, list[bool]]:
    """``(X, y, is_cat)`` with unlabelled rows dropped, after checking the arguments of an extraction.

    Raises ``ValueError`` for a negative ``seed`` or ``max_rows < 1`` and :class:`DatasetError` for a table
    that is not a DataFrame, has no columns, does not match ``y`` in length or lacks a ``categorical`` column.
    """
    if not isinstance(X, pd.DataFrame):
        raise DatasetError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if max_rows < 1:
        raise ValueError(f"max_rows must be positive, got {max_rows}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")  # numpy's legacy seeding, used by pymfe
    y = pd.Series(y) if not isinstance(y, pd.Series) else y
    if len(y) != len(X):
        raise DatasetError(f"X has {len(X)} rows but y has {len(y)} values")
    if X.shape[1] == 0:
        raise DatasetError("the table has no feature columns")
    unknown = [name for name in categorical if name not in X.columns]
    if unknown:
        raise DatasetError(f"categorical columns not in the table: {', '.join(map(str, unknown))}")
    labelled = y.notna().to_numpy()
    if not labelled.all():
        X, y = X.loc[labelled], y.loc[labelled]
    declared = set(categorical)
    is_cat = [X.columns[j] in declared or not is_numeric(X.dtypes.iloc[j]) for j in range(X.shape[1])]
    return X, y, is_cat


def table_features(X: pd.DataFrame, is_cat: Sequence[bool]) -> dict[str, float]:
    """The size, type and missing-value features of the full table (``simple.*``, always defined)."""
    n_rows, n_cols = X.shape
    missing = X.isna().to_numpy()
    return {
        "simple.log_n_rows": math.log(n_rows),
        "simple.log_n_features": math.log(n_cols),
        "simple.log_rows_per_feature": math.log(n_rows / n_cols),
        "simple.cat_ratio": float(np.mean(is_cat)),
        "simple.missing_ratio": float(missing.mean()),
        "simple.rows_with_missing_ratio": float(missing.any(axis=1).mean()),
    }


def stratified_rows(codes: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Sorted row positions of a seeded class-stratified subsample of about ``max_rows`` rows.

    Quotas are proportional to class sizes (largest-remainder rounding), with at least
    ``min(MIN_ROWS_PER_CLASS, class size)`` rows per class, taken from the largest quotas; the total
    exceeds ``max_rows`` only if these minimums alone do. Returns all rows if there are few enough.
    """
    n = len(codes)
    if n <= max_rows:
        return np.arange(n)
    counts = np.bincount(codes)
    exact = counts * (max_rows / n)
    quota = np.floor(exact).astype(int)
    spare = max_rows - quota.sum()
    if spare > 0:
        order = np.lexsort((np.arange(len(counts)), -(exact - quota)))
        quota[order[:spare]] += 1
    floor = np.minimum(counts, MIN_ROWS_PER_CLASS)
    quota = np.maximum(quota, floor)
    for _ in range(max(0, int(quota.sum()) - max_rows)):  # pay for raised minimums from the largest
        largest = int(np.argmax(quota - floor))
        if quota[largest] <= floor[largest]:
            break
        quota[largest] -= 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(codes == k), size=q, replace=False) for k, q in enumerate(quota) if q > 0
    ]
    return np.sort(np.concatenate(chosen))


def capped_columns(n_cols: int, max_cols: int, seed: int) -> np.ndarray:
    """Sorted positions of at most ``max_cols`` columns (a seeded random subset when there are more)."""
    if n_cols <= max_cols:
        return np.arange(n_cols)
    rng = np.random.default_rng([seed, n_cols])
    return np.sort(rng.choice(n_cols, size=max_cols, replace=False))


def prepare_for_pymfe(X: pd.DataFrame, is_cat: Sequence[bool]) -> tuple[np.ndarray, list[int]]:
    """Impute/encode the bounded table into the array pymfe expects, plus its categorical positions."""
    cat_cols = [j for j, cat in enumerate(is_cat) if cat]
    max_levels = max(2, min(MAX_CAT_LEVELS, 1 + MAX_DUMMIES // max(1, len(cat_cols))))
    columns: list[np.ndarray] = []
    for j, cat in enumerate(is_cat):
        column = X.iloc[:, j]
        columns.append(_categorical_column(column, max_levels) if cat else _numeric_column(column))
    if not cat_cols:
        return np.column_stack(columns).astype(float), []
    data = np.empty((len(X), len(columns)), dtype=object)
    for j, values in enumerate(columns):
        data[:, j] = values
    return data, cat_cols


def _numeric_column(column: pd.Series) -> np.ndarray:
    """Float values with +-inf/missing replaced by the median (0 when nothing is finite)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(values)
    if finite.all():
        return values
    fill = float(np.median(values[finite])) if finite.any() else 0.0
    return np.where(finite, values, fill)


def _categorical_column(column: pd.Series, max_levels: int) -> np.ndarray:
    """String levels; missing is ``__missing__``; beyond ``max_levels`` the rarest become ``__other__``."""
    values = np.array([_MISSING_LEVEL if pd.isna(v) else str(v) for v in column.to_numpy(dtype=object)])
    counts = Counter(values.tolist())
    if len(counts) > max_levels:
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        keep = {level for level, _ in ranked[: max_levels - 1]}
        values = np.where(np.isin(values, list(keep)), values, _OTHER_LEVEL)
    return values.astype(object)


def pymfe_features(
    data: np.ndarray, y: np.ndarray, cat_cols: list[int], seed: int, features: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Run pymfe for ``features`` (group -> feature names) on the bounded table; features it cannot compute
    come back as NaN (or are absent), a group that makes pymfe raise as None."""
    try:
        return _run_mfe(data, y, cat_cols, seed, features)
    except Exception:  # pymfe raised outside its own guards: isolate the failing group(s)
        results: dict[str, Any] = {}
        names = group_names(features)
        for group in features:
            try:
                results.update(_run_mfe(data, y, cat_cols, seed, {group: features[group]}))
            except Exception:
                results.update(dict.fromkeys(names[group]))
        return results


def _run_mfe(
    data: np.ndarray, y: np.ndarray, cat_cols: list[int], seed: int, features: Mapping[str, Sequence[str]]
) -> dict:
    """One silenced pymfe fit/extract for ``features``; numpy's global RNG state is left untouched."""
    rng_state = np.random.get_state()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")
            mfe = MFE(
                groups=list(features),
                features=[feature for names in features.values() for feature in names],
                summary=list(SUMMARIES),
                num_cv_folds=LANDMARK_FOLDS,
                shuffle_cv_folds=True,
                random_state=seed,
                suppress_warnings=True,
            )
            mfe.fit(
                data,
                y,
                cat_cols=cat_cols,
                transform_num=True,
                transform_cat="gray",
                suppress_warnings=True,
            )
            names, values = mfe.extract(suppress_warnings=True)
    finally:
        np.random.set_state(rng_state)
    return dict(zip(names, values, strict=True))


def finite_or_none(value: Any) -> float | None:
    """``float(value)`` if it is a finite number, else ``None``."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
