"""Custom scikit-learn steps used by the pipelines of the search space (see :mod:`metalearn.pipeline`).

They carry the data-dependent safeguards that the space cannot express: a capped KNN imputer, polynomial
features only when cheap, feature selectors that keep at least one feature, and k-nearest-neighbours
estimators that never ask for more neighbours than training rows. For regression, RFE ranks features with a
ridge regression and L1 selection uses a Lasso whose penalty is relative to the data (:class:`RelativeLasso`).
Everything is defined at module level so that fitted pipelines pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.feature_selection import RFE, SelectFromModel, SelectPercentile
from sklearn.impute import KNNImputer
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils.class_weight import compute_sample_weight

__all__ = [
    "CappedKNNImputer",
    "CappedKNeighborsClassifier",
    "CappedKNeighborsRegressor",
    "FractionRFE",
    "FractionRidgeRFE",
    "LabelSafeExtraTreesClassifier",
    "LabelSafeRandomForestClassifier",
    "PolynomialIfCheap",
    "RelativeLasso",
    "SelectFromModelAtLeastOne",
    "SelectPercentileAtLeastOne",
    "l1_importances",
    "logistic_regression",
    "to_float_array",
    "to_object_array",
    "to_str_array",
]

_SKLEARN_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2] if part.isdigit())


def logistic_regression(*, C: float, l1_ratio: float, solver: str, **kwargs: Any) -> LogisticRegression:
    """LogisticRegression with the penalty given as ``l1_ratio`` (0: L2, 1: L1), on any sklearn >= 1.4."""
    if _SKLEARN_VERSION >= (1, 8):
        return LogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, **kwargs)
    penalty = "l2" if l1_ratio == 0 else "l1" if l1_ratio == 1 else "elasticnet"
    ratio = l1_ratio if penalty == "elasticnet" else None
    return LogisticRegression(penalty=penalty, C=C, l1_ratio=ratio, solver=solver, **kwargs)


# --------------------------------------------------------------------------------------------------
# Column conversions (used through FunctionTransformer)
# --------------------------------------------------------------------------------------------------
def _to_float_array(X: Any) -> np.ndarray:
    """Numeric columns as a float array; pandas NA / nullable dtypes become NaN."""
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(X, dtype=np.float64)


def _to_object_array(X: Any) -> np.ndarray:
    """Categorical columns as an object array of strings, with every kind of missing value as NaN."""
    arr = np.asarray(pd.DataFrame(X).astype(object))
    missing = pd.isna(arr)
    out = arr.astype(str).astype(object)
    out[missing] = np.nan
    return out


def _to_str_array(X: Any) -> np.ndarray:
    """After imputation: every cell a string (an all-missing column may be imputed with ``0``)."""
    return np.asarray(X).astype(str).astype(object)


# Public names; the functions keep their original names, which show in the reprs of built pipelines.
to_float_array = _to_float_array
to_object_array = _to_object_array
to_str_array = _to_str_array


def _same_feature_names(n_features: int, input_features: Any) -> np.ndarray:
    if input_features is None:
        return np.asarray([f"x{i}" for i in range(n_features)], dtype=object)
    if len(input_features) != n_features:
        raise ValueError(f"expected {n_features} input feature names, got {len(input_features)}")
    return np.asarray(input_features, dtype=object)


# --------------------------------------------------------------------------------------------------
# Transformers and estimators
# --------------------------------------------------------------------------------------------------
class CappedKNNImputer(TransformerMixin, BaseEstimator):
    """KNNImputer whose neighbour pool is a random subsample of at most ``max_reference_rows`` rows.

    All-missing columns are kept (filled with 0) so that the output width never depends on the data.
    """

    def __init__(self, n_neighbors: int = 5, max_reference_rows: int = 2000, random_state: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.max_reference_rows = max_reference_rows
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> CappedKNNImputer:
        X = np.asarray(X, dtype=np.float64)
        if X.shape[0] > self.max_reference_rows:
            rows = np.random.RandomState(self.random_state).choice(X.shape[0], self.max_reference_rows, False)
            X = X[np.sort(rows)]
        self.imputer_ = KNNImputer(n_neighbors=self.n_neighbors, keep_empty_features=True).fit(X)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        return self.imputer_.transform(np.asarray(X, dtype=np.float64))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        # One-to-one (empty features are kept); KNNImputer's own method drops empty features' names.
        return _same_feature_names(self.n_features_in_, input_features)


class PolynomialIfCheap(TransformerMixin, BaseEstimator):
    """Degree-2 polynomial features, or the identity when the input has more than ``max_input_features``.

    The decision is taken at fit time on the actual (encoded) feature count, so the output has at most
    ``m + m * (m + 1) / 2`` columns with ``m = max_input_features``.
    """

    def __init__(self, interaction_only: bool = False, max_input_features: int = 20) -> None:
        self.interaction_only = interaction_only
        self.max_input_features = max_input_features

    def fit(self, X: Any, y: Any = None) -> PolynomialIfCheap:
        X = np.asarray(X)
        self.n_features_in_ = X.shape[1]
        self.poly_: PolynomialFeatures | None = None
        if X.shape[1] <= self.max_input_features:
            self.poly_ = PolynomialFeatures(degree=2, interaction_only=self.interaction_only, include_bias=False).fit(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        return X if self.poly_ is None else self.poly_.transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        if self.poly_ is not None:
            return self.poly_.get_feature_names_out(input_features)
        return _same_feature_names(self.n_features_in_, input_features)


class FractionRFE(TransformerMixin, BaseEstimator):
    """RFE with an L2 logistic regression keeping ``max(1, round(fraction * n_features))`` features."""

    def __init__(self, n_features_fraction: float = 0.5, step: float = 0.1, random_state: int = 0) -> None:
        self.n_features_fraction = n_features_fraction
        self.step = step
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> FractionRFE:
        X = np.asarray(X, dtype=np.float64)
        self.n_features_in_ = X.shape[1]
        n_select = max(1, int(round(self.n_features_fraction * X.shape[1])))
        self.rfe_ = RFE(self._ranking_estimator(), n_features_to_select=n_select, step=self.step).fit(X, y)
        return self

    def _ranking_estimator(self) -> Any:
        """The linear model whose coefficients rank the features."""
        return LogisticRegression(max_iter=200, random_state=self.random_state)

    def transform(self, X: Any) -> np.ndarray:
        return self.rfe_.transform(np.asarray(X, dtype=np.float64))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.rfe_.get_feature_names_out(input_features)


class CappedKNeighborsClassifier(ClassifierMixin, BaseEstimator):
    """KNeighborsClassifier whose ``n_neighbors`` is clipped to the number of training rows."""

    def __init__(self, n_neighbors: int = 5, weights: str = "uniform", p: int = 2) -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.p = p

    def fit(self, X: Any, y: Any) -> CappedKNeighborsClassifier:
        k = max(1, min(self.n_neighbors, len(X)))
        self.estimator_ = KNeighborsClassifier(n_neighbors=k, weights=self.weights, p=self.p, n_jobs=1)
        self.estimator_.fit(X, y)
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_proba(X)


class _BalancedAsSampleWeights:
    """Forest mixin: ``class_weight="balanced"`` applied as the equal sample weights.

    scikit-learn 1.9's forests turn "balanced" into a dict keyed by the labels, then look each label up as
    ``int(label)``: string labels such as ``"0"`` or ``"1"`` are never found and the fit fails ("The classes,
    [0, 1], are not in class_weight"). :func:`~sklearn.utils.class_weight.compute_sample_weight` gives the same
    weights without that lookup, and a forest multiplies its class weights into the sample weights anyway."""

    class_weight: Any

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        if not isinstance(self.class_weight, str) or self.class_weight != "balanced":
            return super().fit(X, y, sample_weight=sample_weight)  # type: ignore[misc]
        weights = compute_sample_weight("balanced", y)
        if sample_weight is not None:
            weights = weights * np.asarray(sample_weight, dtype=float)
        self.class_weight = None
        try:
            return super().fit(X, y, sample_weight=weights)  # type: ignore[misc]
        finally:
            self.class_weight = "balanced"


class LabelSafeRandomForestClassifier(_BalancedAsSampleWeights, RandomForestClassifier):
    """RandomForestClassifier whose ``class_weight="balanced"`` works with any labels (see the mixin)."""


class LabelSafeExtraTreesClassifier(_BalancedAsSampleWeights, ExtraTreesClassifier):
    """ExtraTreesClassifier whose ``class_weight="balanced"`` works with any labels (see the mixin)."""


class FractionRidgeRFE(FractionRFE):
    """:class:`FractionRFE` for regression: the features are ranked by a ridge regression (``alpha=1``)."""

    def _ranking_estimator(self) -> Any:
        return Ridge()


class CappedKNeighborsRegressor(RegressorMixin, BaseEstimator):
    """KNeighborsRegressor whose ``n_neighbors`` is clipped to the number of training rows."""

    def __init__(self, n_neighbors: int = 5, weights: str = "uniform", p: int = 2) -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.p = p

    def fit(self, X: Any, y: Any) -> CappedKNeighborsRegressor:
        k = max(1, min(self.n_neighbors, len(X)))
        self.estimator_ = KNeighborsRegressor(n_neighbors=k, weights=self.weights, p=self.p, n_jobs=1)
        self.estimator_.fit(X, y)
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.estimator_.predict(X)


class RelativeLasso(RegressorMixin, BaseEstimator):
    """Lasso with ``alpha = alpha_ratio * alpha_max``, where ``alpha_max = max |X_c^T y_c| / n`` is the smallest
    penalty that zeroes every coefficient: the same ratio means the same sparsity whatever the target's scale."""

    def __init__(self, alpha_ratio: float = 0.01, max_iter: int = 1000) -> None:
        self.alpha_ratio = alpha_ratio
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> RelativeLasso:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        alpha_max = float(np.max(np.abs((X - X.mean(axis=0)).T @ (y - y.mean())), initial=0.0)) / max(len(y), 1)
        alpha = self.alpha_ratio * alpha_max if alpha_max > 0 else 1.0  # no signal: any penalty zeroes all
        self.lasso_ = Lasso(alpha=alpha, max_iter=self.max_iter).fit(X, y)
        self.coef_ = self.lasso_.coef_
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.lasso_.predict(np.asarray(X, dtype=np.float64))


def _l1_importances(estimator: Any) -> np.ndarray:
    """|coef| summed over classes, for a LogisticRegression or a OneVsRestClassifier of them (or a
    :class:`RelativeLasso`)."""
    estimators = getattr(estimator, "estimators_", [estimator])
    return np.sum([np.abs(np.atleast_2d(e.coef_)).sum(axis=0) for e in estimators], axis=0)


l1_importances = _l1_importances


class SelectFromModelAtLeastOne(SelectFromModel):
    """SelectFromModel that keeps the most important feature when the threshold removes all of them."""

    def _get_support_mask(self) -> np.ndarray:
        mask = super()._get_support_mask()
        if not mask.any():
            mask = mask.copy()
            mask[int(np.argmax(_l1_importances(self.estimator_)))] = True
        return mask


class SelectPercentileAtLeastOne(SelectPercentile):
    """SelectPercentile that keeps the best-scoring feature when the percentile rounds down to zero."""

    def _get_support_mask(self) -> np.ndarray:
        mask = super()._get_support_mask()
        if not mask.any():
            mask = mask.copy()
            mask[int(np.argmax(np.nan_to_num(self.scores_, nan=-np.inf)))] = True
        return mask
