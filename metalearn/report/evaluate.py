"""The final pipeline's predictions on the evaluation rows: a test split, or cross-validated (out of fold).

Classification keeps class probabilities (predictions are their arg-max); regression keeps the predicted
values. :func:`evaluate` picks the method; the report's sections are computed from its :class:`Evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

from metalearn.datasets import Dataset
from metalearn.errors import MetalearnError
from metalearn.report.common import align_proba, eval_xy
from metalearn.report.model import ReportOptions

FITTED_ROWS = ("the rows the final model was fitted on (no test split: importances show what the model uses, not "
               "what generalises)")


@dataclass
class Evaluation:
    """The final pipeline's predictions on the evaluation rows (test split or out of fold).

    Classification: ``classes`` and ``proba`` (columns in the order of ``classes``), ``y_pred`` their arg-max.
    Regression: ``classes`` and ``proba`` are None and ``y_pred`` holds the predicted values.
    """

    model: Any
    X: pd.DataFrame
    y: pd.Series
    classes: np.ndarray | None
    proba: np.ndarray | None
    info: dict[str, Any]  # the report's meta.evaluation
    rows: str  # where the explanations' rows come from
    predicted: np.ndarray | None = None  # regression: the predicted values
    y_true: np.ndarray = field(init=False)
    y_pred: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.y_true = np.asarray(self.y.to_numpy())
        if self.classes is None:
            self.y_true = self.y_true.astype(float)
            self.y_pred = np.asarray(self.predicted, dtype=float).reshape(-1)
        else:
            self.y_pred = self.classes[np.argmax(self.proba, axis=1)]

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"


def _n_folds(opts: ReportOptions, n_rows: int) -> int:
    return opts.folds or (5 if n_rows <= 5000 else 3)


def _on_test(model: Any, fitted: bool, dataset: Dataset, test: Any) -> Evaluation:
    X_eval, y_eval = eval_xy(test, list(dataset.X.columns))
    final = model if fitted else clone(model).fit(dataset.X, dataset.y)
    info = {"method": "test split", "n_rows": int(len(X_eval)),
            "model": "the final pipeline" + ("" if fitted else " fitted on the dataset")}
    if dataset.task == "regression":
        return Evaluation(final, X_eval, y_eval.astype(float), None, None, info, "the test split",
                          predicted=np.asarray(final.predict(X_eval), dtype=float))
    classes = np.asarray(final.classes_)
    proba = align_proba(final.predict_proba(X_eval), np.asarray(final.classes_), classes)
    return Evaluation(final, X_eval, y_eval, classes, proba, info, "the test split")


def _out_of_fold(model: Any, fitted: bool, dataset: Dataset, opts: ReportOptions, warn: list[str]) -> Evaluation:
    X, y = dataset.X, dataset.y
    min_count = int(y.value_counts().min())
    n_splits = max(2, min(_n_folds(opts, len(X)), min_count))
    cv = (StratifiedKFold(n_splits, shuffle=True, random_state=opts.seed) if min_count >= 2
          else KFold(n_splits, shuffle=True, random_state=opts.seed))
    classes = np.unique(y.to_numpy())
    proba = cross_val_predict(clone(model), X, y, cv=cv, method="predict_proba", n_jobs=1)
    final = model if fitted else clone(model).fit(X, y)
    info = {"method": "cross-validated predictions",
            "detail": f"cross_val_predict(method='predict_proba') over {n_splits} "
                      f"{'stratified ' if min_count >= 2 else ''}folds of a clone of the pipeline; "
                      "explanations use the pipeline fitted on all rows",
            "folds": n_splits, "n_rows": int(len(X))}
    if min_count < 2:
        warn.append("a class has a single row: plain (not stratified) folds were used")
    return Evaluation(final, X, y, classes, proba, info, FITTED_ROWS)


def _out_of_fold_regression(model: Any, fitted: bool, dataset: Dataset, opts: ReportOptions) -> Evaluation:
    X, y = dataset.X, dataset.y.astype(float)
    n_splits = max(2, min(_n_folds(opts, len(X)), len(X)))
    cv = KFold(n_splits, shuffle=True, random_state=opts.seed)
    predicted = cross_val_predict(clone(model), X, y, cv=cv, method="predict", n_jobs=1)
    final = model if fitted else clone(model).fit(X, y)
    info = {"method": "cross-validated predictions",
            "detail": f"cross_val_predict(method='predict') over {n_splits} shuffled folds of a clone of the "
                      "pipeline; explanations use the pipeline fitted on all rows",
            "folds": n_splits, "n_rows": int(len(X))}
    return Evaluation(final, X, y, None, None, info, FITTED_ROWS, predicted=np.asarray(predicted, dtype=float))


def evaluate(model: Any, fitted: bool, dataset: Dataset, test: Any, opts: ReportOptions,
             warn: list[str]) -> Evaluation:
    """Predictions of the final pipeline on ``test`` (fitted on ``dataset`` unless ``fitted``), or out of fold."""
    if test is not None:
        return _on_test(model, fitted, dataset, test)
    if dataset.task == "regression":
        return _out_of_fold_regression(model, fitted, dataset, opts)
    return _out_of_fold(model, fitted, dataset, opts, warn)


def positive_class(ev: Evaluation, opts: ReportOptions) -> Any:
    """The positive class of a binary problem (``opts.positive_class`` or the second class); None otherwise."""
    if ev.classes is None:
        return None
    classes = ev.classes
    positive = opts.positive_class if opts.positive_class is not None else (
        classes[1] if len(classes) == 2 else None)
    if len(classes) == 2 and positive not in set(classes.tolist()):
        raise MetalearnError(f"positive class {positive!r} is not one of {classes.tolist()}")
    return positive
