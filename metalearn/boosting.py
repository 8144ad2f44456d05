"""The gradient-boosting library families: LightGBM, XGBoost and CatBoost.

Each is one :class:`~metalearn.registry.Component` with the library's defaults as the space's defaults and
ranges like the ones FLAML's and AutoGluon's portfolios search. Every estimator runs on one thread
(``n_jobs`` / ``nthread`` / ``thread_count`` = 1): a trial owns one core, and the search's per-trial time
limit kills it like any other trial. ``class_weight="balanced"`` is LightGBM's own ``class_weight`` and
balanced sample weights for XGBoost and CatBoost, which also get labels encoded as 0..k-1 (XGBoost needs
them; CatBoost's ``predict`` answers in a column) through :class:`EncodedLabelsClassifier`.
The regressors (:data:`BOOSTING_REGRESSORS`, same hyperparameters, library defaults) need no label encoding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from catboost import CatBoostClassifier, CatBoostRegressor
from ConfigSpace import Categorical, Float, Integer
from ConfigSpace.hyperparameters import Hyperparameter
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier, XGBRegressor

from metalearn.registry import BuildContext, Component, Params, When

__all__ = ["BOOSTING_FAMILIES", "BOOSTING_REGRESSORS", "EncodedLabelsClassifier"]


class EncodedLabelsClassifier(ClassifierMixin, BaseEstimator):
    """Fits ``estimator`` on labels encoded as 0..k-1 (XGBoost needs them), optionally with balanced
    sample weights, and answers in the original labels."""

    def __init__(self, estimator: Any = None, balanced: bool = False) -> None:
        self.estimator = estimator
        self.balanced = balanced

    def fit(self, X: Any, y: Any) -> EncodedLabelsClassifier:
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        codes = self.encoder_.transform(y)
        weights = compute_sample_weight("balanced", codes) if self.balanced else None
        self.estimator_ = clone(self.estimator).fit(X, codes, sample_weight=weights)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        proba = np.asarray(self.estimator_.predict_proba(X))
        return proba if proba.ndim == 2 else np.column_stack([1 - proba, proba])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# --------------------------------------------------------------------------------------------------
# LightGBM
# --------------------------------------------------------------------------------------------------
def _lightgbm_space(p: str) -> list[Hyperparameter]:
    return [
        Integer(f"{p}n_estimators", (8, 2048), log=True, default=100),
        Integer(f"{p}num_leaves", (4, 1024), log=True, default=31),
        Integer(f"{p}min_child_samples", (2, 128), log=True, default=20),
        Float(f"{p}learning_rate", (1 / 1024, 1.0), log=True, default=0.1),
        Float(f"{p}colsample_bytree", (0.1, 1.0), default=1.0),
        Float(f"{p}subsample", (0.1, 1.0), default=1.0),
        Float(f"{p}reg_alpha", (1e-10, 10.0), log=True, default=1e-10),
        Float(f"{p}reg_lambda", (1e-10, 10.0), log=True, default=1e-10),
    ]


def _lightgbm_params(p: Params, ctx: BuildContext) -> dict[str, Any]:
    return dict(
        n_estimators=p["n_estimators"], num_leaves=p["num_leaves"], min_child_samples=p["min_child_samples"],
        learning_rate=p["learning_rate"], colsample_bytree=p["colsample_bytree"], subsample=p["subsample"],
        subsample_freq=1 if p["subsample"] < 1.0 else 0, reg_alpha=p["reg_alpha"], reg_lambda=p["reg_lambda"],
        random_state=ctx.random_state, n_jobs=1, verbose=-1,
    )


def _lightgbm(p: Params, ctx: BuildContext) -> Any:
    return LGBMClassifier(**_lightgbm_params(p, ctx), class_weight=ctx.class_weight)


def _lightgbm_regressor(p: Params, ctx: BuildContext) -> Any:
    return LGBMRegressor(**_lightgbm_params(p, ctx))


# --------------------------------------------------------------------------------------------------
# XGBoost
# --------------------------------------------------------------------------------------------------
def _xgboost_space(p: str) -> list[Hyperparameter]:
    return [
        Integer(f"{p}n_estimators", (8, 2048), log=True, default=100),
        Integer(f"{p}max_depth", (1, 12), default=6),
        Float(f"{p}learning_rate", (1 / 1024, 1.0), log=True, default=0.3),
        Float(f"{p}min_child_weight", (1e-3, 128.0), log=True, default=1.0),
        Float(f"{p}subsample", (0.1, 1.0), default=1.0),
        Float(f"{p}colsample_bytree", (0.1, 1.0), default=1.0),
        Float(f"{p}reg_alpha", (1e-10, 10.0), log=True, default=1e-10),
        Float(f"{p}reg_lambda", (1 / 1024, 1024.0), log=True, default=1.0),
    ]


def _xgboost_params(p: Params, ctx: BuildContext) -> dict[str, Any]:
    return dict(
        n_estimators=p["n_estimators"], max_depth=p["max_depth"], learning_rate=p["learning_rate"],
        min_child_weight=p["min_child_weight"], subsample=p["subsample"], colsample_bytree=p["colsample_bytree"],
        reg_alpha=p["reg_alpha"], reg_lambda=p["reg_lambda"], tree_method="hist", n_jobs=1, verbosity=0,
        random_state=ctx.random_state,
    )


def _xgboost(p: Params, ctx: BuildContext) -> EncodedLabelsClassifier:
    return EncodedLabelsClassifier(XGBClassifier(**_xgboost_params(p, ctx)), balanced=ctx.class_weight == "balanced")


def _xgboost_regressor(p: Params, ctx: BuildContext) -> Any:
    return XGBRegressor(**_xgboost_params(p, ctx))


# --------------------------------------------------------------------------------------------------
# CatBoost
# --------------------------------------------------------------------------------------------------
def _catboost_space(p: str) -> list[Hyperparameter]:
    return [
        Integer(f"{p}iterations", (16, 2000), log=True, default=1000),
        Integer(f"{p}depth", (2, 10), default=6),
        Categorical(f"{p}learning_rate_mode", ["auto", "value"], default="auto"),
        Float(f"{p}learning_rate", (1 / 1024, 1.0), log=True, default=0.03),
        Float(f"{p}l2_leaf_reg", (0.1, 100.0), log=True, default=3.0),
    ]


def _catboost_params(p: Params, ctx: BuildContext) -> dict[str, Any]:
    return dict(
        iterations=p["iterations"], depth=p["depth"], l2_leaf_reg=p["l2_leaf_reg"],
        learning_rate=p["learning_rate"] if p["learning_rate_mode"] == "value" else None,
        random_seed=ctx.random_state, thread_count=1, verbose=False, allow_writing_files=False,
    )


def _catboost(p: Params, ctx: BuildContext) -> EncodedLabelsClassifier:
    booster = CatBoostClassifier(**_catboost_params(p, ctx))
    return EncodedLabelsClassifier(booster, balanced=ctx.class_weight == "balanced")


def _catboost_regressor(p: Params, ctx: BuildContext) -> Any:
    return CatBoostRegressor(**_catboost_params(p, ctx))


_CATBOOST_CONDITIONS = {"learning_rate": When("learning_rate_mode", "value")}

BOOSTING_FAMILIES: tuple[Component, ...] = (
    Component("lightgbm", _lightgbm, _lightgbm_space, class_weight=True),
    Component("xgboost", _xgboost, _xgboost_space, class_weight=True),
    Component("catboost", _catboost, _catboost_space, conditions=_CATBOOST_CONDITIONS, class_weight=True),
)
"""LightGBM, XGBoost and CatBoost, appended to :data:`metalearn.families.FAMILIES`."""

BOOSTING_REGRESSORS: tuple[Component, ...] = (
    Component("lightgbm", _lightgbm_regressor, _lightgbm_space),
    Component("xgboost", _xgboost_regressor, _xgboost_space),
    Component("catboost", _catboost_regressor, _catboost_space, conditions=_CATBOOST_CONDITIONS),
)
"""The LightGBM, XGBoost and CatBoost regressors, appended to :data:`metalearn.regressors.REGRESSORS`."""
