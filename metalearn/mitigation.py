"""Fairness mitigation of a search's final model: fairlearn's ``ThresholdOptimizer`` (post-processing).

``metalearn search ... --sensitive COL --fairness demographic_parity|equalized_odds`` runs the search as usual,
then :func:`mitigate` wraps the final model (single pipeline or ensemble) in a :class:`FairClassifier`:

* **Method.** ``ThresholdOptimizer(prefit=True, predict_method="predict_proba")`` picks, per group of the
  sensitive column, a (randomised) threshold on the model's positive-class probability so that selection
  rates (demographic parity) or true- and false-positive rates (equalized odds) are equal across groups,
  maximising balanced accuracy under that constraint. It works with any fitted classifier, so every pipeline
  and ensemble of the space qualifies; reductions such as ``ExponentiatedGradient`` would refit the pipeline
  many times with sample weights, which not every family supports, and are not used.
* **Thresholds are fitted on out-of-fold probabilities** of the training rows (3-fold
  ``cross_val_predict`` of a clone of the final model): the refitted model's in-sample probabilities are
  over-confident, and thresholds fitted on them would not carry over to new rows.
* **The sensitive column stays a feature.** The search ran on every column, and the optimizer needs the
  group of each row at predict time anyway: :class:`FairClassifier` reads it from the input frame by name, so
  a model file predicts from the same columns as before (``ModelBundle.metadata["fairness"]`` records the
  column, the constraint and the figures). Numeric sensitive columns with more than 10 values are grouped
  into the training quartiles, like the report's fairness section.
* **Binary classification only** (fairlearn's optimizer is binary); regression and multiclass targets are
  refused with a clear error before the search starts (:func:`check_request`).
* **Before / after.** Metrics and disparity per group (:func:`metalearn.report.fairness.fairness_section`)
  of the unmitigated and mitigated predictions: on the held-out test split when the search kept one
  (``--test-size``), else on the out-of-fold predictions of the training rows (the thresholds were fitted on
  those: optimistic for the "after" side, said so in ``evaluated_on``).

Predictions of the optimizer are randomised between two thresholds for some groups; they are made
reproducible by a fixed ``random_state`` (the search's seed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from metalearn.datasets import Dataset
from metalearn.errors import MetalearnError
from metalearn.protocol import to_jsonable
from metalearn.report.fairness import fairness_section

CONSTRAINTS = ("demographic_parity", "equalized_odds")
FOLDS = 3
MAX_GROUPS_EXACT = 10


@dataclass(frozen=True)
class FairnessRequest:
    """What to mitigate: the sensitive column and the fairness constraint."""

    sensitive: str
    constraint: str = "demographic_parity"


def fairness_request(sensitive: str | None, constraint: str | None) -> FairnessRequest | None:
    """The request of a front end's two optional fields (``None`` when neither is given); both or neither."""
    if sensitive is None and constraint is None:
        return None
    if sensitive is None or constraint is None:
        raise MetalearnError(f"fairness mitigation needs both a sensitive column and a constraint "
                             f"({' or '.join(CONSTRAINTS)})")
    return FairnessRequest(sensitive, constraint)


def check_request(request: FairnessRequest, dataset: Dataset) -> None:
    """A :class:`MetalearnError` unless ``request`` can be applied to ``dataset`` (before the search runs)."""
    if request.constraint not in CONSTRAINTS:
        raise MetalearnError(f"unknown fairness constraint {request.constraint!r}; use one of {', '.join(CONSTRAINTS)}")
    if dataset.task != "classification":
        raise MetalearnError("fairness mitigation (--fairness) needs a classification target; this is regression "
                             "(the report's fairness section still shows per-group errors)")
    if request.sensitive == dataset.target:
        raise MetalearnError(f"the sensitive column {request.sensitive!r} is the target")
    if request.sensitive not in dataset.X.columns:
        raise MetalearnError(f"sensitive column {request.sensitive!r} is not a column of the data; columns: "
                             f"{', '.join(map(str, dataset.X.columns[:20]))}")
    if dataset.y.nunique() != 2:
        raise MetalearnError(f"fairness mitigation works on two classes (fairlearn's ThresholdOptimizer); the "
                             f"target has {dataset.y.nunique()}")
    if dataset.X[request.sensitive].nunique(dropna=False) < 2:
        raise MetalearnError(f"the sensitive column {request.sensitive!r} has a single group")


def _group_rule(values: pd.Series) -> list[float] | None:
    """Quartile edges for a numeric column with many values (None: the values are the groups)."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > MAX_GROUPS_EXACT:
        return sorted(set(np.nanquantile(values.to_numpy(dtype=float), [0.25, 0.5, 0.75]).tolist()))
    return None


def _groups(values: pd.Series, edges: list[float] | None) -> np.ndarray:
    if edges is not None:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        codes = np.searchsorted(np.asarray(edges), numbers, side="right").astype(object)
        return np.where(np.isnan(numbers), "missing", np.char.add("q", codes.astype(str)))
    return values.astype(object).where(values.notna(), "missing").map(str).to_numpy(dtype=object)


class _Scores(BaseEstimator):
    """The model's positive-class probability; while thresholds are fitted, the given out-of-fold ones."""

    def __init__(self, model: Any = None, fit_scores: np.ndarray | None = None) -> None:
        self.model = model
        self.fit_scores = fit_scores

    def fit(self, X: Any, y: Any = None) -> _Scores:  # pragma: no cover - always prefit
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.fit_scores is not None:
            return self.fit_scores
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.model.predict_proba(X)

    def __sklearn_is_fitted__(self) -> bool:
        return True


class FairClassifier(ClassifierMixin, BaseEstimator):
    """A fitted binary classifier post-processed by fairlearn's ``ThresholdOptimizer``.

    ``predict`` / ``predict_proba`` take the feature frame, which holds the ``sensitive`` column (a feature).
    ``predict_proba`` is the probability of each class under the optimizer's randomised thresholds.
    """

    def __init__(self, model: Any = None, sensitive: str = "", constraint: str = "demographic_parity",
                 seed: int = 0) -> None:
        self.model = model
        self.sensitive = sensitive
        self.constraint = constraint
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: pd.Series) -> FairClassifier:
        """Fit the wrapped model on ``(X, y)``, then the thresholds on its out-of-fold probabilities (what a
        clone does in cross-validation, e.g. in the model report)."""
        y = pd.Series(np.asarray(y))
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            self.model.fit(X, y)
        return self.fit_thresholds(X, y, _oof_proba(self.model, X, y, self.seed)[0])

    def fit_thresholds(self, X: pd.DataFrame, y: pd.Series, scores: np.ndarray) -> FairClassifier:
        """Fit the thresholds on ``scores`` (out-of-fold class probabilities of ``X``)."""
        from fairlearn.postprocessing import ThresholdOptimizer

        self.classes_ = np.asarray(self.model.classes_)
        self.group_edges_ = _group_rule(X[self.sensitive])
        self.source_ = source = _Scores(self.model, scores)
        self.optimizer_ = ThresholdOptimizer(estimator=source, constraints=self.constraint,
                                             objective="balanced_accuracy_score", prefit=True,
                                             predict_method="predict_proba")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.optimizer_.fit(X, (np.asarray(y) == self.classes_[1]).astype(int),
                                sensitive_features=self.groups(X))
        source.fit_scores = None  # from now on the optimizer scores rows with the model itself
        return self

    def groups(self, X: pd.DataFrame) -> np.ndarray:
        if self.sensitive not in X.columns:
            raise MetalearnError(f"the data lacks the sensitive column {self.sensitive!r} the fair model needs")
        return _groups(X[self.sensitive], self.group_edges_)

    def predict(self, X: pd.DataFrame, scores: np.ndarray | None = None) -> np.ndarray:
        """Class predictions; ``scores`` replaces the model's probabilities of ``X`` (out-of-fold evaluation)."""
        self.source_.fit_scores = scores
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                positive = self.optimizer_.predict(X, sensitive_features=self.groups(X), random_state=self.seed)
        finally:
            self.source_.fit_scores = None
        return self.classes_[np.asarray(positive, dtype=int)]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.optimizer_._pmf_predict(X, sensitive_features=self.groups(X)), dtype=float)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "optimizer_")


def _oof_proba(model: Any, X: pd.DataFrame, y: pd.Series, seed: int) -> tuple[np.ndarray, str]:
    """Out-of-fold class probabilities of a clone of ``model`` on ``X`` (in-sample from the fitted ``model`` as
    a fallback, e.g. when a class has a single row)."""
    folds = min(FOLDS, int(y.value_counts().min()))
    if folds >= 2:
        try:
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore")
                cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
                return cross_val_predict(clone(model), X, y, cv=cv, method="predict_proba"), \
                    f"{folds}-fold out-of-fold probabilities"
        except (ValueError, TypeError, RuntimeError):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.predict_proba(X), "in-sample probabilities (out-of-fold ones were not possible)"


def _figures(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray, groups: pd.DataFrame) -> dict[str, Any]:
    section, _ = fairness_section(y, predicted, classes, classes[1], groups, threshold=0.1)
    attribute = section["attributes"][0]
    return {"balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
            "accuracy": float(np.mean(y == predicted)),
            "demographic_parity_difference": attribute["demographic_parity_difference"],
            "equalized_odds_difference": attribute["equalized_odds_difference"], "groups": attribute["groups"]}


def mitigate(model: Any, train: Dataset, request: FairnessRequest, *, test: Dataset | None = None,
             seed: int = 0) -> tuple[FairClassifier, dict[str, Any]]:
    """Wrap the fitted ``model`` in a :class:`FairClassifier` fitted on ``train``; the before/after figures."""
    check_request(request, train)
    scores, how = _oof_proba(model, train.X, train.y, seed)
    fair = FairClassifier(model, request.sensitive, request.constraint, seed).fit_thresholds(train.X, train.y, scores)
    classes = fair.classes_
    if test is not None:
        X, y, where = test.X, test.y.to_numpy(), f"held-out test split ({len(test.X)} rows)"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before = np.asarray(model.predict(X))
        after = fair.predict(X)
    else:
        X, y = train.X, train.y.to_numpy()
        where = (f"{how} of the {len(X)} training rows (the thresholds were fitted on them: the 'after' figures "
                 "are optimistic; keep a test split with --test-size for unbiased ones)")
        before = classes[np.argmax(scores, axis=1)]
        after = fair.predict(X, scores=scores)
    groups = pd.DataFrame({request.sensitive: fair.groups(X)})
    summary = {"sensitive": request.sensitive, "constraint": request.constraint,
               "method": "fairlearn ThresholdOptimizer (post-processing, prefit, objective balanced accuracy)",
               "thresholds_fitted_on": how, "evaluated_on": where, "positive_class": classes[1],
               "grouping": "quartiles of the training values" if fair.group_edges_ is not None else "values",
               "before": _figures(y, before, classes, groups), "after": _figures(y, after, classes, groups)}
    return fair, to_jsonable(summary)
