"""Evaluate one pipeline configuration on one dataset: stratified k-fold CV or holdout.

Every score is "higher is better" (log loss is reported negated). A crash or a timeout is a
recorded :class:`TrialResult` status, never an exception, so a search can store it and go on.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pynisher
from sklearn.base import clone
from sklearn.metrics import get_scorer, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from threadpoolctl import threadpool_limits

from metalearn.pipeline import build_pipeline
from metalearn.protocol import DEFAULT_METRIC, METRICS, check_choice

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "TrialResult",
    "check_metric",
    "cross_validate",
    "evaluate_config",
    "evaluate_pipeline",
    "worst_score",
]


@dataclass
class TrialResult:
    """Outcome of evaluating one configuration."""

    status: str  # "success" | "crash" | "timeout"
    score: float | None
    std: float | None
    seconds: float
    fold_scores: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"


def check_metric(metric: str) -> str:
    """``metric`` when it is one of :data:`METRICS`, else a :class:`~metalearn.errors.MetalearnError`."""
    return check_choice("metric", metric, METRICS)


def worst_score(metric: str) -> float:
    """Score used for the optimiser's cost when a trial fails."""
    return -10.0 if metric == "log_loss" else 0.0


def _splits(y: pd.Series, folds: int, holdout: float | None, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    index = np.arange(len(y))
    min_count = int(y.value_counts().min())
    if holdout:
        stratify = y if min_count >= 2 else None
        train, test = train_test_split(index, test_size=holdout, stratify=stratify, random_state=seed)
        return [(train, test)]
    n_splits = max(2, min(folds, min_count)) if min_count >= 2 else 2
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(splitter.split(index, y))


def _fraction(train: np.ndarray, y: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``fraction`` of the training rows (multi-fidelity budget), every class kept."""
    if fraction >= 1.0:
        return train
    n_classes = y.iloc[train].nunique()
    size = max(int(round(fraction * len(train))), 2 * n_classes)
    if size >= len(train):
        return train
    labels = y.iloc[train]
    counts = labels.value_counts()
    stratify = labels if counts.min() >= 2 and size >= n_classes else None
    part, _ = train_test_split(train, train_size=size, stratify=stratify, random_state=seed)
    return np.sort(part)


def cross_validate(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    metric: str = DEFAULT_METRIC,
    folds: int = 5,
    holdout: float | None = None,
    seed: int = 0,
    budget: float = 1.0,
) -> list[float]:
    """Fold scores of ``pipeline`` (an unfitted estimator), trained on a ``budget`` fraction of each
    training fold; raises whatever the estimator raises."""
    scorer = get_scorer(METRICS[check_metric(metric)])
    labels = np.unique(y)
    scores = []
    for train, test in _splits(y, folds, holdout, seed):
        train = _fraction(train, y, budget, seed)
        model = clone(pipeline)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X.iloc[train], y.iloc[train])
            if metric in ("roc_auc", "log_loss"):
                scores.append(_proba_score(model, X.iloc[test], y.iloc[test], metric, labels))
            else:
                scores.append(float(scorer(model, X.iloc[test], y.iloc[test])))
    return scores


def _proba_score(model: Any, X: pd.DataFrame, y: pd.Series, metric: str, labels: np.ndarray) -> float:
    """Probability metrics with every class of the full data (folds may miss a class)."""
    proba = model.predict_proba(X)
    full = np.zeros((len(X), len(labels)))
    for j, cls in enumerate(model.classes_):
        full[:, int(np.searchsorted(labels, cls))] = proba[:, j]
    if metric == "log_loss":
        return -float(log_loss(y, np.clip(full, 1e-15, 1), labels=labels))
    present = np.isin(labels, np.unique(y))
    if len(labels) == 2:
        return float(roc_auc_score(y, full[:, 1]))
    full = full[:, present] / np.clip(full[:, present].sum(axis=1, keepdims=True), 1e-15, None)
    return float(roc_auc_score(y, full, multi_class="ovr", labels=labels[present]))


def _run(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    metric: str,
    folds: int,
    holdout: float | None,
    seed: int,
    budget: float = 1.0,
) -> list[float]:
    # one BLAS/OpenMP thread per trial: HistGradientBoosting's OpenMP threads otherwise fight over the cores
    with threadpool_limits(1):
        return cross_validate(pipeline, X, y, metric, folds, holdout, seed, budget)


def evaluate_pipeline(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    metric: str = DEFAULT_METRIC,
    folds: int = 5,
    holdout: float | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    budget: float = 1.0,
) -> TrialResult:
    """Cross-validate ``pipeline``; with ``time_limit`` (seconds) it runs in a forked child killed on time."""
    check_metric(metric)
    start = time.perf_counter()
    try:
        if time_limit is None:
            scores = _run(pipeline, X, y, metric, folds, holdout, seed, budget)
        else:
            limited = pynisher.limit(_run, wall_time=(max(1.0, float(time_limit)), "s"), context="fork", warnings=False)
            scores = limited(pipeline, X, y, metric, folds, holdout, seed, budget)
    except Exception as exc:  # the trial failed: record it and move on
        seconds = time.perf_counter() - start
        if type(exc).__name__ in ("WallTimeoutException", "TimeoutException", "CpuTimeoutException"):
            return TrialResult("timeout", None, None, seconds, error=f"exceeded {time_limit:g} s")
        message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return TrialResult("crash", None, None, seconds, error=message[-2000:])
    seconds = time.perf_counter() - start
    values = np.asarray(scores, dtype=float)
    if not np.all(np.isfinite(values)):
        return TrialResult("crash", None, None, seconds, list(map(float, values)), "non-finite score")
    return TrialResult("success", float(values.mean()), float(values.std()), seconds, [float(v) for v in values])


def evaluate_config(
    config: Mapping[str, Any],
    X: pd.DataFrame,
    y: pd.Series,
    categorical: list[str],
    metric: str = DEFAULT_METRIC,
    folds: int = 5,
    holdout: float | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    budget: float = 1.0,
) -> TrialResult:
    """Build the pipeline of ``config`` (see :mod:`metalearn.pipeline`) and evaluate it."""
    numeric = [c for c in X.columns if c not in set(categorical)]
    try:
        pipeline = build_pipeline(config, numeric, categorical, n_features=X.shape[1], random_state=seed)
    except Exception as exc:
        return TrialResult("crash", None, None, 0.0, error=f"cannot build pipeline: {exc}")
    return evaluate_pipeline(pipeline, X, y, metric, folds, holdout, seed, time_limit, budget)
