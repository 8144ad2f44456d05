"""The FLAML peers (optional extra ``bench``: without it they are reported as unavailable).

``flaml`` is FLAML's ``AutoML`` given the wall-clock that ``warm`` used for the largest budget (balanced
accuracy, or ``task="regression"`` with FLAML's ``r2`` metric); ``flaml-zeroshot`` is one fit of
``flaml.default.LGBMClassifier`` (``LGBMRegressor`` for regression) with data-dependent defaults.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from metalearn.benchmark.jobs import DatasetJob, Split, balanced_accuracy, base_row, score_predictions

try:  # the optional extra
    from flaml import AutoML
    from flaml.default import LGBMClassifier, LGBMRegressor
except Exception:  # ImportError, or a broken optional dependency
    AutoML = LGBMClassifier = LGBMRegressor = None


def flaml_available() -> bool:
    """Whether FLAML (with its zero-shot defaults) can be imported."""
    return AutoML is not None and LGBMRegressor is not None


def flaml_balanced_accuracy(X_val: Any, y_val: Any, estimator: Any, labels: Any, X_train: Any, y_train: Any,
                            weight_val: Any = None, weight_train: Any = None, *args: Any, **kwargs: Any
                            ) -> tuple[float, dict[str, float]]:
    """FLAML custom metric: loss ``1 - balanced accuracy`` (FLAML has no balanced-accuracy string)."""
    score = balanced_accuracy(y_val, estimator.predict(X_val))
    return 1.0 - score, {"balanced_accuracy": score}


def run_flaml(job: DatasetJob, split: Split, time_budget: float) -> list[dict[str, Any]]:
    """The one result row of FLAML's AutoML with ``time_budget`` seconds (at the largest budget)."""
    config, train, test = job.config, split.train, split.test
    regression = train.task == "regression"
    min_count = len(train.y) if regression else int(train.y.value_counts().min())
    options: dict[str, Any] = {"eval_method": "holdout"} if min_count < 2 else {
        "eval_method": "cv", "n_splits": max(2, min(config.folds, min_count))}
    automl = AutoML()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # FLAML's loss is 1 - score for both metrics ("r2": 1 - R^2), so cv_score below is the score
        automl.fit(X_train=train.X, y_train=train.y, task=train.task,
                   metric="r2" if regression else flaml_balanced_accuracy,
                   time_budget=max(1.0, float(time_budget)), n_jobs=1, seed=split.seed, verbose=0,
                   log_file_name="", retrain_full=True, **options)
        seconds = time.perf_counter() - start
        scores = score_predictions(train.task, test.y, automl.predict(test.X))
    row = base_row(job, split, "flaml")
    best_loss = getattr(automl, "best_loss", None)
    history = getattr(automl, "config_history", None) or {}
    row.update(scores, budget=config.max_budget, seconds=seconds, trials=len(history) or None,
               time_budget=float(time_budget), algorithm=getattr(automl, "best_estimator", None),
               cv_score=None if best_loss is None or not np.isfinite(best_loss) else 1.0 - float(best_loss))
    return [row]


def run_flaml_zeroshot(job: DatasetJob, split: Split) -> list[dict[str, Any]]:
    """The one result row of FLAML's zero-shot LightGBM (at the smallest budget)."""
    task = split.train.task
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = LGBMRegressor if task == "regression" else LGBMClassifier
        model = estimator(n_jobs=1, random_state=split.seed, verbose=-1)
        model.fit(split.train.X, split.train.y)
        seconds = time.perf_counter() - start
        scores = score_predictions(task, split.test.y, model.predict(split.test.X))
    row = base_row(job, split, "flaml-zeroshot")
    row.update(scores, budget=job.config.min_budget, seconds=seconds, trials=1, algorithm="lgbm")
    return [row]
