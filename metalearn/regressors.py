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

import functools
from typing import Any

from ConfigSpace import Categorical, Float, Integer
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
    MLP_MAX_ITER,
    decision_tree_space,
    hist_gradient_boosting_space,
    k_neighbors_space,
    mlp_hidden_layers,
    mlp_space,
)
from metalearn.registry import BuildContext, Component, Params, Registry, When, boolean
from metalearn.target import standardized_target

__all__ = ["REGRESSION_CRITERIA", "REGRESSORS"]

#: the split criteria searched by the tree regressors (the first is scikit-learn's default)
REGRESSION_CRITERIA: tuple[str, ...] = ("squared_error", "friedman_mse")


# --------------------------------------------------------------------------------------------------
# Trees and ensembles
# --------------------------------------------------------------------------------------------------
def _forest_space(p: str, bootstrap_default: bool) -> list[Hyperparameter]:
    # scikit-learn's regression forests default to all features (max_features=1.0).
    return [
        Integer(f"{p}n_estimators", (10, 500), log=True, default=100),
        Categorical(f"{p}criterion", list(REGRESSION_CRITERIA), default=REGRESSION_CRITERIA[0]),
        Categorical(f"{p}max_features", ["fraction", "sqrt", "log2"], default="fraction"),
        Float(f"{p}max_features_fraction", (0.05, 1.0), default=1.0),
        Integer(f"{p}min_samples_split", (2, 20), default=2),
        Integer(f"{p}min_samples_leaf", (1, 20), default=1),
        boolean(f"{p}bootstrap", bootstrap_default),
    ]


def _forest(cls: type, p: Params, ctx: BuildContext) -> Any:
    max_features = p["max_features_fraction"] if p["max_features"] == "fraction" else p["max_features"]
    return cls(
        n_estimators=p["n_estimators"],
        criterion=p["criterion"],
        max_features=max_features,
        min_samples_split=p["min_samples_split"],
        min_samples_leaf=p["min_samples_leaf"],
        bootstrap=p["bootstrap"],
        random_state=ctx.random_state,
        n_jobs=1,
    )


_FOREST_CONDITIONS = {"max_features_fraction": When("max_features", "fraction")}


def _hist_gradient_boosting(p: Params, ctx: BuildContext) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        learning_rate=p["learning_rate"],
        max_iter=p["max_iter"],
        max_leaf_nodes=p["max_leaf_nodes"],
        min_samples_leaf=p["min_samples_leaf"],
        l2_regularization=p["l2_regularization"],
        max_features=p["max_features"],
        early_stopping={"auto": "auto", "on": True, "off": False}[p["early_stopping"]],
        random_state=ctx.random_state,
    )


def _adaboost_space(p: str) -> list[Hyperparameter]:
    # AdaBoostRegressor boosts trees of depth 3 by default.
    return [
        Integer(f"{p}n_estimators", (10, 500), log=True, default=50),
        Float(f"{p}learning_rate", (0.01, 2.0), log=True, default=1.0),
        Categorical(f"{p}loss", ["linear", "square", "exponential"], default="linear"),
        Integer(f"{p}max_depth", (1, 10), default=3),
    ]


def _adaboost(p: Params, ctx: BuildContext) -> AdaBoostRegressor:
    return AdaBoostRegressor(
        estimator=DecisionTreeRegressor(max_depth=p["max_depth"], random_state=ctx.random_state),
        n_estimators=p["n_estimators"],
        learning_rate=p["learning_rate"],
        loss=p["loss"],
        random_state=ctx.random_state,
    )


def _decision_tree(p: Params, ctx: BuildContext) -> DecisionTreeRegressor:
    return DecisionTreeRegressor(
        criterion=p["criterion"],
        max_depth=p["max_depth"] if p["limit_depth"] else None,
        min_samples_split=p["min_samples_split"],
        min_samples_leaf=p["min_samples_leaf"],
        random_state=ctx.random_state,
    )


# --------------------------------------------------------------------------------------------------
# Linear models and SVMs
# --------------------------------------------------------------------------------------------------
def _alpha(p: str) -> Float:
    return Float(f"{p}alpha", (1e-4, 1e4), log=True, default=1.0)


def _ridge_space(p: str) -> list[Hyperparameter]:
    return [_alpha(p)]


def _ridge(p: Params, ctx: BuildContext) -> Ridge:
    return Ridge(alpha=p["alpha"], random_state=ctx.random_state)


def _lasso_space(p: str) -> list[Hyperparameter]:
    return [_alpha(p)]


def _lasso(p: Params, ctx: BuildContext) -> Lasso:
    return Lasso(alpha=p["alpha"], random_state=ctx.random_state)


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


def _svr_rbf_space(p: str) -> list[Hyperparameter]:
    return [
        Float(f"{p}C", (0.03125, 32768.0), log=True, default=1.0),
        Float(f"{p}epsilon", (1e-3, 1.0), log=True, default=0.1),
        Categorical(f"{p}gamma_mode", ["scale", "value"], default="scale"),
        Float(f"{p}gamma", (3.0517578125e-05, 8.0), log=True, default=0.1),
        boolean(f"{p}shrinking", True),
        Float(f"{p}tol", (1e-5, 1e-1), log=True, default=1e-3),
    ]


def _svr_rbf(p: Params, ctx: BuildContext) -> Any:
    svr = SVR(
        C=p["C"],
        epsilon=p["epsilon"],
        kernel="rbf",
        gamma=p["gamma"] if p["gamma_mode"] == "value" else "scale",
        shrinking=p["shrinking"],
        tol=p["tol"],
    )
    return standardized_target(svr)


# --------------------------------------------------------------------------------------------------
# Other families
# --------------------------------------------------------------------------------------------------
def _k_neighbors(p: Params, ctx: BuildContext) -> CappedKNeighborsRegressor:
    return CappedKNeighborsRegressor(n_neighbors=p["n_neighbors"], weights=p["weights"], p=p["p"])


def _mlp(p: Params, ctx: BuildContext) -> Any:
    mlp = MLPRegressor(
        hidden_layer_sizes=mlp_hidden_layers(p),
        activation=p["activation"],
        alpha=p["alpha"],
        learning_rate_init=p["learning_rate_init"],
        early_stopping=p["early_stopping"],
        max_iter=MLP_MAX_ITER,
        random_state=ctx.random_state,
    )
    return standardized_target(mlp)


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
            conditions=_FOREST_CONDITIONS,
        ),
        Component(
            "extra_trees",
            functools.partial(_forest, ExtraTreesRegressor),
            functools.partial(_forest_space, bootstrap_default=False),
            conditions=_FOREST_CONDITIONS,
        ),
        Component("adaboost", _adaboost, _adaboost_space),
        Component(
            "decision_tree",
            _decision_tree,
            functools.partial(decision_tree_space, criteria=REGRESSION_CRITERIA),
            conditions={"max_depth": When("limit_depth", True)},
        ),
        Component("ridge", _ridge, _ridge_space),
        Component("lasso", _lasso, _lasso_space),
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
            _svr_rbf_space,
            conditions={"gamma": When("gamma_mode", "value")},
            # As for svc_rbf: unscaled features, and explicit products a kernel does not need.
            incompatible={"scaling": "none", "feature_preprocessing": "polynomial"},
        ),
        Component(
            "k_neighbors",
            _k_neighbors,
            k_neighbors_space,
            # Distances gain nothing from explicit products but pay for the extra columns.
            incompatible={"feature_preprocessing": "polynomial"},
        ),
        Component(
            "mlp",
            _mlp,
            mlp_space,
            conditions={"layer_2_units": When("n_layers", 1, ">"), "layer_3_units": When("n_layers", 2, ">")},
            # Slow to converge (and rarely good) on unscaled features.
            incompatible={"scaling": "none"},
        ),
        *BOOSTING_REGRESSORS,
    ),
)
"""The regressor families, in the order of the ``regressor`` choices."""
