"""The regressor families of the regression space: one :class:`~metalearn.registry.Component` each.

The regression counterpart of :mod:`metalearn.families`: a family's hyperparameters are named
``<family>:<parameter>`` and are active when ``regressor`` is the family; the order of :data:`REGRESSORS` is the
order of the ``regressor`` choices (changing it means bumping ``SPACE_VERSIONS["regression"]``). Library defaults
are the space's defaults; there is no ``class_weight``.

Scale: the SVRs and the MLP are always fitted on the standardized target
(:func:`metalearn.target.standardized_target`): their ``C``, ``epsilon`` and learning rate assume a unit-scale
target. The other families are scale-free or, for Ridge/Lasso/ElasticNet, keep scikit-learn's own meaning of
``alpha`` (the ``target_transform`` hyperparameter changes the target's scale for every family). Random forests
and trees search the ``squared_error`` and ``friedman_mse`` criteria only (``absolute_error`` is quadratic in
the rows, ``poisson`` needs a non-negative target the space cannot know).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from ConfigSpace import Categorical, Float
from ConfigSpace.hyperparameters import Hyperparameter
from sklearn.ensemble import (
    AdaBoostRegressor,
    ExtraTreesRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, Ridge
from sklearn.neural_network import MLPRegressor
from sklearn.svm import SVR, LinearSVR
from sklearn.tree import DecisionTreeRegressor

from metalearn.boosting import BOOSTING_REGRESSORS
from metalearn.components import CappedKNeighborsRegressor
from metalearn.families import (
    DECISION_TREE_CONDITIONS,
    FAMILIES,
    FOREST_CONDITIONS,
    RBF_SVM_CONDITIONS,
    adaboost_params,
    adaboost_space,
    decision_tree_params,
    decision_tree_space,
    forest_params,
    forest_space,
    hist_gradient_boosting_params,
    hist_gradient_boosting_space,
    k_neighbors_params,
    mlp_params,
    rbf_svm_params,
    rbf_svm_space,
)
from metalearn.registry import BuildContext, Component, Params, Registry
from metalearn.target import standardized_target

__all__ = ["REGRESSION_CRITERIA", "REGRESSORS"]

#: the split criteria searched by the tree regressors (the first is scikit-learn's default)
REGRESSION_CRITERIA: tuple[str, ...] = ("squared_error", "friedman_mse")


# --------------------------------------------------------------------------------------------------
# Trees and ensembles
# --------------------------------------------------------------------------------------------------
def _forest_space(p: str, bootstrap_default: bool) -> list[Hyperparameter]:
    # scikit-learn's regression forests default to all features (max_features=1.0).
    return forest_space(p, bootstrap_default, REGRESSION_CRITERIA, ("fraction", "sqrt", "log2"), fraction_default=1.0)


def _forest(cls: type, p: Params, ctx: BuildContext) -> Any:
    return cls(**forest_params(p, ctx))


def _hist_gradient_boosting(p: Params, ctx: BuildContext) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(**hist_gradient_boosting_params(p, ctx))


def _adaboost_space(p: str) -> list[Hyperparameter]:
    # AdaBoostRegressor boosts trees of depth 3 by default.
    return adaboost_space(p, max_depth_default=3, losses=("linear", "square", "exponential"))


def _adaboost(p: Params, ctx: BuildContext) -> AdaBoostRegressor:
    return AdaBoostRegressor(**adaboost_params(DecisionTreeRegressor, p, ctx), loss=p["loss"])


def _decision_tree(p: Params, ctx: BuildContext) -> DecisionTreeRegressor:
    return DecisionTreeRegressor(**decision_tree_params(p, ctx))


# --------------------------------------------------------------------------------------------------
# Linear models and SVMs
# --------------------------------------------------------------------------------------------------
def _alpha(p: str) -> Float:
    return Float(f"{p}alpha", (1e-4, 1e4), log=True, default=1.0)


def _alpha_space(p: str) -> list[Hyperparameter]:
    return [_alpha(p)]


def _penalised(cls: type, p: Params, ctx: BuildContext) -> Any:
    """Ridge or Lasso (their only hyperparameter is ``alpha``)."""
    return cls(alpha=p["alpha"], random_state=ctx.random_state)


def _elastic_net_space(p: str) -> list[Hyperparameter]:
    return [_alpha(p), Float(f"{p}l1_ratio", (0.01, 1.0), default=0.5)]


def _elastic_net(p: Params, ctx: BuildContext) -> ElasticNet:
    return ElasticNet(alpha=p["alpha"], l1_ratio=p["l1_ratio"], random_state=ctx.random_state)


def _linear_svr_space(p: str) -> list[Hyperparameter]:
    return [
        Float(f"{p}C", (1e-3, 1e3), log=True, default=1.0),
        Categorical(f"{p}loss", ["epsilon_insensitive", "squared_epsilon_insensitive"], default="epsilon_insensitive"),
        Float(f"{p}epsilon", (0.0, 1.0), default=0.0),
        Float(f"{p}tol", (1e-5, 1e-1), log=True, default=1e-4),
    ]


def _linear_svr(p: Params, ctx: BuildContext) -> Any:
    svr = LinearSVR(
        C=p["C"], loss=p["loss"], epsilon=p["epsilon"], tol=p["tol"], dual="auto", random_state=ctx.random_state
    )
    return standardized_target(svr)


def _svr_rbf(p: Params, ctx: BuildContext) -> Any:
    return standardized_target(SVR(**rbf_svm_params(p), epsilon=p["epsilon"]))


# --------------------------------------------------------------------------------------------------
# Other families
# --------------------------------------------------------------------------------------------------
def _k_neighbors(p: Params, ctx: BuildContext) -> CappedKNeighborsRegressor:
    return CappedKNeighborsRegressor(**k_neighbors_params(p))


def _mlp(p: Params, ctx: BuildContext) -> Any:
    return standardized_target(MLPRegressor(**mlp_params(p, ctx)))


# --------------------------------------------------------------------------------------------------
# The registry (its order is the order of the ``regressor`` choices)
# --------------------------------------------------------------------------------------------------
REGRESSORS = Registry(
    name="regressor",
    default="hist_gradient_boosting",
    prefix_format="{}:",
    components=(
        Component("hist_gradient_boosting", _hist_gradient_boosting, hist_gradient_boosting_space),
        Component(
            "random_forest",
            functools.partial(_forest, RandomForestRegressor),
            functools.partial(_forest_space, bootstrap_default=True),
            conditions=FOREST_CONDITIONS,
        ),
        Component(
            "extra_trees",
            functools.partial(_forest, ExtraTreesRegressor),
            functools.partial(_forest_space, bootstrap_default=False),
            conditions=FOREST_CONDITIONS,
        ),
        Component("adaboost", _adaboost, _adaboost_space),
        Component(
            "decision_tree",
            _decision_tree,
            functools.partial(decision_tree_space, criteria=REGRESSION_CRITERIA),
            conditions=DECISION_TREE_CONDITIONS,
        ),
        Component("ridge", functools.partial(_penalised, Ridge), _alpha_space),
        Component("lasso", functools.partial(_penalised, Lasso), _alpha_space),
        Component("elastic_net", _elastic_net, _elastic_net_space),
        Component(
            "linear_svr",
            _linear_svr,
            _linear_svr_space,
            # liblinear converges slowly (and badly) on unscaled features.
            incompatible={"scaling": "none"},
        ),
        Component(
            "svr_rbf",
            _svr_rbf,
            functools.partial(rbf_svm_space, epsilon=True),
            conditions=RBF_SVM_CONDITIONS,
            # As for svc_rbf: unscaled features, and explicit products a kernel does not need.
            incompatible={"scaling": "none", "feature_preprocessing": "polynomial"},
        ),
        # the classifiers' spaces, conditions and incompatibilities, with the regressors' builders
        dataclasses.replace(FAMILIES["k_neighbors"], build=_k_neighbors),
        dataclasses.replace(FAMILIES["mlp"], build=_mlp),
        *BOOSTING_REGRESSORS,
    ),
)
"""The regressor families, in the order of the ``regressor`` choices."""
