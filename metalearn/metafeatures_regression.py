"""Regression meta-features: a fixed-length vector per regression dataset (see :mod:`metalearn.metafeatures`).

pymfe has no regression support (it treats ``y`` as class labels; ealcobaca/pymfe issue #98), so the vector
combines three parts, keyed by the stable names of :data:`REGRESSION_FEATURE_NAMES`:

``simple.*`` (full table, before any subsampling)
    The table features of the classification vector (``log_n_rows``, ``log_n_features``,
    ``log_rows_per_feature``, ``cat_ratio``, ``missing_ratio``, ``rows_with_missing_ratio``) and the
    target's ``target_skewness``, ``target_kurtosis`` (excess; both from population moments),
    ``target_cv`` (population standard deviation / \\|mean\\|; None when the mean is 0),
    ``target_distinct_ratio`` (distinct values / rows), ``target_zero_ratio``, ``target_outlier_ratio``
    (share beyond 1.5 IQR of the quartiles) and ``target_integer`` (1.0 when every value is whole).

``<pymfe feature>[.<summary>]`` (pymfe on the bounded copy, summaries ``nanmean`` / ``nansd``)
    The features that ignore the target -- general ``nr_attr``, ``nr_bin``, ``nr_cat``, ``nr_num``;
    statistical ``cor``, ``kurtosis``, ``nr_cor_attr``, ``nr_norm``, ``nr_outliers``, ``skewness``,
    ``sparsity``; info-theory ``attr_ent`` -- and info-theory features against the target cut into
    :data:`~metalearn.tasks.QUANTILE_BINS` equal-frequency bins: ``eq_num_attr``, ``joint_ent``,
    ``mut_inf``, ``ns_ratio``. pymfe's model-based and landmarking groups fit classifiers with stratified
    folds, and its class-based features (``freq_class``, ``can_cor``, ``w_lambda``, ``nr_disc``,
    ``class_ent``) describe classes, so none of them is used.

``landmark.<model>_r2.<summary>`` (scikit-learn on the bounded copy)
    Out-of-fold R^2 (clipped below at -1) of four cheap regressors in a shuffled
    :data:`~metalearn.metafeatures_common.LANDMARK_FOLDS`-fold cross-validation, summarised over folds
    with ``nanmean`` / ``nansd``: ``linear`` (ridge, alpha 1), ``stump`` (a depth-1 tree), ``tree``
    (depth 4) and ``knn`` (5 nearest neighbours), on standardised numeric columns and one-hot
    categoricals (the capped levels). None when the copy has fewer than ``2 * LANDMARK_FOLDS`` rows.

Rows are subsampled as for classification, stratified on the target's quantile bins; the column and
level caps, imputation, failure handling and determinism are those of the classification vector.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pymfe
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from metalearn.errors import DatasetError
from metalearn.metafeatures_common import (
    LANDMARK_FOLDS,
    MAX_COLS,
    SUMMARIES,
    capped_columns,
    finite_or_none,
    prepare_for_pymfe,
    pymfe_feature_names,
    pymfe_features,
    stratified_rows,
    table_features,
)
from metalearn.tasks import QUANTILE_BINS, is_numeric, quantile_bins

REGRESSION_PYMFE_FEATURES: dict[str, tuple[str, ...]] = {
    "general": ("nr_attr", "nr_bin", "nr_cat", "nr_num"),
    "statistical": ("cor", "kurtosis", "nr_cor_attr", "nr_norm", "nr_outliers", "skewness", "sparsity"),
    "info-theory": ("attr_ent", "eq_num_attr", "joint_ent", "mut_inf", "ns_ratio"),
}
"""pymfe groups and the features requested from each for regression (``y`` = the target's quantile bins)."""

REGRESSION_EXTRACTOR_VERSION: str = f"pymfe-{pymfe.__version__}/reg-1"
"""Identifies the regression extractor; bump ``reg-N`` whenever its features, summaries or caps change."""

REGRESSION_SIMPLE_FEATURE_NAMES: tuple[str, ...] = (
    "simple.log_n_rows",
    "simple.log_n_features",
    "simple.log_rows_per_feature",
    "simple.cat_ratio",
    "simple.missing_ratio",
    "simple.rows_with_missing_ratio",
    "simple.target_skewness",
    "simple.target_kurtosis",
    "simple.target_cv",
    "simple.target_distinct_ratio",
    "simple.target_zero_ratio",
    "simple.target_outlier_ratio",
    "simple.target_integer",
)

REGRESSION_PYMFE_FEATURE_NAMES: tuple[str, ...] = pymfe_feature_names(REGRESSION_PYMFE_FEATURES)
"""Names of the pymfe part of the regression vector, in pymfe's (sorted) output order."""


def _landmarkers(seed: int) -> dict[str, Any]:
    return {
        "knn": KNeighborsRegressor(n_neighbors=5),
        "linear": Ridge(alpha=1.0),
        "stump": DecisionTreeRegressor(max_depth=1, random_state=seed),
        "tree": DecisionTreeRegressor(max_depth=4, random_state=seed),
    }


LANDMARK_FEATURE_NAMES: tuple[str, ...] = tuple(
    f"landmark.{model}_r2.{summary}" for model in _landmarkers(0) for summary in SUMMARIES
)
"""Names of the landmarking part of the regression vector."""

REGRESSION_FEATURE_NAMES: tuple[str, ...] = (
    REGRESSION_SIMPLE_FEATURE_NAMES + REGRESSION_PYMFE_FEATURE_NAMES + LANDMARK_FEATURE_NAMES
)
"""All regression feature names, in vector order; identical for every regression dataset."""


def regression_features(
    X: pd.DataFrame, y: pd.Series, is_cat: Sequence[bool], seed: int, max_rows: int
) -> dict[str, float | None]:
    """The regression vector of a checked table (see :func:`metalearn.metafeatures_common.checked_input`)
    as ``{name: finite float or None}`` in :data:`REGRESSION_FEATURE_NAMES` order."""
    values = _target_values(y)
    features: dict[str, Any] = dict.fromkeys(REGRESSION_FEATURE_NAMES)
    features.update(table_features(X, is_cat))
    features.update(_target_features(values))
    bins = quantile_bins(values, QUANTILE_BINS)
    rows = stratified_rows(bins, max_rows, seed)
    cols = capped_columns(X.shape[1], MAX_COLS, seed)
    data, cat_cols = prepare_for_pymfe(X.iloc[rows, cols], [is_cat[j] for j in cols])
    features.update(pymfe_features(data, bins[rows], cat_cols, seed, REGRESSION_PYMFE_FEATURES))
    features.update(_landmark_features(data, cat_cols, values[rows], seed))
    return {name: finite_or_none(features[name]) for name in REGRESSION_FEATURE_NAMES}


def _target_values(y: pd.Series) -> np.ndarray:
    """The target as finite floats with at least two distinct values, else a :class:`DatasetError`."""
    if not is_numeric(y):
        raise DatasetError(f"the target is not numeric (dtype {y.dtype}); regression needs a numeric target")
    values = y.to_numpy(dtype=float)
    if len(values) == 0:
        raise DatasetError("the target has no non-missing values")
    if not np.isfinite(values).all():
        raise DatasetError("the target has infinite values; regression needs finite numbers")
    if len(np.unique(values)) < 2:
        raise DatasetError("the target has a single value; regression needs more than one")
    return values


def _target_features(values: np.ndarray) -> dict[str, float | None]:
    """Shape and kind of the target's distribution (full table)."""
    mean, std = float(values.mean()), float(values.std())
    z = (values - mean) / std
    q1, q3 = np.percentile(values, [25, 75])
    fence = 1.5 * (q3 - q1)
    return {
        "simple.target_skewness": float(np.mean(z**3)),
        "simple.target_kurtosis": float(np.mean(z**4) - 3.0),
        "simple.target_cv": std / abs(mean) if mean != 0 else None,
        "simple.target_distinct_ratio": len(np.unique(values)) / len(values),
        "simple.target_zero_ratio": float(np.mean(values == 0)),
        "simple.target_outlier_ratio": float(np.mean((values < q1 - fence) | (values > q3 + fence))),
        "simple.target_integer": float(np.all(np.mod(values, 1) == 0)),
    }


def _design_matrix(data: np.ndarray, cat_cols: list[int]) -> np.ndarray:
    """Numeric columns and one-hot categoricals of the bounded copy, standardised (constants become 0)."""
    cats = set(cat_cols)
    numeric = [data[:, j].astype(float) for j in range(data.shape[1]) if j not in cats]
    parts = [np.column_stack(numeric)] if numeric else []
    if cat_cols:
        dummies = pd.get_dummies(pd.DataFrame(data[:, cat_cols]).astype(str), dtype=float)
        parts.append(dummies.to_numpy())
    matrix = np.hstack(parts)
    std = matrix.std(axis=0)
    return (matrix - matrix.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _landmark_features(data: np.ndarray, cat_cols: list[int], y: np.ndarray, seed: int) -> dict[str, float]:
    """Fold-summarised out-of-fold R^2 of each landmarker (nothing when there are too few rows)."""
    if len(y) < 2 * LANDMARK_FOLDS:
        return {}
    matrix = _design_matrix(data, cat_cols)
    folds = list(KFold(LANDMARK_FOLDS, shuffle=True, random_state=seed).split(matrix))
    features: dict[str, float] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        for name, model in _landmarkers(seed).items():
            scores = np.array([_fold_r2(model, matrix, y, train, test) for train, test in folds])
            features[f"landmark.{name}_r2.nanmean"] = float(np.nanmean(scores)) if np.isfinite(scores).any() \
                else np.nan
            features[f"landmark.{name}_r2.nansd"] = float(np.nanstd(scores, ddof=1)) \
                if np.isfinite(scores).sum() > 1 else np.nan
    return features


def _fold_r2(model: Any, matrix: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    try:
        predicted = model.fit(matrix[train], y[train]).predict(matrix[test])
        return max(-1.0, float(r2_score(y[test], predicted)))
    except (ValueError, np.linalg.LinAlgError):
        return np.nan
