"""The feature preprocessors of the search spaces (after encoding, before the classifier or regressor).

Each is a :class:`~metalearn.registry.Component` whose hyperparameters are named
``feature_preprocessing:<choice>:<parameter>``. :data:`PREPROCESSORS` serves classification and
:data:`REGRESSION_PREPROCESSORS` regression: the same choices, with the supervised ones scoring features
against a continuous target (``f_regression`` / ``mutual_info_regression``, RFE ranking with a ridge
regression, L1 selection with a :class:`~metalearn.components.RelativeLasso`). Feature selectors always keep at
least one feature, and
polynomial features are only expanded when the input has at most ``POLYNOMIAL_MAX_INPUT_FEATURES`` columns
(replaced by ``"passthrough"`` when the caller already knows ``n_features`` is larger, and checked again at
fit time on the encoded feature count).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ConfigSpace import Categorical, Float
from ConfigSpace.hyperparameters import Hyperparameter
from sklearn.decomposition import PCA
from sklearn.feature_selection import f_classif, f_regression, mutual_info_classif, mutual_info_regression
from sklearn.multiclass import OneVsRestClassifier

from metalearn.components import (
    FractionRFE,
    FractionRidgeRFE,
    PolynomialIfCheap,
    RelativeLasso,
    SelectFromModelAtLeastOne,
    SelectPercentileAtLeastOne,
    l1_importances,
    logistic_regression,
)
from metalearn.registry import BuildContext, Component, Params, Registry, boolean

__all__ = ["POLYNOMIAL_MAX_INPUT_FEATURES", "PREPROCESSORS", "REGRESSION_PREPROCESSORS"]

POLYNOMIAL_MAX_INPUT_FEATURES = 20


def _passthrough(p: Params, ctx: BuildContext) -> str:
    return "passthrough"


def _pca_space(p: str) -> list[Hyperparameter]:
    return [Float(f"{p}keep_variance", (0.5, 0.9999), default=0.95), boolean(f"{p}whiten", False)]


def _pca(p: Params, ctx: BuildContext) -> PCA:
    # Exact SVD so that a variance fraction can be kept (always at least one component).
    return PCA(n_components=p["keep_variance"], whiten=p["whiten"], svd_solver="full", random_state=ctx.random_state)


def _select_percentile_space(f_test: str, p: str) -> list[Hyperparameter]:
    """``score_func`` is the task's F-test, named ``f_test`` (the default), or ``mutual_info``."""
    return [
        Categorical(f"{p}score_func", [f_test, "mutual_info"], default=f_test),
        Float(f"{p}percentile", (5.0, 95.0), default=50.0),
    ]


def _select_percentile(
    f_test: Callable[..., Any], mutual_info: Callable[..., Any], p: Params, ctx: BuildContext
) -> SelectPercentileAtLeastOne:
    score_func: Any = f_test
    if p["score_func"] == "mutual_info":
        score_func = functools.partial(mutual_info, random_state=ctx.random_state)
    return SelectPercentileAtLeastOne(score_func=score_func, percentile=p["percentile"])


def _l1_selection_space(p: str) -> list[Hyperparameter]:
    return [
        Categorical(f"{p}solver", ["liblinear", "saga"], default="liblinear"),
        Float(f"{p}C", (0.01, 100.0), log=True, default=1.0),
    ]


def _l1_selection(p: Params, ctx: BuildContext) -> SelectFromModelAtLeastOne:
    solver = p["solver"]
    base = logistic_regression(C=p["C"], l1_ratio=1.0, solver=solver, max_iter=200, random_state=ctx.random_state)
    # liblinear is binary-only: one-vs-rest makes it work for any number of classes.
    estimator = OneVsRestClassifier(base, n_jobs=1) if solver == "liblinear" else base
    # Explicit L1 threshold: SelectFromModel would default to "mean" for the one-vs-rest wrapper.
    return SelectFromModelAtLeastOne(estimator, threshold=1e-5, importance_getter=l1_importances)


def _rfe_space(p: str) -> list[Hyperparameter]:
    return [
        Float(f"{p}n_features_fraction", (0.1, 0.9), default=0.5),
        Float(f"{p}step", (0.05, 0.5), default=0.1),
    ]


def _rfe(cls: type, p: Params, ctx: BuildContext) -> Any:
    """:class:`FractionRFE` (classification) or :class:`FractionRidgeRFE` (regression)."""
    return cls(p["n_features_fraction"], p["step"], random_state=ctx.random_state)


def _polynomial_space(p: str) -> list[Hyperparameter]:
    return [boolean(f"{p}interaction_only", False)]


def _polynomial(p: Params, ctx: BuildContext) -> Any:
    if ctx.n_features is not None and ctx.n_features > POLYNOMIAL_MAX_INPUT_FEATURES:
        return "passthrough"
    return PolynomialIfCheap(p["interaction_only"], max_input_features=POLYNOMIAL_MAX_INPUT_FEATURES)


# --------------------------------------------------------------------------------------------------
# The regression L1 selector (the other selectors serve both tasks, parametrised by the registries below)
# --------------------------------------------------------------------------------------------------
def _l1_selection_regression_space(p: str) -> list[Hyperparameter]:
    # The penalty as a fraction of the smallest one that removes every feature (scale-free).
    return [Float(f"{p}alpha_ratio", (1e-3, 0.5), log=True, default=0.01)]


def _l1_selection_regression(p: Params, ctx: BuildContext) -> SelectFromModelAtLeastOne:
    return SelectFromModelAtLeastOne(
        RelativeLasso(alpha_ratio=p["alpha_ratio"]), threshold=1e-5, importance_getter=l1_importances
    )


_NONE = Component("none", _passthrough)
_PCA = Component("pca", _pca, _pca_space)
# Squares/products of unscaled features are numerically badly conditioned.
_POLYNOMIAL = Component("polynomial", _polynomial, _polynomial_space, incompatible={"scaling": "none"})


def _registry(select_percentile: Component, l1_selection: Component, rfe: Component) -> Registry:
    """The feature preprocessors of a task: the same choices, in the same order, for both tasks."""
    return Registry(
        name="feature_preprocessing",
        default="none",
        prefix_format="feature_preprocessing:{}:",
        components=(_NONE, _PCA, select_percentile, l1_selection, rfe, _POLYNOMIAL),
    )


PREPROCESSORS = _registry(
    Component(
        "select_percentile",
        functools.partial(_select_percentile, f_classif, mutual_info_classif),
        functools.partial(_select_percentile_space, "f_classif"),
    ),
    Component(
        "l1_selection",
        _l1_selection,
        _l1_selection_space,
        # saga does not converge in reasonable time on unscaled features.
        forbidden=({"scaling": "none", "feature_preprocessing:l1_selection:solver": "saga"},),
    ),
    Component("rfe", functools.partial(_rfe, FractionRFE), _rfe_space),
)
"""The feature preprocessors of classification, in the order of the ``feature_preprocessing`` choices."""

REGRESSION_PREPROCESSORS = _registry(
    Component(
        "select_percentile",
        functools.partial(_select_percentile, f_regression, mutual_info_regression),
        functools.partial(_select_percentile_space, "f_regression"),
    ),
    Component("l1_selection", _l1_selection_regression, _l1_selection_regression_space),
    Component("rfe", functools.partial(_rfe, FractionRidgeRFE), _rfe_space),
)
"""The feature preprocessors of regression: the same choices as :data:`PREPROCESSORS`."""
