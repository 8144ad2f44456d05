"""The vocabulary shared by the library, the CLI, the HTTP API and the benchmark.

Tasks, strategies, metrics, statuses and origins are defined once here, with every default a
search uses (:data:`DEFAULTS`), and :func:`to_jsonable` is the one JSON sanitiser.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metalearn.defaults import TRIAL_TIME_LIMIT
from metalearn.errors import MetalearnError

TASKS: tuple[str, ...] = ("classification", "regression")

#: single-fidelity strategies (``grid``: an exhaustive grid, see :mod:`metalearn.warmstart.grid`)
SINGLE_FIDELITY: tuple[str, ...] = ("warm", "cold", "random", "grid")
#: strategies that evaluate on a fraction of the training rows first (the budget)
MULTI_FIDELITY: tuple[str, ...] = ("hyperband", "successive-halving")
STRATEGIES: tuple[str, ...] = SINGLE_FIDELITY + MULTI_FIDELITY
#: strategies that start from the knowledge base's recommendations
WARM_STRATEGIES: tuple[str, ...] = ("warm", *MULTI_FIDELITY)

#: metric name -> scikit-learn scorer name. ONE rule everywhere: every score is higher-is-better, so the
#: error metrics (log loss, rmse, mae, mape) are stored, compared and printed negated, as scikit-learn's
#: ``neg_*`` scorers give them
CLASSIFICATION_METRICS: dict[str, str] = {
    "balanced_accuracy": "balanced_accuracy",
    "accuracy": "accuracy",
    "f1_macro": "f1_macro",
    "roc_auc": "roc_auc_ovr",
    "log_loss": "neg_log_loss",
}
REGRESSION_METRICS: dict[str, str] = {
    "r2": "r2",
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "mape": "neg_mean_absolute_percentage_error",
}
METRICS: dict[str, str] = CLASSIFICATION_METRICS | REGRESSION_METRICS
#: the metrics reported negated (lower error is better, so higher stored score is better): those whose scorer is a
#: scikit-learn ``neg_*`` one
NEGATED_METRICS: tuple[str, ...] = tuple(m for m, scorer in METRICS.items() if scorer.startswith("neg_"))
DEFAULT_METRICS: dict[str, str] = {"classification": "balanced_accuracy", "regression": "r2"}
DEFAULT_METRIC = DEFAULT_METRICS["classification"]
DEFAULT_TASK = "classification"


def task_of_metric(metric: str) -> str:
    """The task a metric belongs to (a :class:`MetalearnError` for an unknown one)."""
    check_choice("metric", metric, METRICS)
    return "regression" if metric in REGRESSION_METRICS else "classification"


def task_of(meta: Mapping[str, Any]) -> str | None:
    """The task of a saved model or a stored search from its metadata (or settings): its ``task``, else its
    ``metric``'s task; None when neither tells (a :class:`MetalearnError` for an unknown task)."""
    if meta.get("task"):
        return check_choice("task", str(meta["task"]), TASKS)
    metric = meta.get("metric")
    return task_of_metric(str(metric)) if metric in METRICS else None


def metric_for(task: str, metric: str | None = None) -> str:
    """``metric`` checked against ``task`` (the task's default when None)."""
    check_choice("task", task, TASKS)
    if metric is None:
        return DEFAULT_METRICS[task]
    if task_of_metric(metric) != task:
        choices = REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS
        raise MetalearnError(f"metric {metric!r} is not a {task} metric; choose one of {', '.join(choices)}")
    return metric

#: how a trial ended (``cancelled``: killed in flight when its search was stopped)
RUN_STATUSES: tuple[str, ...] = ("success", "crash", "timeout", "cancelled")
#: how a search stands; a search moves only forward: queued -> running -> one of TERMINAL
#: (``cancelled``: stopped on request; ``interrupted``: its process was stopped by a signal or died)
ACTIVE_STATUSES: tuple[str, ...] = ("queued", "running")
TERMINAL_STATUSES: tuple[str, ...] = ("succeeded", "failed", "cancelled", "interrupted")
SEARCH_STATUSES: tuple[str, ...] = ACTIVE_STATUSES + TERMINAL_STATUSES
#: the statuses a search may be continued from (``search --continue``): it goes back to queued / running, the one
#: transition against the forward order, made only by ``KnowledgeBase.reopen_search``
CONTINUABLE_STATUSES: tuple[str, ...] = TERMINAL_STATUSES

#: where a trial's configuration came from
ORIGINS: tuple[str, ...] = ("warm_start", "smac_initial", "smac", "random", "grid", "cross_eval", "ensemble")
CROSS_EVAL_ORIGIN = "cross_eval"
#: the run that records a search's final ensemble (its members are other runs of the search)
ENSEMBLE_ORIGIN = "ensemble"


@dataclass(frozen=True)
class Defaults:
    """Every default of a search, read by the library, the CLI, the API schemas and the client."""

    strategy: str = "warm"
    n_trials: int = 30
    trial_time_limit: float = TRIAL_TIME_LIMIT
    metric: str = DEFAULT_METRIC
    folds: int = 5
    seed: int = 0
    max_rows: int = 5000
    n_warm: int = 10
    n_smac_initial: int = 2
    k: int = 5
    top: int = 5
    min_budget: float = 0.1
    eta: int = 3
    #: greedy ensemble selection rounds (0: the single best pipeline) over the best ``ensemble_candidates``
    ensemble_size: int = 25
    ensemble_candidates: int = 20
    #: ``--strategy grid`` refuses a grid with more points than this
    max_grid_size: int = 256


DEFAULTS = Defaults()


def check_choice(kind: str, value: str, choices: tuple[str, ...] | Mapping[str, Any]) -> str:
    """``value`` when it is one of ``choices``, else a :class:`MetalearnError` listing them."""
    if value not in choices:
        raise MetalearnError(f"unknown {kind} {value!r}; choose one of {', '.join(choices)}")
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps(to_jsonable(value))``, faster: plain values are dumped directly (others through
    :func:`to_jsonable`), and only a value holding a non-finite float or a non-string key is converted as a whole."""
    try:
        return json.dumps(value, allow_nan=False, default=to_jsonable, **kwargs)
    except (ValueError, TypeError):
        return json.dumps(to_jsonable(value), allow_nan=False, **kwargs)


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN / NA / infinities as ``None``,
    dates as ISO strings, paths as strings, dataclass-like objects through their ``to_json``."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, pd.DataFrame):
        return to_jsonable(value.to_dict(orient="records"))
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_json"):
        return to_jsonable(value.to_json())
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
