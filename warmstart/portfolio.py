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
    matrix = performance.pivot_table(index="dataset_id", columns="configuration_id", values="score",
                                     aggfunc="mean")
    low = matrix.min(axis=1)
    span = (matrix.max(axis=1) - low).replace(0, np.nan)
    return matrix.sub(low, axis=0).div(span, axis=0).where(span.notna(), 1.0).where(matrix.notna())


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
    if len(exclude_datasets) and not matrix.empty:
        matrix = matrix[~matrix.index.isin(list(exclude_datasets))]
        matrix = matrix.loc[:, matrix.notna().any(axis=0)]
    if matrix.empty:
        return []
    coverage = matrix.notna().mean(axis=0)
    candidates = matrix.loc[:, coverage >= min_coverage] if min_coverage > 0 else matrix
    if candidates.shape[1] == 0:
        candidates = matrix
    columns = list(candidates.columns)
    return [(int(columns[j]), gain) for j, gain in greedy_selection(candidates.fillna(0.0).to_numpy(), size)]


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
