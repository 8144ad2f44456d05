"""Dataset meta-features for warm starting: a fixed-length vector per classification dataset.

The vector has two parts, both keyed by stable names listed in :data:`FEATURE_NAMES`:

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
    100k rows x 100 columns take about 2 s and ~0.5 GiB peak RSS (whole process, table included) on
    2 cores (``benchmarks/bench_metafeatures.py``).
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
version and this configuration; it must change whenever groups, features, summaries or caps change.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymfe
from pymfe.mfe import MFE
from threadpoolctl import threadpool_limits

from metalearn.errors import DatasetError

__all__ = [
    "EXTRACTOR_VERSION",
    "FEATURE_NAMES",
    "MAX_COLS",
    "MAX_ROWS",
    "MetaFeatures",
    "extract_metafeatures",
]

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
"""Cross-validation folds for the landmarking group."""

MIN_ROWS_PER_CLASS: int = 2
"""Every class keeps at least ``min(MIN_ROWS_PER_CLASS, class size)`` rows in the subsample."""

SUMMARIES: tuple[str, ...] = ("nanmean", "nansd")
"""pymfe summary functions for multi-valued features."""

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
"""pymfe groups and the features requested from each."""

EXTRACTOR_VERSION: str = f"pymfe-{pymfe.__version__}/ml-1"
"""Identifies the extractor configuration; bump the ``ml-N`` suffix whenever the settings above change."""

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

_SUMMARISED = "{}.nanmean", "{}.nansd"
_SCALAR = "{}"
# How pymfe names each requested feature after summarisation: scalar features keep their bare name,
# multi-valued ones get one name per summary. Checked against real pymfe output by the tests.
_PYMFE_NAME_PATTERNS: dict[str, tuple[str, ...]] = {
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

_GROUP_NAMES: dict[str, tuple[str, ...]] = {
    group: tuple(
        sorted(pattern.format(feature) for feature in features for pattern in _PYMFE_NAME_PATTERNS[feature])
    )
    for group, features in PYMFE_FEATURES.items()
}

PYMFE_FEATURE_NAMES: tuple[str, ...] = tuple(
    sorted(name for names in _GROUP_NAMES.values() for name in names)
)
"""Names of the pymfe part of the vector, in pymfe's (sorted) output order."""

FEATURE_NAMES: tuple[str, ...] = SIMPLE_FEATURE_NAMES + PYMFE_FEATURE_NAMES
"""All feature names, in vector order; identical for every dataset."""

_MISSING_LEVEL = "__missing__"
_OTHER_LEVEL = "__other__"


@dataclass(frozen=True)
class MetaFeatures:
    """Meta-features of one dataset.

    ``features`` has exactly the keys of :data:`FEATURE_NAMES` (in that order); values are finite floats,
    or ``None`` where a feature is undefined for the dataset. ``seconds`` is the extraction wall time.
    """

    extractor: str
    seconds: float
    features: dict[str, float | None]

    def vector(self) -> np.ndarray:
        """Float array in :data:`FEATURE_NAMES` order, ``nan`` where a feature is ``None``."""
        return np.array(
            [np.nan if self.features.get(name) is None else self.features[name] for name in FEATURE_NAMES],
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
) -> MetaFeatures:
    """Compute the meta-features of a classification dataset (see the module docstring for details).

    ``X`` holds the predictive columns only; ``y`` the class labels (same length; rows with a missing
    label are dropped). ``categorical`` names columns to treat as categorical in addition to those with a
    non-numeric dtype. ``seed`` drives the row/column subsamples and pymfe's randomness; ``max_rows``
    caps the rows handed to pymfe. Raises ``ValueError`` for a negative ``seed`` or ``max_rows < 1``.

    Raises :class:`~metalearn.errors.DatasetError` if the table has no columns, no labelled rows, fewer
    than two classes, a length mismatch with ``y``, or names an unknown categorical column.
    """
    start = time.perf_counter()
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
    try:
        codes, classes = pd.factorize(y, sort=True)
    except TypeError:  # labels of mixed, unorderable types
        codes, classes = pd.factorize(y, sort=False)
    if len(codes) == 0:
        raise DatasetError("the target has no non-missing values")
    if len(classes) < 2:
        raise DatasetError(f"the target has {len(classes)} class; at least 2 are needed")

    declared = set(categorical)
    is_cat = [X.columns[j] in declared or not _is_numeric_dtype(X.dtypes.iloc[j]) for j in range(X.shape[1])]
    features: dict[str, float | None] = dict.fromkeys(FEATURE_NAMES)
    features.update(_simple_features(X, codes, is_cat))

    rows = _stratified_rows(codes, max_rows, seed)
    cols = _capped_columns(X.shape[1], MAX_COLS, seed)
    data, cat_cols = _prepare_for_pymfe(X.iloc[rows, cols], [is_cat[j] for j in cols])
    features.update(_pymfe_features(data, codes[rows], cat_cols, int(seed)))

    clean = {name: _finite_or_none(features[name]) for name in FEATURE_NAMES}
    return MetaFeatures(extractor=EXTRACTOR_VERSION, seconds=time.perf_counter() - start, features=clean)


def _is_numeric_dtype(dtype: Any) -> bool:
    """Numeric dtypes are numeric; bool, object, string and category are categorical (as in datasets.py)."""
    return bool(pd.api.types.is_numeric_dtype(dtype)) and not pd.api.types.is_bool_dtype(dtype)


def _simple_features(X: pd.DataFrame, codes: np.ndarray, is_cat: Sequence[bool]) -> dict[str, float]:
    """Cheap, always-defined features of the full table."""
    n_rows, n_cols = X.shape
    missing = X.isna().to_numpy()
    counts = np.bincount(codes)
    counts = counts[counts > 0]
    probs = counts / counts.sum()
    entropy = float(-(probs * np.log(probs)).sum())
    return {
        "simple.log_n_rows": math.log(n_rows),
        "simple.log_n_features": math.log(n_cols),
        "simple.log_rows_per_feature": math.log(n_rows / n_cols),
        "simple.n_classes": float(len(counts)),
        "simple.cat_ratio": float(np.mean(is_cat)),
        "simple.missing_ratio": float(missing.mean()),
        "simple.rows_with_missing_ratio": float(missing.any(axis=1).mean()),
        "simple.class_entropy": entropy / math.log(len(counts)),
        "simple.minority_class_ratio": float(counts.min() / n_rows),
    }


def _stratified_rows(codes: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
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


def _capped_columns(n_cols: int, max_cols: int, seed: int) -> np.ndarray:
    """Sorted positions of at most ``max_cols`` columns (a seeded random subset when there are more)."""
    if n_cols <= max_cols:
        return np.arange(n_cols)
    rng = np.random.default_rng([seed, n_cols])
    return np.sort(rng.choice(n_cols, size=max_cols, replace=False))


def _prepare_for_pymfe(X: pd.DataFrame, is_cat: Sequence[bool]) -> tuple[np.ndarray, list[int]]:
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


def _pymfe_features(data: np.ndarray, y: np.ndarray, cat_cols: list[int], seed: int) -> dict[str, Any]:
    """Run pymfe on the bounded table; features it cannot compute come back as NaN (or are absent)."""
    try:
        return _run_mfe(data, y, cat_cols, seed, list(PYMFE_FEATURES))
    except Exception:  # pymfe raised outside its own guards: isolate the failing group(s)
        results: dict[str, Any] = {}
        for group in PYMFE_FEATURES:
            try:
                results.update(_run_mfe(data, y, cat_cols, seed, [group]))
            except Exception:
                results.update(dict.fromkeys(_GROUP_NAMES[group]))
        return results


def _run_mfe(data: np.ndarray, y: np.ndarray, cat_cols: list[int], seed: int, groups: list[str]) -> dict:
    """One silenced pymfe fit/extract for ``groups``; numpy's global RNG state is left untouched."""
    rng_state = np.random.get_state()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")
            mfe = MFE(
                groups=groups,
                features=[feature for group in groups for feature in PYMFE_FEATURES[group]],
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


def _finite_or_none(value: Any) -> float | None:
    """``float(value)`` if it is a finite number, else ``None``."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
