"""Python entry points: ``search``, ``recommend`` and the scikit-learn estimators ``AutoClassifier`` and
``AutoRegressor``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from metalearn.datasets import from_xy
from metalearn.knowledge_base import KnowledgeBase
from metalearn.protocol import DEFAULTS
from metalearn.warmstart.recommendation import RecommendationReport
from metalearn.warmstart.search import SearchResult, SearchSettings, WarmStartSearch


def search(X: Any, y: Any, *, strategy: str = DEFAULTS.strategy, n_trials: int | None = DEFAULTS.n_trials,
           time_budget: float | None = None, trial_time_limit: float | None = None,
           metric: str | None = None, folds: int = DEFAULTS.folds, seed: int = DEFAULTS.seed,
           max_rows: int | None = DEFAULTS.max_rows, ensemble_size: int = DEFAULTS.ensemble_size,
           categorical: list[str] | None = None, name: str = "dataset", task: str | None = None,
           kb: KnowledgeBase | str | None = None, callback: Any = None, include: Sequence[str] = (),
           exclude: Sequence[str] = (), interpretable: bool = False, grid: dict[str, list[Any]] | None = None,
           max_grid_size: int = DEFAULTS.max_grid_size) -> SearchResult:
    """Run a (by default warm-started) search on ``X, y``; every trial is stored in the knowledge base.

    ``task`` is detected from ``y`` when None (see :func:`metalearn.datasets.detect_task`); ``metric`` defaults
    to the task's (balanced accuracy, or R^2). ``include`` / ``exclude`` name estimator families and feature
    preprocessors to keep / leave out, ``interpretable`` keeps interpretable models only
    (:mod:`metalearn.restriction`); ``strategy="grid"`` runs ``grid`` (default: the default grid; ``n_trials=None``
    for all of it)."""
    dataset = from_xy(X, y, name=name, categorical=categorical, task=task)
    settings = SearchSettings(strategy=strategy, n_trials=n_trials, time_budget=time_budget,
                              trial_time_limit=trial_time_limit, metric=metric, folds=folds, seed=seed,
                              max_rows=max_rows, ensemble_size=ensemble_size, include=list(include),
                              exclude=list(exclude), interpretable=interpretable, grid=grid,
                              max_grid_size=max_grid_size)
    return WarmStartSearch(kb, settings).run(dataset, callback=callback)


def recommend(X: Any, y: Any, *, top: int = DEFAULTS.top, k: int = DEFAULTS.k, metric: str | None = None,
              categorical: list[str] | None = None, name: str = "dataset", task: str | None = None,
              kb: KnowledgeBase | str | None = None, include: Sequence[str] = (), exclude: Sequence[str] = (),
              interpretable: bool = False) -> RecommendationReport:
    """Recommended pipelines for ``X, y`` with their evidence (registers the dataset's meta-features); only those
    ``include`` / ``exclude`` / ``interpretable`` allow (``report.filtered`` counts the others)."""
    dataset = from_xy(X, y, name=name, categorical=categorical, task=task)
    engine = WarmStartSearch(kb, SearchSettings(metric=metric, k=k, include=list(include), exclude=list(exclude),
                                                interpretable=interpretable))
    _, features = engine.prepare(dataset)
    return engine.recommend(dataset, features, top)


class _AutoEstimator(BaseEstimator):
    """The warm-started search behind a scikit-learn estimator (``_task`` fixed by the subclass)."""

    _task: str = "classification"

    def __init__(self, strategy: str = DEFAULTS.strategy, n_trials: int | None = DEFAULTS.n_trials,
                 time_budget: float | None = None, trial_time_limit: float | None = None,
                 metric: str | None = None, folds: int = DEFAULTS.folds, seed: int = DEFAULTS.seed,
                 max_rows: int | None = DEFAULTS.max_rows, ensemble_size: int = DEFAULTS.ensemble_size,
                 kb: str | None = None, include: Sequence[str] = (), exclude: Sequence[str] = (),
                 interpretable: bool = False) -> None:
        self.strategy = strategy
        self.n_trials = n_trials
        self.time_budget = time_budget
        self.trial_time_limit = trial_time_limit
        self.metric = metric
        self.folds = folds
        self.seed = seed
        self.max_rows = max_rows
        self.ensemble_size = ensemble_size
        self.kb = kb
        self.include = include
        self.exclude = exclude
        self.interpretable = interpretable

    def fit(self, X: Any, y: Any) -> _AutoEstimator:
        result = search(X, y, strategy=self.strategy, n_trials=self.n_trials, time_budget=self.time_budget,
                        trial_time_limit=self.trial_time_limit, metric=self.metric, folds=self.folds,
                        seed=self.seed, max_rows=self.max_rows, ensemble_size=self.ensemble_size, kb=self.kb,
                        task=self._task, include=self.include, exclude=self.exclude, interpretable=self.interpretable)
        if result.model is None:
            raise RuntimeError("no trial succeeded; see leaderboard_ for the errors")
        self.result_ = result
        self.bundle_ = result.bundle()
        self.model_ = result.model
        self.ensemble_ = result.ensemble
        self.best_config_ = result.best_config
        self.best_score_ = result.best_score
        self.leaderboard_ = result.leaderboard
        self.trajectory_ = result.trajectory
        self.search_id_ = result.search_id
        if self._task == "classification":
            self.classes_ = self.model_.classes_
        self.feature_names_in_ = np.asarray(result.extra["columns"], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.bundle_.predict(X)



class AutoClassifier(ClassifierMixin, _AutoEstimator):
    """Warm-started AutoML classifier with the scikit-learn estimator API.

    After ``fit``: ``best_config_``, ``best_score_``, ``leaderboard_``, ``trajectory_``, ``search_id_``,
    ``model_`` (the final model: the ensemble of the best trials, or the single best pipeline with
    ``ensemble_size=0``), ``ensemble_`` (its members, weights and out-of-fold score, or None) and ``classes_``.
    """

    _task = "classification"

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.bundle_.predict_proba(X)


class AutoRegressor(RegressorMixin, _AutoEstimator):
    """Warm-started AutoML regressor with the scikit-learn estimator API (``score`` is R^2).

    After ``fit``: the same attributes as :class:`AutoClassifier`, without ``classes_``; the default metric is
    R^2 (``metric="rmse"``, ``"mae"`` or ``"mape"`` optimise an error, stored negated).
    """

    _task = "regression"
