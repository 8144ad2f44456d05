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
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    get_scorer,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from threadpoolctl import threadpool_limits

from metalearn.pipeline import build_pipeline
from metalearn.protocol import DEFAULT_METRIC, METRICS, REGRESSION_METRICS, check_choice, task_of_metric

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "TrialResult",
    "aligned_proba",
    "check_metric",
    "cross_validate",
    "evaluate_config",
    "evaluate_pipeline",
    "score_proba",
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
    #: out-of-fold class probabilities (rows of X x sorted labels, float32), when asked for and CV ran fully
    predictions: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "success"


def check_metric(metric: str) -> str:
    """``metric`` when it is one of :data:`METRICS`, else a :class:`~metalearn.errors.MetalearnError`."""
    return check_choice("metric", metric, METRICS)


def worst_score(metric: str) -> float:
    """Score used for the optimiser's cost when a trial fails (below what a useful model scores)."""
    return {"log_loss": -10.0, "r2": -1.0, "mape": -10.0}.get(metric, -1e6 if metric in ("rmse", "mae") else 0.0)


def _splits(y: pd.Series, folds: int, holdout: float | None, seed: int,
            regression: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    index = np.arange(len(y))
    if regression:  # plain shuffled K-fold (stratification is for class labels)
        if holdout:
            train, test = train_test_split(index, test_size=holdout, random_state=seed)
            return [(train, test)]
        return list(KFold(n_splits=max(2, min(folds, len(y))), shuffle=True, random_state=seed).split(index))
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


def _fraction(train: np.ndarray, y: pd.Series, fraction: float, seed: int, regression: bool = False) -> np.ndarray:
    """A stratified ``fraction`` of the training rows (multi-fidelity budget), every class kept."""
    if fraction >= 1.0:
        return train
    if regression:
        size = min(len(train), max(int(round(fraction * len(train))), 10))
        return np.sort(np.random.default_rng(seed).choice(train, size=size, replace=False))
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
    return _cross_validate(pipeline, X, y, metric, folds, holdout, seed, budget)[0]


def _cross_validate(pipeline: Any, X: pd.DataFrame, y: pd.Series, metric: str, folds: int, holdout: float | None,
                    seed: int, budget: float, keep: bool = False) -> tuple[list[float], np.ndarray | None]:
    """Fold scores and, with ``keep`` (full CV at the full budget), the out-of-fold probabilities."""
    scorer = get_scorer(METRICS[check_metric(metric)])
    regression = task_of_metric(metric) == "regression"
    labels = None if regression else np.unique(y)
    keep = keep and not holdout and budget >= 1.0
    oof = np.full((len(y), 1 if regression else len(labels)), np.nan, dtype=np.float32) if keep else None
    scores = []
    for train, test in _splits(y, folds, holdout, seed, regression):
        train = _fraction(train, y, budget, seed, regression)
        model = clone(pipeline)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X.iloc[train], y.iloc[train])
            if metric in ("roc_auc", "log_loss") or oof is not None:
                proba = aligned_proba(model, X.iloc[test], labels)
                if oof is not None:
                    oof[test] = proba
            if metric in ("roc_auc", "log_loss"):
                scores.append(score_proba(metric, y.iloc[test], proba, labels))
            else:
                scores.append(float(scorer(model, X.iloc[test], y.iloc[test])))
    return scores, oof


def aligned_proba(model: Any, X: pd.DataFrame, labels: np.ndarray | None) -> np.ndarray:
    """Class probabilities of ``model`` with one column per label of ``labels`` (absent classes get 0);
    a model without ``predict_proba`` gives one-hot predictions. For a regressor (``labels`` None): its
    predictions as one column."""
    if labels is None:
        return np.asarray(model.predict(X), dtype=float).reshape(-1, 1)
    full = np.zeros((len(X), len(labels)))
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X))
        for j, cls in enumerate(model.classes_):
            full[:, int(np.searchsorted(labels, cls))] = proba[:, j]
    else:
        full[np.arange(len(X)), np.searchsorted(labels, model.predict(X))] = 1.0
    return full


def score_proba(metric: str, y: Any, proba: np.ndarray, labels: np.ndarray | None) -> float:
    """``metric`` (higher is better) of class probabilities ``proba`` (columns = ``labels``) against ``y``;
    for a regression metric ``proba`` is the one column of predictions (``labels`` None)."""
    y = np.asarray(y)
    if metric in REGRESSION_METRICS:
        return _regression_score(metric, y.astype(float), np.asarray(proba, dtype=float).reshape(-1))
    if metric == "log_loss":
        return -float(log_loss(y, np.clip(proba, 1e-15, 1), labels=labels))
    if metric == "roc_auc":
        present = np.isin(labels, np.unique(y))
        if len(labels) == 2:
            return float(roc_auc_score(y, proba[:, 1]))
        part = proba[:, present] / np.clip(proba[:, present].sum(axis=1, keepdims=True), 1e-15, None)
        return float(roc_auc_score(y, part, multi_class="ovr", labels=labels[present]))
    predicted = labels[np.argmax(proba, axis=1)]
    if metric == "balanced_accuracy":
        return float(balanced_accuracy_score(y, predicted))
    if metric == "accuracy":
        return float(np.mean(predicted == y))
    return float(f1_score(y, predicted, average="macro"))


def _regression_score(metric: str, y: np.ndarray, predicted: np.ndarray) -> float:
    if metric == "r2":
        return float(r2_score(y, predicted))
    if metric == "rmse":
        return -float(np.sqrt(mean_squared_error(y, predicted)))
    if metric == "mae":
        return -float(mean_absolute_error(y, predicted))
    return -float(mean_absolute_percentage_error(y, predicted))


def _run(pipeline: Any, X: pd.DataFrame, y: pd.Series, metric: str, folds: int, holdout: float | None, seed: int,
         budget: float = 1.0, keep: bool = False) -> tuple[list[float], np.ndarray | None]:
    # one BLAS/OpenMP thread per trial: HistGradientBoosting's OpenMP threads otherwise fight over the cores
    with threadpool_limits(1):
        return _cross_validate(pipeline, X, y, metric, folds, holdout, seed, budget, keep)


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
    keep_predictions: bool = False,
) -> TrialResult:
    """Cross-validate ``pipeline``; with ``time_limit`` (seconds) it runs in a forked child killed on time.
    With ``keep_predictions`` a successful full-budget CV also returns its out-of-fold probabilities."""
    check_metric(metric)
    start = time.perf_counter()
    try:
        if time_limit is None:
            scores, oof = _run(pipeline, X, y, metric, folds, holdout, seed, budget, keep_predictions)
        else:
            limited = pynisher.limit(_run, wall_time=(max(1.0, float(time_limit)), "s"), context="fork", warnings=False)
            scores, oof = limited(pipeline, X, y, metric, folds, holdout, seed, budget, keep_predictions)
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
    if oof is not None and not np.all(np.isfinite(oof)):
        oof = None
    return TrialResult("success", float(values.mean()), float(values.std()), seconds, [float(v) for v in values],
                       predictions=oof)


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
    keep_predictions: bool = False,
) -> TrialResult:
    """Build the pipeline of ``config`` (see :mod:`metalearn.pipeline`) and evaluate it."""
    numeric = [c for c in X.columns if c not in set(categorical)]
    try:
        pipeline = build_pipeline(config, numeric, categorical, n_features=X.shape[1], random_state=seed)
    except Exception as exc:
        return TrialResult("crash", None, None, 0.0, error=f"cannot build pipeline: {exc}")
    return evaluate_pipeline(pipeline, X, y, metric, folds, holdout, seed, time_limit, budget, keep_predictions)
