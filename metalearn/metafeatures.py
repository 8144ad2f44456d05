"""Dataset meta-features for warm starting: a fixed-length vector per dataset, one layout per task.

``extract_metafeatures(X, y, categorical, seed, max_rows, task)`` returns :class:`MetaFeatures` whose
``extractor`` is :data:`EXTRACTOR_VERSIONS` ``[task]``. Regression (``task="regression"``) has its own
names, :data:`REGRESSION_FEATURE_NAMES`, described in :mod:`metalearn.metafeatures_regression`; the rest
of this docstring describes the classification vector (the default task), whose caps, categorical and
missing-value handling, failure handling and threading the regression vector shares
(:mod:`metalearn.metafeatures_common`).

The classification vector has two parts, both keyed by stable names listed in :data:`FEATURE_NAMES`:

``simple.*`` (computed here, on the *full* table, before any subsampling; always defined)
    ``log_n_rows``, ``log_n_features``, ``log_rows_per_feature`` (natural logs), ``n_classes``,
    ``cat_ratio`` (share of categorical columns), ``missing_ratio`` (share of missing cells),
    ``rows_with_missing_ratio``, ``class_entropy`` (normalised to [0, 1]) and ``minority_class_ratio``.

``<pymfe feature>[.<summary>]`` (computed by pymfe on a bounded copy of the table)
    Five groups, each with an explicit feature list (see :data:`PYMFE_FEATURES`) chosen to be cheap and
    mostly scale-free:

    * general: ``freq_class``, ``nr_attr``, ``nr_bin``, ``nr_cat``, ``nr_num``
    * statistical: ``can_cor``, ``cor``, ``kurtosis``, ``nr_cor_attr``, ``nr_disc``, ``nr_norm``,
      ``nr_outliers``, ``skewness``, ``sparsity``, ``w_lambda``
    * info-theory: ``attr_ent``, ``class_ent``, ``eq_num_attr``, ``joint_ent``, ``mut_inf``, ``ns_ratio``
      (the pairwise ``attr_conc`` and the per-attribute ``class_conc`` are left out: they dominate cost)
    * model-based (one decision tree): ``leaves``, ``leaves_branch``, ``leaves_per_class``, ``nodes``,
      ``nodes_per_attr``, ``nodes_per_inst``, ``tree_depth``, ``tree_imbalance``, ``tree_shape``,
      ``var_importance``
    * landmarking (``LANDMARK_FOLDS``-fold stratified CV, shuffled with the seed): ``best_node``,
      ``elite_nn``, ``linear_discr``, ``naive_bayes``, ``one_nn``, ``random_node``, ``worst_node``

    Multi-valued features are summarised with ``nanmean`` and ``nansd`` (NaN-ignoring mean and standard
    deviation, so one degenerate column or fold does not void the whole feature); single-valued ones keep
    their bare name (e.g. ``leaves``).

Bounding the cost
    Rows: a seeded, class-stratified subsample of at most ``max_rows`` rows (default :data:`MAX_ROWS`;
    every class keeps at least ``min(2, class size)`` rows; the total exceeds ``max_rows`` only when
    there are more than ``max_rows / 2`` classes). Columns: at most :data:`MAX_COLS` columns (a seeded
    random subset) are passed to pymfe. Levels: each categorical column keeps its most frequent levels
    and merges the rest into one ``__other__`` level, keeping at most :data:`MAX_CAT_LEVELS` levels and,
    over all categorical columns, about :data:`MAX_DUMMIES` dummy columns (at least 2 levels each), which
    bounds the width of the encoded numeric matrix to ~``MAX_COLS + MAX_DUMMIES``. With the defaults,
    100k rows x 100 columns take about 2-4 s and ~0.5 GiB peak RSS (whole process, table included) on
    2 cores, regression about 3 s (``benchmarks/bench_metafeatures.py``).
    The ``simple.*`` features always describe the full table, the pymfe ones describe the bounded copy
    (so e.g. ``nr_attr`` is at most ``MAX_COLS`` and ``nodes_per_inst`` refers to the subsample).

Categoricals and missing values
    A column is categorical if it is named in ``categorical`` or its dtype is not numeric (bool, object,
    string, category). Categorical values are turned into strings, a missing value becomes its own
    ``__missing__`` level, and the columns are handed to pymfe through ``cat_cols``; pymfe uses them as
    they are for categorical-only features and dummy-encodes them (``transform_cat="gray"``, a patsy
    model matrix) for numeric-only ones. In numeric columns +-inf counts as missing and missing values are
    imputed with the column median; an all-missing column becomes constant 0. pymfe discretises numeric
    columns (equal-frequency bins) for the info-theory features. Rows with a missing target are dropped.

Failures
    Any pymfe feature that cannot be computed (constant columns, one class in a fold, singular matrices,
    ...) is ``None`` in :attr:`MetaFeatures.features` -- never a missing key -- and ``NaN`` in
    :meth:`MetaFeatures.vector`. If pymfe raises, the groups are retried one at a time and a failing
    group yields ``None`` for its features. pymfe's warnings are silenced; numpy's global RNG state, which
    pymfe reseeds, is restored afterwards.

Threads
    pymfe runs with BLAS/OpenMP pools limited to one thread (``threadpoolctl``): its matrices are small,
    and multi-threaded OpenBLAS on a busy 2-core machine made a 1000 x 35 SVD ~300x slower. The limit is
    process-wide while pymfe runs.

Output is deterministic for the same data and ``seed``. :data:`EXTRACTOR_VERSION` names the pymfe
version and this configuration; it must change whenever groups, features, summaries or caps change
(likewise :data:`REGRESSION_EXTRACTOR_VERSION` for the regression vector).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymfe

from metalearn.errors import DatasetError
from metalearn.metafeatures_common import (
    LANDMARK_FOLDS,
    MAX_CAT_LEVELS,
    MAX_COLS,
    MAX_DUMMIES,
    MAX_ROWS,
    MIN_ROWS_PER_CLASS,
    SUMMARIES,
    capped_columns,
    checked_input,
    finite_or_none,
    prepare_for_pymfe,
    pymfe_feature_names,
    pymfe_features,
    stratified_rows,
    table_features,
)
from metalearn.metafeatures_regression import (
    REGRESSION_EXTRACTOR_VERSION,
    REGRESSION_FEATURE_NAMES,
    REGRESSION_PYMFE_FEATURES,
    regression_features,
)
from metalearn.tasks import check_task

__all__ = [
    "EXTRACTOR_VERSION",
    "EXTRACTOR_VERSIONS",
    "FEATURE_NAMES",
    "FEATURE_NAMES_BY_TASK",
    "LANDMARK_FOLDS",
    "MAX_CAT_LEVELS",
    "MAX_COLS",
    "MAX_DUMMIES",
    "MAX_ROWS",
    "MIN_ROWS_PER_CLASS",
    "REGRESSION_EXTRACTOR_VERSION",
    "REGRESSION_FEATURE_NAMES",
    "REGRESSION_PYMFE_FEATURES",
    "SUMMARIES",
    "MetaFeatures",
    "extract_metafeatures",
    "feature_names",
]

PYMFE_FEATURES: dict[str, tuple[str, ...]] = {
    "general": ("freq_class", "nr_attr", "nr_bin", "nr_cat", "nr_num"),
    "statistical": (
        "can_cor",
        "cor",
        "kurtosis",
        "nr_cor_attr",
        "nr_disc",
        "nr_norm",
        "nr_outliers",
        "skewness",
        "sparsity",
        "w_lambda",
    ),
    "info-theory": ("attr_ent", "class_ent", "eq_num_attr", "joint_ent", "mut_inf", "ns_ratio"),
    "model-based": (
        "leaves",
        "leaves_branch",
        "leaves_per_class",
        "nodes",
        "nodes_per_attr",
        "nodes_per_inst",
        "tree_depth",
        "tree_imbalance",
        "tree_shape",
        "var_importance",
    ),
    "landmarking": (
        "best_node",
        "elite_nn",
        "linear_discr",
        "naive_bayes",
        "one_nn",
        "random_node",
        "worst_node",
    ),
}
"""pymfe groups and the features requested from each (classification)."""

EXTRACTOR_VERSION: str = f"pymfe-{pymfe.__version__}/ml-1"
"""Identifies the classification extractor; bump the ``ml-N`` suffix whenever its settings change."""

EXTRACTOR_VERSIONS: dict[str, str] = {
    "classification": EXTRACTOR_VERSION,
    "regression": REGRESSION_EXTRACTOR_VERSION,
}
"""The extractor version of each task (what :attr:`MetaFeatures.extractor` holds)."""

SIMPLE_FEATURE_NAMES: tuple[str, ...] = (
    "simple.log_n_rows",
    "simple.log_n_features",
    "simple.log_rows_per_feature",
    "simple.n_classes",
    "simple.cat_ratio",
    "simple.missing_ratio",
    "simple.rows_with_missing_ratio",
    "simple.class_entropy",
    "simple.minority_class_ratio",
)

PYMFE_FEATURE_NAMES: tuple[str, ...] = pymfe_feature_names(PYMFE_FEATURES)
"""Names of the pymfe part of the vector, in pymfe's (sorted) output order."""

FEATURE_NAMES: tuple[str, ...] = SIMPLE_FEATURE_NAMES + PYMFE_FEATURE_NAMES
"""All classification feature names, in vector order; identical for every classification dataset."""

FEATURE_NAMES_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": FEATURE_NAMES,
    "regression": REGRESSION_FEATURE_NAMES,
}
"""The feature names of each task, in vector order."""

_stratified_rows = stratified_rows  # the classification row subsample (name kept for callers and tests)


def feature_names(extractor: str) -> tuple[str, ...]:
    """The vector names of an extractor version or a task name (classification's for unknown versions)."""
    if extractor in FEATURE_NAMES_BY_TASK:
        return FEATURE_NAMES_BY_TASK[extractor]
    return REGRESSION_FEATURE_NAMES if extractor == REGRESSION_EXTRACTOR_VERSION else FEATURE_NAMES


@dataclass(frozen=True)
class MetaFeatures:
    """Meta-features of one dataset.

    ``features`` has exactly the keys of the extractor's names (:data:`FEATURE_NAMES` for classification,
    :data:`REGRESSION_FEATURE_NAMES` for regression; in that order); values are finite floats, or ``None``
    where a feature is undefined for the dataset. ``seconds`` is the extraction wall time.
    """

    extractor: str
    seconds: float
    features: dict[str, float | None]

    @property
    def task(self) -> str:
        """The task the vector describes (from the extractor version)."""
        return "regression" if self.extractor == REGRESSION_EXTRACTOR_VERSION else "classification"

    def vector(self) -> np.ndarray:
        """Float array in the extractor's name order, ``nan`` where a feature is ``None``."""
        return np.array(
            [np.nan if self.features.get(name) is None else self.features[name]
             for name in feature_names(self.extractor)],
            dtype=float,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict ``{"extractor", "seconds", "features"}`` (no NaN/inf: undefined is ``None``)."""
        return {"extractor": self.extractor, "seconds": float(self.seconds), "features": dict(self.features)}


def extract_metafeatures(
    X: pd.DataFrame,
    y: pd.Series,
    categorical: Sequence[str] = (),
    seed: int = 0,
    max_rows: int = MAX_ROWS,
    task: str | None = None,
) -> MetaFeatures:
    """Compute the meta-features of a dataset (see the module docstring for details).

    ``X`` holds the predictive columns only; ``y`` the class labels or, for ``task="regression"``, the
    numeric target (same length; rows with a missing target are dropped). ``task`` None means
    classification. ``categorical`` names columns to treat as categorical in addition to those with a
    non-numeric dtype. ``seed`` drives the row/column subsamples and pymfe's randomness; ``max_rows``
    caps the rows handed to pymfe. Raises ``ValueError`` for a negative ``seed`` or ``max_rows < 1``.

    Raises :class:`~metalearn.errors.DatasetError` if the table has no columns, no labelled rows, fewer
    than two classes (regression: a non-numeric, infinite or constant target), a length mismatch with
    ``y``, or names an unknown categorical column, or for an unknown task.
    """
    start = time.perf_counter()
    task = check_task(task or "classification")
    X, y, is_cat = checked_input(X, y, categorical, seed, max_rows)
    if task == "regression":
        features = regression_features(X, y, is_cat, int(seed), max_rows)
    else:
        features = _classification_features(X, y, is_cat, int(seed), max_rows)
    return MetaFeatures(extractor=EXTRACTOR_VERSIONS[task], seconds=time.perf_counter() - start,
                        features=features)


def _classification_features(
    X: pd.DataFrame, y: pd.Series, is_cat: list[bool], seed: int, max_rows: int
) -> dict[str, float | None]:
    """The classification vector of a checked table, ``{name: finite float or None}`` in vector order."""
    try:
        codes, classes = pd.factorize(y, sort=True)
    except TypeError:  # labels of mixed, unorderable types
        codes, classes = pd.factorize(y, sort=False)
    if len(codes) == 0:
        raise DatasetError("the target has no non-missing values")
    if len(classes) < 2:
        raise DatasetError(f"the target has {len(classes)} class; at least 2 are needed")

    features: dict[str, float | None] = dict.fromkeys(FEATURE_NAMES)
    features.update(_simple_features(X, codes, is_cat))

    rows = stratified_rows(codes, max_rows, seed)
    cols = capped_columns(X.shape[1], MAX_COLS, seed)
    data, cat_cols = prepare_for_pymfe(X.iloc[rows, cols], [is_cat[j] for j in cols])
    features.update(pymfe_features(data, codes[rows], cat_cols, seed, PYMFE_FEATURES))
    return {name: finite_or_none(features[name]) for name in FEATURE_NAMES}


def _simple_features(X: pd.DataFrame, codes: np.ndarray, is_cat: Sequence[bool]) -> dict[str, float]:
    """Cheap, always-defined features of the full table."""
    counts = np.bincount(codes)
    counts = counts[counts > 0]
    probs = counts / counts.sum()
    entropy = float(-(probs * np.log(probs)).sum())
    return {
        **table_features(X, is_cat),
        "simple.n_classes": float(len(counts)),
        "simple.class_entropy": entropy / math.log(len(counts)),
        "simple.minority_class_ratio": float(counts.min() / X.shape[0]),
    }
