"""Evaluate one pipeline configuration on one dataset: stratified k-fold CV or holdout.

Every score is "higher is better" (log loss is reported negated). A crash or a timeout is a
recorded :class:`TrialResult` status, never an exception, so a search can store it and go on.

A trial with a time limit runs in a forked child process, killed when its time is up (``timeout``) or at
once by :func:`cancel_running_trials` (a search stopped by a signal: the trial comes back ``cancelled``).
The child dies with its parent (:func:`die_with_parent`), so a killed search leaves no trial running.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import psutil
from sklearn.base import clone
from sklearn.metrics import (
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

from metalearn.calibration import stratified_fold_count
from metalearn.pipeline import build_pipeline
from metalearn.protocol import (
    DEFAULT_METRIC,
    DEFAULTS,
    METRICS,
    NEGATED_METRICS,
    REGRESSION_METRICS,
    check_choice,
    task_of_metric,
)

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "TrialCancelled",
    "TrialResult",
    "aligned_proba",
    "cancel_running_trials",
    "check_metric",
    "cross_validate",
    "die_with_parent",
    "evaluate_config",
    "evaluate_pipeline",
    "score_model",
    "score_proba",
    "worst_score",
]


@dataclass
class TrialResult:
    """Outcome of evaluating one configuration."""

    status: str  # "success" | "crash" | "timeout" | "cancelled"
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


#: failed-trial scores of the metrics with a natural floor (the other error metrics are unbounded: -1e6)
_WORST_SCORES: dict[str, float] = {"log_loss": -10.0, "r2": -1.0, "mape": -10.0}


def worst_score(metric: str) -> float:
    """Score used for the optimiser's cost when a trial fails (below what a useful model scores)."""
    return _WORST_SCORES.get(metric, -1e6 if metric in NEGATED_METRICS else 0.0)


def score_model(model: Any, X: pd.DataFrame, y: Any, metric: str) -> float:
    """``metric`` (higher is better, see :data:`METRICS`) of the fitted ``model`` on ``(X, y)``."""
    return float(get_scorer(METRICS[check_metric(metric)])(model, X, y))


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
    splitter = StratifiedKFold(n_splits=stratified_fold_count(min_count, folds), shuffle=True, random_state=seed)
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
    folds: int = DEFAULTS.folds,
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
    regression = task_of_metric(check_metric(metric)) == "regression"  # an unknown metric fails before any fit
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
                scores.append(score_model(model, X.iloc[test], y.iloc[test], metric))
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
        return balanced_accuracy(y, predicted)
    if metric == "accuracy":
        return float(np.mean(predicted == y))
    return float(f1_score(y, predicted, average="macro"))


def balanced_accuracy(y: Any, predicted: Any) -> float:
    """scikit-learn's ``balanced_accuracy_score`` (the mean recall over the classes of ``y``) without its input
    validation: ensemble selection scores every candidate at every round, and the checks cost 100x the sum."""
    y, predicted = np.asarray(y), np.asarray(predicted)
    classes, index = np.unique(y, return_inverse=True)
    hits = np.bincount(index, weights=predicted == y, minlength=len(classes))
    return float(np.mean(hits / np.bincount(index, minlength=len(classes))))


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


# ------------------------------------------------------------------ running and stopping a trial

PR_SET_PDEATHSIG = 1
CANCELLED = "cancelled: the search was stopped while this trial ran"
_FORK = multiprocessing.get_context("fork")


class TrialCancelled(KeyboardInterrupt):
    """Raised into a trial running in the calling thread by :func:`cancel_running_trials`."""


class TrialTimeout(Exception):
    """A trial in a child process ran past its time limit."""


class TrialFailed(Exception):
    """A trial in a child process raised (the message is its exception, formatted in the child)."""


@dataclass
class _RunningTrial:
    owner: int = field(default_factory=os.getpid)
    thread: int = field(default_factory=threading.get_ident)
    forked: bool = False
    pid: int | None = None
    cancelled: bool = False


#: the trials running in this process (no lock: a signal handler reads it in the thread that may be adding)
_RUNNING: list[_RunningTrial] = []


def die_with_parent(parent: int | None = None) -> None:
    """Have Linux kill this process (SIGKILL) when the thread that started it ends (``prctl(PR_SET_PDEATHSIG)``);
    exit at once when the parent, pid ``parent``, is already gone. Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def cancel_running_trials() -> int:
    """Stop every trial running in this process; each one's :class:`TrialResult` is ``cancelled``.

    A trial in a child process (one with a time limit) is killed at once, with its children. A trial running
    in the calling thread (no time limit) is stopped by raising :class:`TrialCancelled` here: call this from a
    signal handler. Returns how many trials were stopped.
    """
    me, here, inline = os.getpid(), threading.get_ident(), False
    stopped = 0
    for trial in list(_RUNNING):
        if trial.owner != me or trial.cancelled:
            continue
        trial.cancelled, stopped = True, stopped + 1
        if trial.pid is not None:
            _kill_tree(trial.pid)
        elif not trial.forked and trial.thread == here:
            inline = True
    if inline:
        raise TrialCancelled
    return stopped


def _kill_tree(pid: int) -> None:
    """SIGKILL process ``pid`` and its descendants (not reaped here: the trial's runner joins it)."""
    try:
        root = psutil.Process(pid)
        targets = [root, *root.children(recursive=True)]
    except psutil.Error:
        return
    for target in targets:
        with contextlib.suppress(psutil.Error):
            target.send_signal(signal.SIGKILL)


def _described(exc: BaseException) -> str:
    """``exc`` as its type and message (the last line of its traceback)."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _child(send: Any, parent: int, args: tuple[Any, ...]) -> None:
    """The trial's child process: run :func:`_run`, send back ("ok", result) or ("error", formatted exception)."""
    die_with_parent(parent)
    with contextlib.suppress(ValueError):  # the search process decides what a Ctrl-C stops
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        response: tuple[str, Any] = ("ok", _run(*args))
    except BaseException as exc:  # everything goes back to the search, which records it
        response = ("error", _described(exc))
    try:
        send.send(response)
    except Exception as exc:  # e.g. a result too large to pickle
        send.send(("error", f"cannot return the trial's result: {exc}"))
    finally:
        send.close()


def _forked(time_limit: float, trial: _RunningTrial, args: tuple[Any, ...]) -> tuple[list[float], np.ndarray | None]:
    """:func:`_run` in a forked child that is killed after ``time_limit`` seconds (or when cancelled)."""
    receive, send = _FORK.Pipe(duplex=False)
    process = _FORK.Process(target=_child, args=(send, os.getpid(), args), daemon=False, name="metalearn-trial")
    trial.forked = True
    if trial.cancelled:
        raise TrialCancelled
    process.start()
    trial.pid = process.pid
    send.close()  # the child holds the only sending end: its death is an end of file here
    deadline = time.monotonic() + time_limit
    try:
        if trial.cancelled:  # stopped while the child started
            _kill_tree(process.pid)
        while not receive.poll(min(0.25, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                raise TrialTimeout(f"exceeded {time_limit:g} s")
        try:
            kind, value = receive.recv()
        except EOFError:
            process.join(1)
            raise TrialFailed(f"the trial's process died (exit code {process.exitcode})") from None
        if kind != "ok":
            raise TrialFailed(value)
        return value
    finally:
        receive.close()
        if process.is_alive():
            _kill_tree(process.pid)
        process.join()
        process.close()


def _trial_scores(time_limit: float | None, trial: _RunningTrial,
                  args: tuple[Any, ...]) -> tuple[list[float], np.ndarray | None]:
    if time_limit is None:
        return _run(*args)
    return _forked(max(1.0, float(time_limit)), trial, args)


def evaluate_pipeline(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    metric: str = DEFAULT_METRIC,
    folds: int = DEFAULTS.folds,
    holdout: float | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    budget: float = 1.0,
    keep_predictions: bool = False,
) -> TrialResult:
    """Cross-validate ``pipeline``; with ``time_limit`` (seconds) it runs in a forked child killed on time.
    With ``keep_predictions`` a successful full-budget CV also returns its out-of-fold probabilities."""
    check_metric(metric)
    start, trial = time.perf_counter(), _RunningTrial()
    try:
        try:
            _RUNNING.append(trial)
            scores, oof = _trial_scores(time_limit, trial,
                                        (pipeline, X, y, metric, folds, holdout, seed, budget, keep_predictions))
        finally:
            with contextlib.suppress(ValueError):
                _RUNNING.remove(trial)
    except TrialCancelled:
        return TrialResult("cancelled", None, None, time.perf_counter() - start, error=CANCELLED)
    except Exception as exc:  # the trial failed: record it and move on
        seconds = time.perf_counter() - start
        if trial.cancelled:
            return TrialResult("cancelled", None, None, seconds, error=CANCELLED)
        if isinstance(exc, TrialTimeout):
            return TrialResult("timeout", None, None, seconds, error=str(exc))
        message = str(exc) if isinstance(exc, TrialFailed) else _described(exc)
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
    folds: int = DEFAULTS.folds,
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
