"""A global portfolio: configurations that do well across many datasets.

Built greedily as in auto-sklearn 2.0 (Feurer et al., 2022): from a performance matrix of
datasets x configurations (scores normalised per dataset to [0, 1], best = 1), repeatedly add
the configuration that most improves the mean over datasets of the best normalised score
within the portfolio. A configuration not evaluated on a dataset counts as 0 there, so
configurations evaluated on many datasets (the cross-evaluation of the seed build) are
preferred over ones seen once.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd


def normalized_matrix(performance: pd.DataFrame) -> pd.DataFrame:
    """Pivot ``performance`` (dataset_id, configuration_id, score) to per-dataset min-max scores."""
    if performance.empty:
        return pd.DataFrame()
    return normalize_rows(performance.pivot_table(index="dataset_id", columns="configuration_id", values="score",
                                                  aggfunc="mean"))


def normalize_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """Min-max scale each row of a datasets x configurations score matrix (NaN stays NaN; a row whose
    scores are all equal becomes 1 where known)."""
    values = scores.to_numpy(dtype=float)
    if values.size == 0:
        return scores.astype(float)
    known = np.isfinite(values)
    low = np.min(np.where(known, values, np.inf), axis=1, keepdims=True)
    span = np.max(np.where(known, values, -np.inf), axis=1, keepdims=True) - low
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(span > 0, (values - low) / np.where(span > 0, span, 1.0), 1.0)
    return pd.DataFrame(np.where(known, scaled, np.nan), index=scores.index, columns=scores.columns)


def build_portfolio(
    matrix: pd.DataFrame,
    size: int = 16,
    *,
    exclude_datasets: Collection[int] = (),
    min_coverage: float = 0.0,
) -> list[tuple[int, float]]:
    """Greedy portfolio: ``[(configuration_id, marginal gain), ...]`` in selection order.

    ``matrix`` is :func:`normalized_matrix` of the performance table (the scaling is per dataset, so
    leaving datasets out only drops rows). ``exclude_datasets`` are left out (leave-one-family-out).
    Configurations evaluated on fewer than ``min_coverage`` of the datasets are not candidates.
    """
    if matrix.empty:
        return []
    rows = ~matrix.index.isin(list(exclude_datasets))
    columns = np.asarray(matrix.columns)
    return [(int(columns[j]), gain) for j, gain in
            portfolio_columns(matrix.to_numpy(dtype=float)[rows], size, min_coverage=min_coverage)]


def portfolio_columns(values: np.ndarray, size: int, *, min_coverage: float = 0.0,
                      allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """:func:`build_portfolio` on a plain array (rows = usable datasets, NaN = not evaluated): column indices.

    Columns never evaluated on these rows, or outside the boolean mask ``allowed``, are not candidates; of
    the rest, those evaluated on fewer than ``min_coverage`` of the rows are dropped unless none is left.
    A missing cell counts as 0.
    """
    if values.shape[0] == 0 or values.shape[1] == 0:
        return []
    known = np.isfinite(values)
    coverage = known.mean(axis=0)
    usable = coverage > 0 if allowed is None else (coverage > 0) & allowed
    if not usable.any():
        return []
    candidates = usable & (coverage >= min_coverage) if min_coverage > 0 else usable
    if not candidates.any():
        candidates = usable
    index = np.flatnonzero(candidates)
    chosen = greedy_selection(np.where(known[:, index], values[:, index], 0.0), size)
    return [(int(index[j]), gain) for j, gain in chosen]


def greedy_selection(values: np.ndarray, size: int, weights: np.ndarray | None = None,
                     min_gain: float = -np.inf) -> list[tuple[int, float]]:
    """Greedy max-coverage over the columns of ``values`` (rows = datasets, higher = better).

    Each step adds the column that most raises the (``weights``-weighted) mean over rows of the best
    value within the selection; stops after ``size`` columns or when no gain exceeds ``min_gain``.
    Returns ``[(column index, gain), ...]``; ties go to the lower index.
    """
    weights = np.full(values.shape[0], 1.0 / max(values.shape[0], 1)) if weights is None else weights
    current = np.zeros(values.shape[0])
    chosen: list[tuple[int, float]] = []
    available = np.ones(values.shape[1], dtype=bool)
    for _ in range(min(size, values.shape[1])):
        gains = weights @ np.maximum(values, current[:, None]) - weights @ current
        gains[~available] = -np.inf
        best = int(np.argmax(gains))
        if not np.isfinite(gains[best]) or gains[best] <= min_gain:
            break
        chosen.append((best, float(gains[best])))
        available[best] = False
        current = np.maximum(current, values[:, best])
    return chosen
