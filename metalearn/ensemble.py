"""Greedy ensemble selection (Caruana et al. 2004, as auto-sklearn does it) and the fitted ensemble model.

:func:`ensemble_selection` picks, ``size`` times and with replacement, the candidate whose out-of-fold
probabilities most improve the average so far; the weights are how often each was picked.
:class:`EnsembleClassifier` is the weighted average of its fitted members' probabilities, a scikit-learn
classifier that a :class:`~metalearn.model_io.ModelBundle` saves like any pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from metalearn.evaluation import aligned_proba, score_proba

__all__ = ["EnsembleClassifier", "EnsembleRegressor", "ensemble_of", "ensemble_selection"]


def ensemble_selection(predictions: Sequence[np.ndarray], y: Any, labels: np.ndarray | None, metric: str,
                       size: int) -> tuple[np.ndarray, float]:
    """Weights (summing to 1) over ``predictions`` (out-of-fold probabilities, columns = ``labels``; for
    regression one column of predicted values and ``labels`` None) chosen by
    greedy forward selection with replacement, and the ensemble's out-of-fold score.

    The ``size`` rounds are cut back to the round with the best score (the earliest of equals), so the
    ensemble never scores below the best single candidate. Ties go to the earlier candidate: put the
    candidates best first."""
    if not predictions:
        raise ValueError("ensemble selection needs at least one candidate")
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in predictions])
    picks: list[int] = []
    history: list[float] = []
    total = np.zeros_like(stacked[0])
    for step in range(1, max(1, size) + 1):
        scores = [score_proba(metric, y, (total + candidate) / step, labels) for candidate in stacked]
        pick = int(np.argmax(scores))
        picks.append(pick)
        history.append(float(scores[pick]))
        total += stacked[pick]
    best_round = int(np.argmax(history))
    counts = np.bincount(picks[: best_round + 1], minlength=len(stacked))
    return counts / counts.sum(), history[best_round]


class EnsembleClassifier(ClassifierMixin, BaseEstimator):
    """Weighted average of the class probabilities of fitted ``members`` (all trained on the same labels)."""

    def __init__(self, members: Sequence[Any] = (), weights: Sequence[float] = ()) -> None:
        self.members = members
        self.weights = weights

    def fit(self, X: Any, y: Any) -> EnsembleClassifier:
        """Fit every member on ``(X, y)`` (members are usually passed fitted: see :meth:`from_fitted`)."""
        for member in self.members:
            member.fit(X, y)
        return self._finish(np.unique(np.asarray(y)))

    @classmethod
    def from_fitted(cls, members: Sequence[Any], weights: Sequence[float]) -> EnsembleClassifier:
        labels = np.unique(np.concatenate([np.asarray(m.classes_) for m in members]))
        return cls(list(members), [float(w) for w in weights])._finish(labels)

    def _finish(self, labels: np.ndarray) -> EnsembleClassifier:
        if len(self.members) != len(self.weights) or not self.members:
            raise ValueError("an ensemble needs one weight per member, and at least one member")
        self.classes_ = labels
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "classes_")
        weights = np.asarray(self.weights, dtype=float)
        total = sum(w * aligned_proba(m, X, self.classes_) for m, w in zip(self.members, weights, strict=True))
        return total / weights.sum()

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class EnsembleRegressor(RegressorMixin, BaseEstimator):
    """Weighted average of the predictions of fitted regressor ``members``."""

    def __init__(self, members: Sequence[Any] = (), weights: Sequence[float] = ()) -> None:
        self.members = members
        self.weights = weights

    def fit(self, X: Any, y: Any) -> EnsembleRegressor:
        for member in self.members:
            member.fit(X, y)
        return self._finish()

    @classmethod
    def from_fitted(cls, members: Sequence[Any], weights: Sequence[float]) -> EnsembleRegressor:
        return cls(list(members), [float(w) for w in weights])._finish()

    def _finish(self) -> EnsembleRegressor:
        if len(self.members) != len(self.weights) or not self.members:
            raise ValueError("an ensemble needs one weight per member, and at least one member")
        self.n_members_ = len(self.members)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_members_")
        weights = np.asarray(self.weights, dtype=float)
        total = sum(w * np.asarray(m.predict(X), dtype=float) for m, w in zip(self.members, weights, strict=True))
        return total / weights.sum()


def ensemble_of(members: Sequence[Any], weights: Sequence[float], regression: bool) -> Any:
    """The fitted ensemble of ``members`` (a regressor or a classifier)."""
    kind = EnsembleRegressor if regression else EnsembleClassifier
    return kind.from_fitted(members, weights)
