"""The classifier families of the search space: one :class:`~metalearn.registry.Component` each.

(The regressor families are in :mod:`metalearn.regressors`. Where a family exists for both tasks, its space,
conditions and the keyword arguments of its estimator are defined once here -- ``<family>_space``,
``<FAMILY>_CONDITIONS``, ``<family>_params`` -- and the two builders add only what differs, e.g.
``class_weight``.)

A family's hyperparameters are named ``<family>:<parameter>`` and are active when ``classifier`` is the
family (or below another parameter, see ``conditions``). To add a family, write its ``_<family>_space``
and ``_<family>`` builder and append a ``Component`` to :data:`FAMILIES`; the order of the entries is the
order of the ``classifier`` choices (changing the space means bumping ``SPACE_VERSION``).

Estimators get ``n_jobs=1``; HistGradientBoosting (OpenMP) and BLAS-backed steps cannot be limited
through parameters, so trial runners fit inside ``threadpoolctl.threadpool_limits(1)``.
"""

from __future__ import annotations

import functools
from typing import Any

from ConfigSpace import Categorical, Float, Integer
from ConfigSpace.hyperparameters import Hyperparameter
from sklearn.calibration import CalibratedClassifierCV
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier, HistGradientBoostingClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from metalearn.boosting import BOOSTING_FAMILIES
from metalearn.calibration import RareClassFolds
from metalearn.components import (
    CappedKNeighborsClassifier,
    LabelSafeExtraTreesClassifier,
    LabelSafeRandomForestClassifier,
    logistic_regression,
)
from metalearn.registry import BuildContext, Component, Params, Registry, When, boolean

__all__ = [
    "CALIBRATION_CV",
    "DECISION_TREE_CONDITIONS",
    "FAMILIES",
    "FOREST_CONDITIONS",
    "MLP_MAX_ITER",
    "RBF_SVM_CONDITIONS",
    "adaboost_params",
    "adaboost_space",
    "calibrated",
    "decision_tree_params",
    "decision_tree_space",
    "forest_params",
    "forest_space",
    "hist_gradient_boosting_params",
    "hist_gradient_boosting_space",
    "k_neighbors_params",
    "k_neighbors_space",
    "mlp_hidden_layers",
    "mlp_params",
    "mlp_space",
    "rbf_svm_params",
    "rbf_svm_space",
]

CALIBRATION_CV = 3
MLP_MAX_ITER = 200


def calibrated(svm: Any) -> CalibratedClassifierCV:
    """Sigmoid calibration on ``CALIBRATION_CV`` folds (fewer for a rarer class), giving SVMs a ``predict_proba``.

    ``ensemble=True`` fits one SVM per fold on 2/3 of the rows: for libsvm (superlinear in n) this is
    cheaper than ``SVC(probability=True)`` (internal 5-fold CV plus a full fit, deprecated in
    scikit-learn 1.9) or ``ensemble=False`` (CV fits plus a full fit).
    """
    return CalibratedClassifierCV(svm, method="sigmoid", cv=RareClassFolds(CALIBRATION_CV), ensemble=True, n_jobs=1)


# --------------------------------------------------------------------------------------------------
# Trees and ensembles (the public helpers serve the regressors of metalearn.regressors too)
# --------------------------------------------------------------------------------------------------
def forest_space(
    p: str,
    bootstrap_default: bool,
    criteria: tuple[str, ...] = ("gini", "entropy"),
    max_features: tuple[str, ...] = ("sqrt", "log2", "fraction"),
    fraction_default: float = 0.5,
) -> list[Hyperparameter]:
    """A random forest's or extra-trees' hyperparameters; the first of ``criteria`` and of ``max_features`` are
    the defaults, ``fraction_default`` the default of ``max_features_fraction`` (used when it is ``fraction``)."""
    return [
        Integer(f"{p}n_estimators", (10, 500), log=True, default=100),
        Categorical(f"{p}criterion", list(criteria), default=criteria[0]),
        Categorical(f"{p}max_features", list(max_features), default=max_features[0]),
        Float(f"{p}max_features_fraction", (0.05, 1.0), default=fraction_default),
        Integer(f"{p}min_samples_split", (2, 20), default=2),
        Integer(f"{p}min_samples_leaf", (1, 20), default=1),
        boolean(f"{p}bootstrap", bootstrap_default),
    ]


#: criteria the space keeps for the meaning of stored configurations, built as their scikit-learn equivalent:
#: ``friedman_mse`` is deprecated since scikit-learn 1.9 (removed in 1.11) as an alias of ``squared_error``
CRITERION_ALIASES = {"friedman_mse": "squared_error"}


def criterion(p: Params) -> str:
    """The estimator's ``criterion`` for the configuration's (aliases resolved, see :data:`CRITERION_ALIASES`)."""
    return CRITERION_ALIASES.get(p["criterion"], p["criterion"])


def forest_params(p: Params, ctx: BuildContext) -> dict[str, Any]:
    """The keyword arguments of a forest classifier or regressor (all but ``class_weight``)."""
    max_features = p["max_features_fraction"] if p["max_features"] == "fraction" else p["max_features"]
    return dict(
        n_estimators=p["n_estimators"],
        criterion=criterion(p),
        max_features=max_features,
        min_samples_split=p["min_samples_split"],
        min_samples_leaf=p["min_samples_leaf"],
        bootstrap=p["bootstrap"],
        random_state=ctx.random_state,
        n_jobs=1,
    )


def _forest(cls: type, p: Params, ctx: BuildContext) -> Any:
    return cls(**forest_params(p, ctx), class_weight=ctx.class_weight)


FOREST_CONDITIONS = {"max_features_fraction": When("max_features", "fraction")}


def hist_gradient_boosting_space(p: str) -> list[Hyperparameter]:
    return [
        Float(f"{p}learning_rate", (0.01, 1.0), log=True, default=0.1),
        Integer(f"{p}max_iter", (10, 500), log=True, default=100),
        Integer(f"{p}max_leaf_nodes", (4, 256), log=True, default=31),
        Integer(f"{p}min_samples_leaf", (1, 200), log=True, default=20),
        Float(f"{p}l2_regularization", (1e-10, 10.0), log=True, default=1e-10),
        Float(f"{p}max_features", (0.1, 1.0), default=1.0),
        Categorical(f"{p}early_stopping", ["auto", "on", "off"], default="auto"),
    ]


def hist_gradient_boosting_params(p: Params, ctx: BuildContext) -> dict[str, Any]:
    """The keyword arguments of a HistGradientBoosting classifier or regressor (all but ``class_weight``)."""
    return dict(
        learning_rate=p["learning_rate"],
        max_iter=p["max_iter"],
        max_leaf_nodes=p["max_leaf_nodes"],
        min_samples_leaf=p["min_samples_leaf"],
        l2_regularization=p["l2_regularization"],
        max_features=p["max_features"],
        early_stopping={"auto": "auto", "on": True, "off": False}[p["early_stopping"]],
        random_state=ctx.random_state,
    )


def _hist_gradient_boosting(p: Params, ctx: BuildContext) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(**hist_gradient_boosting_params(p, ctx), class_weight=ctx.class_weight)


def adaboost_space(p: str, max_depth_default: int = 1, losses: tuple[str, ...] = ()) -> list[Hyperparameter]:
    """AdaBoost's hyperparameters: boosted trees of ``max_depth`` (default ``max_depth_default``) and, with
    ``losses`` (regression), a ``loss`` choice whose first entry is the default."""
    loss = [Categorical(f"{p}loss", list(losses), default=losses[0])] if losses else []
    return [
        Integer(f"{p}n_estimators", (10, 500), log=True, default=50),
        Float(f"{p}learning_rate", (0.01, 2.0), log=True, default=1.0),
        *loss,
        Integer(f"{p}max_depth", (1, 10), default=max_depth_default),
    ]


def adaboost_params(tree: type, p: Params, ctx: BuildContext) -> dict[str, Any]:
    """The keyword arguments of an AdaBoost classifier or regressor boosting ``tree`` (all but ``loss``)."""
    return dict(
        estimator=tree(max_depth=p["max_depth"], random_state=ctx.random_state),
        n_estimators=p["n_estimators"],
        learning_rate=p["learning_rate"],
        random_state=ctx.random_state,
    )


def _adaboost(p: Params, ctx: BuildContext) -> AdaBoostClassifier:
    return AdaBoostClassifier(**adaboost_params(DecisionTreeClassifier, p, ctx))


def decision_tree_space(p: str, criteria: tuple[str, ...] = ("gini", "entropy")) -> list[Hyperparameter]:
    """A decision tree's hyperparameters (the first of ``criteria`` is the default criterion)."""
    return [
        Categorical(f"{p}criterion", list(criteria), default=criteria[0]),
        boolean(f"{p}limit_depth", False),
        Integer(f"{p}max_depth", (1, 30), log=True, default=10),
        Integer(f"{p}min_samples_split", (2, 20), default=2),
        Integer(f"{p}min_samples_leaf", (1, 20), default=1),
    ]


def decision_tree_params(p: Params, ctx: BuildContext) -> dict[str, Any]:
    """The keyword arguments of a decision tree classifier or regressor (all but ``class_weight``)."""
    return dict(
        criterion=criterion(p),
        max_depth=p["max_depth"] if p["limit_depth"] else None,
        min_samples_split=p["min_samples_split"],
        min_samples_leaf=p["min_samples_leaf"],
        random_state=ctx.random_state,
    )


def _decision_tree(p: Params, ctx: BuildContext) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(**decision_tree_params(p, ctx), class_weight=ctx.class_weight)


DECISION_TREE_CONDITIONS = {"max_depth": When("limit_depth", True)}


# --------------------------------------------------------------------------------------------------
# Linear models and SVMs
# --------------------------------------------------------------------------------------------------
def _logistic_regression_space(p: str) -> list[Hyperparameter]:
    return [
        Float(f"{p}C", (1e-4, 1e4), log=True, default=1.0),
        Categorical(f"{p}penalty", ["l2", "l1", "elasticnet"], default="l2"),
        Float(f"{p}l1_ratio", (0.01, 0.99), default=0.5),
        Categorical(f"{p}solver", ["lbfgs", "saga"], default="lbfgs"),
    ]


def _logistic_regression(p: Params, ctx: BuildContext) -> Any:
    penalty = p["penalty"]
    ratio = {"l2": 0.0, "l1": 1.0}[penalty] if penalty != "elasticnet" else p["l1_ratio"]
    return logistic_regression(
        C=p["C"], l1_ratio=ratio, solver=p["solver"], class_weight=ctx.class_weight, random_state=ctx.random_state
    )


def _sgd_space(p: str) -> list[Hyperparameter]:
    return [
        Categorical(f"{p}loss", ["log_loss", "modified_huber"], default="log_loss"),
        Categorical(f"{p}penalty", ["l2", "l1", "elasticnet"], default="l2"),
        Float(f"{p}alpha", (1e-7, 1e-1), log=True, default=1e-4),
        Float(f"{p}l1_ratio", (0.0, 1.0), default=0.15),
        boolean(f"{p}average", False),
    ]


def _sgd(p: Params, ctx: BuildContext) -> SGDClassifier:
    return SGDClassifier(
        loss=p["loss"],
        penalty=p["penalty"],
        alpha=p["alpha"],
        l1_ratio=p.get("l1_ratio", 0.15),
        average=p["average"],
        class_weight=ctx.class_weight,
        random_state=ctx.random_state,
        n_jobs=1,
    )


def _linear_svc_space(p: str) -> list[Hyperparameter]:
    return [
        Float(f"{p}C", (1e-3, 1e3), log=True, default=1.0),
        Categorical(f"{p}loss", ["squared_hinge", "hinge"], default="squared_hinge"),
        Categorical(f"{p}penalty", ["l2", "l1"], default="l2"),
        Float(f"{p}tol", (1e-5, 1e-1), log=True, default=1e-4),
    ]


def _linear_svc(p: Params, ctx: BuildContext) -> CalibratedClassifierCV:
    svm = LinearSVC(
        C=p["C"],
        loss=p["loss"],
        penalty=p["penalty"],
        tol=p["tol"],
        dual="auto",
        class_weight=ctx.class_weight,
        random_state=ctx.random_state,
    )
    return calibrated(svm)


def rbf_svm_space(p: str, epsilon: bool = False) -> list[Hyperparameter]:
    """An RBF-kernel SVM's hyperparameters; with ``epsilon`` (the regressor) its ``epsilon`` tube too."""
    tube = [Float(f"{p}epsilon", (1e-3, 1.0), log=True, default=0.1)] if epsilon else []
    return [
        Float(f"{p}C", (0.03125, 32768.0), log=True, default=1.0),
        *tube,
        Categorical(f"{p}gamma_mode", ["scale", "value"], default="scale"),
        Float(f"{p}gamma", (3.0517578125e-05, 8.0), log=True, default=0.1),
        boolean(f"{p}shrinking", True),
        Float(f"{p}tol", (1e-5, 1e-1), log=True, default=1e-3),
    ]


def rbf_svm_params(p: Params) -> dict[str, Any]:
    """The keyword arguments an RBF-kernel ``SVC`` and ``SVR`` share."""
    return dict(
        C=p["C"],
        kernel="rbf",
        gamma=p["gamma"] if p["gamma_mode"] == "value" else "scale",
        shrinking=p["shrinking"],
        tol=p["tol"],
    )


RBF_SVM_CONDITIONS = {"gamma": When("gamma_mode", "value")}


def _svc_rbf(p: Params, ctx: BuildContext) -> CalibratedClassifierCV:
    return calibrated(SVC(**rbf_svm_params(p), class_weight=ctx.class_weight, random_state=ctx.random_state))


# --------------------------------------------------------------------------------------------------
# Other families
# --------------------------------------------------------------------------------------------------
def k_neighbors_space(p: str) -> list[Hyperparameter]:
    return [
        Integer(f"{p}n_neighbors", (1, 50), log=True, default=5),
        Categorical(f"{p}weights", ["uniform", "distance"], default="uniform"),
        Categorical(f"{p}p", [1, 2], default=2),
    ]


def k_neighbors_params(p: Params) -> dict[str, Any]:
    """The keyword arguments of a k-nearest-neighbours classifier or regressor."""
    return dict(n_neighbors=p["n_neighbors"], weights=p["weights"], p=p["p"])


def _k_neighbors(p: Params, ctx: BuildContext) -> CappedKNeighborsClassifier:
    return CappedKNeighborsClassifier(**k_neighbors_params(p))


def mlp_space(p: str) -> list[Hyperparameter]:
    return [
        Integer(f"{p}n_layers", (1, 3), default=1),
        Integer(f"{p}layer_1_units", (16, 256), log=True, default=100),
        Integer(f"{p}layer_2_units", (16, 256), log=True, default=100),
        Integer(f"{p}layer_3_units", (16, 256), log=True, default=100),
        Categorical(f"{p}activation", ["relu", "tanh", "logistic"], default="relu"),
        Float(f"{p}alpha", (1e-7, 1e-1), log=True, default=1e-4),
        Float(f"{p}learning_rate_init", (1e-4, 1e-1), log=True, default=1e-3),
        boolean(f"{p}early_stopping", False),
    ]


def mlp_hidden_layers(p: Params) -> tuple[int, ...]:
    """The ``hidden_layer_sizes`` of an MLP configuration (``n_layers`` widths)."""
    return tuple(p[f"layer_{i}_units"] for i in range(1, p["n_layers"] + 1))


def mlp_params(p: Params, ctx: BuildContext) -> dict[str, Any]:
    """The keyword arguments of an MLP classifier or regressor."""
    return dict(
        hidden_layer_sizes=mlp_hidden_layers(p),
        activation=p["activation"],
        alpha=p["alpha"],
        learning_rate_init=p["learning_rate_init"],
        early_stopping=p["early_stopping"],
        max_iter=MLP_MAX_ITER,
        random_state=ctx.random_state,
    )


def _mlp(p: Params, ctx: BuildContext) -> MLPClassifier:
    return MLPClassifier(**mlp_params(p, ctx))


def _gaussian_nb_space(p: str) -> list[Hyperparameter]:
    return [Float(f"{p}var_smoothing", (1e-12, 1e-2), log=True, default=1e-9)]


def _gaussian_nb(p: Params, ctx: BuildContext) -> GaussianNB:
    return GaussianNB(var_smoothing=p["var_smoothing"])


def _lda_space(p: str) -> list[Hyperparameter]:
    return [
        Categorical(f"{p}solver", ["svd", "lsqr"], default="svd"),
        Categorical(f"{p}shrinkage", ["none", "auto", "manual"], default="none"),
        Float(f"{p}shrinkage_factor", (0.0, 1.0), default=0.5),
    ]


def _lda(p: Params, ctx: BuildContext) -> LinearDiscriminantAnalysis:
    shrinkage: Any = None
    if p["solver"] == "lsqr" and p["shrinkage"] != "none":
        shrinkage = "auto" if p["shrinkage"] == "auto" else p["shrinkage_factor"]
    return LinearDiscriminantAnalysis(solver=p["solver"], shrinkage=shrinkage)


# --------------------------------------------------------------------------------------------------
# The registry (its order is the order of the ``classifier`` choices)
# --------------------------------------------------------------------------------------------------
FAMILIES = Registry(
    name="classifier",
    default="random_forest",
    prefix_format="{}:",
    components=(
        Component(
            "random_forest",
            functools.partial(_forest, LabelSafeRandomForestClassifier),
            functools.partial(forest_space, bootstrap_default=True),
            conditions=FOREST_CONDITIONS,
            class_weight=True,
        ),
        Component(
            "extra_trees",
            functools.partial(_forest, LabelSafeExtraTreesClassifier),
            functools.partial(forest_space, bootstrap_default=False),
            conditions=FOREST_CONDITIONS,
            class_weight=True,
        ),
        Component("hist_gradient_boosting", _hist_gradient_boosting, hist_gradient_boosting_space, class_weight=True),
        Component("adaboost", _adaboost, adaboost_space),
        Component(
            "decision_tree",
            _decision_tree,
            decision_tree_space,
            conditions=DECISION_TREE_CONDITIONS,
            class_weight=True,
        ),
        Component(
            "logistic_regression",
            _logistic_regression,
            _logistic_regression_space,
            conditions={"l1_ratio": When("penalty", "elasticnet")},
            # lbfgs only supports the L2 penalty.
            forbidden=({"logistic_regression:solver": "lbfgs", "logistic_regression:penalty": ("l1", "elasticnet")},),
            class_weight=True,
        ),
        Component("sgd", _sgd, _sgd_space, conditions={"l1_ratio": When("penalty", "elasticnet")}, class_weight=True),
        Component(
            "linear_svc",
            _linear_svc,
            _linear_svc_space,
            # liblinear does not implement L1 penalty with the hinge loss.
            forbidden=({"linear_svc:penalty": "l1", "linear_svc:loss": "hinge"},),
            class_weight=True,
        ),
        Component(
            "svc_rbf",
            _svc_rbf,
            rbf_svm_space,
            conditions=RBF_SVM_CONDITIONS,
            # Slow to converge (and rarely good) on unscaled features; a kernel gains nothing from explicit
            # products but pays for the extra columns.
            incompatible={"scaling": "none", "feature_preprocessing": "polynomial"},
            class_weight=True,
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
            # Layer widths beyond the first are active only when there are that many layers.
            conditions={"layer_2_units": When("n_layers", 1, ">"), "layer_3_units": When("n_layers", 2, ">")},
            # Slow to converge (and rarely good) on unscaled features.
            incompatible={"scaling": "none"},
        ),
        Component("gaussian_nb", _gaussian_nb, _gaussian_nb_space),
        Component(
            "lda",
            _lda,
            _lda_space,
            conditions={"shrinkage": When("solver", "lsqr"), "shrinkage_factor": When("shrinkage", "manual")},
        ),
        *BOOSTING_FAMILIES,
    ),
)
"""The classifier families, in the order of the ``classifier`` choices."""
