"""Target transforms of the regression space (the ``target_transform`` hyperparameter) and target scaling.

A regressor is fitted on the transformed target and its predictions are transformed back, through
scikit-learn's :class:`~sklearn.compose.TransformedTargetRegressor`, so a pipeline always predicts in the
original scale. The space cannot know the data, so the transforms carry their own safeguards:

* ``log1p`` is only defined for targets above -1 and meant for non-negative ones: :class:`Log1pIfNonNegative`
  falls back to the identity when the TRAINING target has a negative value (decided at fit time, stored in
  ``identity_``), and clips log-scale predictions before ``expm1`` so they never overflow to infinity;
* ``quantile`` maps the target to a standard normal with ``n_quantiles = min(1000, n_samples)``
  (:class:`TargetQuantileTransformer`); back-transformed predictions stay within the training range.

Separately, :func:`standardized_target` fits a regressor on the standardized target: the SVRs and the MLP
(whose ``C``/``epsilon``/learning rate only make sense on a unit-scale target) always get it.

Every regressor of the space is wrapped last in :class:`RangeClippedRegressor`: its predictions are clipped to the
training target's range widened by ``PREDICTION_MARGIN`` of that range on each side. A linear model, an SVR or an
MLP extrapolates from feature values far outside the training rows (on the charity data a test row with
``giftlast`` 10,000 where the training rows stop at 200 made a lasso predict far beyond any gift, test R^2 -12.6
against 0.28 in CV; an ensemble with such a member scored -39); trees and neighbours never leave the range anyway.
The clipping is part of the pipeline, so cross-validation, the out-of-fold predictions the ensemble is built
on and the final model all see it.
Everything is defined at module level so that fitted pipelines pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from metalearn.errors import MetalearnError

__all__ = [
    "PREDICTION_MARGIN",
    "QUANTILE_MAX_QUANTILES",
    "RangeClippedRegressor",
    "TARGET_TRANSFORMS",
    "Log1pIfNonNegative",
    "TargetQuantileTransformer",
    "standardized_target",
    "with_target_transform",
]

#: the choices of the ``target_transform`` hyperparameter (default ``"none"``)
TARGET_TRANSFORMS: tuple[str, ...] = ("none", "log1p", "quantile")
#: scikit-learn's default number of quantiles; capped to the number of training rows
QUANTILE_MAX_QUANTILES = 1000
#: predictions are clipped to the training target's range widened by this share of the range on each side
PREDICTION_MARGIN = 0.1
#: log-scale predictions are clipped here before ``expm1`` (``expm1(709) < float max``)
_LOG_MAX = 709.0


def _column(y: Any) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(-1, 1) if y.ndim == 1 else y


class Log1pIfNonNegative(TransformerMixin, BaseEstimator):
    """``log1p`` of the target, or the identity when the training target has a negative value."""

    def fit(self, y: Any, _: Any = None) -> Log1pIfNonNegative:
        y = _column(y)
        self.identity_ = bool(y.size == 0 or np.nanmin(y) < 0)
        self.n_features_in_ = y.shape[1]
        return self

    def transform(self, y: Any) -> np.ndarray:
        y = _column(y)
        return y if self.identity_ else np.log1p(y)

    def inverse_transform(self, y: Any) -> np.ndarray:
        y = _column(y)
        return y if self.identity_ else np.expm1(np.minimum(y, _LOG_MAX))


class TargetQuantileTransformer(TransformerMixin, BaseEstimator):
    """QuantileTransformer to a normal distribution with at most as many quantiles as training rows
    (scikit-learn would warn and cap them itself)."""

    def __init__(self, n_quantiles: int = QUANTILE_MAX_QUANTILES, random_state: int = 0) -> None:
        self.n_quantiles = n_quantiles
        self.random_state = random_state

    def fit(self, y: Any, _: Any = None) -> TargetQuantileTransformer:
        y = _column(y)
        n_quantiles = max(1, min(self.n_quantiles, y.shape[0]))
        self.transformer_ = QuantileTransformer(
            n_quantiles=n_quantiles, output_distribution="normal", random_state=self.random_state
        ).fit(y)
        self.n_features_in_ = y.shape[1]
        return self

    def transform(self, y: Any) -> np.ndarray:
        return self.transformer_.transform(_column(y))

    def inverse_transform(self, y: Any) -> np.ndarray:
        return self.transformer_.inverse_transform(_column(y))


class RangeClippedRegressor(RegressorMixin, BaseEstimator):
    """``regressor`` whose predictions stay within the training target's range, widened by ``margin`` of it."""

    def __init__(self, regressor: Any, margin: float = PREDICTION_MARGIN) -> None:
        self.regressor = regressor
        self.margin = margin

    def fit(self, X: Any, y: Any, **fit_params: Any) -> RangeClippedRegressor:
        values = np.asarray(y, dtype=np.float64)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (-np.inf, np.inf)
        self.low_, self.high_ = low - self.margin * (high - low), high + self.margin * (high - low)
        self.regressor_ = clone(self.regressor).fit(X, y, **fit_params)
        if hasattr(self.regressor_, "n_features_in_"):
            self.n_features_in_ = self.regressor_.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.clip(self.regressor_.predict(X), self.low_, self.high_)


def standardized_target(regressor: Any) -> TransformedTargetRegressor:
    """``regressor`` fitted on ``(y - mean) / std``, predicting in the original scale."""
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler(), check_inverse=False)


def with_target_transform(regressor: Any, transform: str, random_state: int = 0) -> Any:
    """``regressor`` as is (``"none"``) or wrapped so that it learns ``log1p(y)`` / the normal quantiles of ``y``."""
    if transform == "none":
        return regressor
    if transform == "log1p":
        transformer: Any = Log1pIfNonNegative()
    elif transform == "quantile":
        transformer = TargetQuantileTransformer(random_state=random_state)
    else:
        raise MetalearnError(f"unknown target transform {transform!r}; choose one of {', '.join(TARGET_TRANSFORMS)}")
    return TransformedTargetRegressor(regressor=regressor, transformer=transformer, check_inverse=False)
