"""The one search space of metalearn: ConfigSpace hyperparameters <-> scikit-learn pipelines.

Every dataset is searched in the same :class:`ConfigurationSpace` (see :func:`build_space`), so
configurations from past runs in the knowledge base can be replayed on new datasets. A configuration
describes a whole pipeline::

    ColumnTransformer(numeric: imputer -> scaler, categorical: imputer -> encoder)
        -> feature preprocessing -> classifier

Hyperparameter names are ``<component>`` for a choice and ``<component>:<choice>:<parameter>`` (or
``<classifier>:<parameter>``) for the parameters of that choice. Invalid combinations are removed by
conditions and forbidden clauses of the space, never by catching errors at fit time.

Data-dependent safeguards (the space cannot know the data) are applied in :func:`build_pipeline`:

* polynomial features are only expanded when the transformed input has at most
  ``POLYNOMIAL_MAX_INPUT_FEATURES`` columns (replaced by ``"passthrough"`` when the caller already
  knows ``n_features`` is larger, and checked again at fit time on the encoded feature count);
* one-hot encoding keeps at most ``ONE_HOT_MAX_CATEGORIES`` columns per categorical feature;
* KNN imputation uses at most ``KNN_IMPUTER_MAX_REFERENCE_ROWS`` training rows as neighbours;
* feature selectors (L1, percentile, RFE) always keep at least one feature;
* k-nearest-neighbours uses ``min(n_neighbors, n_training_rows)`` neighbours.

Estimators get ``n_jobs=1``; HistGradientBoosting (OpenMP) and BLAS-backed steps cannot be limited
through parameters, so trial runners should fit inside ``threadpoolctl.threadpool_limits(1)``.

``SPACE_VERSION`` must be bumped whenever the space (names, ranges, defaults, conditions, forbidden
clauses) or the mapping to scikit-learn changes; it is stored next to every configuration.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from ConfigSpace import (
    Categorical,
    Configuration,
    ConfigurationSpace,
    EqualsCondition,
    Float,
    ForbiddenAndConjunction,
    ForbiddenEqualsClause,
    ForbiddenInClause,
    GreaterThanCondition,
    InCondition,
    Integer,
)
from ConfigSpace.exceptions import (
    ActiveHyperparameterNotSetError,
    ForbiddenValueError,
    IllegalValueError,
    InactiveHyperparameterSetError,
)
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    FloatHyperparameter,
    Hyperparameter,
    IntegerHyperparameter,
)
from ConfigSpace.types import NotSet
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import (
    AdaBoostClassifier,
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.feature_selection import RFE, SelectFromModel, SelectPercentile, f_classif, mutual_info_classif
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from metalearn.errors import MetalearnError

__all__ = [
    "ALGORITHMS",
    "SPACE_VERSION",
    "algorithm_of",
    "build_pipeline",
    "build_space",
    "canonical_config",
    "config_from_dict",
    "default_configuration",
]

SPACE_VERSION: str = "2026.11-1"
"""Version of the search space; bump on any change of names, ranges, defaults, conditions or mapping."""

ALGORITHMS: tuple[str, ...] = (
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "adaboost",
    "decision_tree",
    "logistic_regression",
    "sgd",
    "linear_svc",
    "svc_rbf",
    "k_neighbors",
    "mlp",
    "gaussian_nb",
    "lda",
)
DEFAULT_ALGORITHM = "random_forest"

NUMERIC_IMPUTERS = ("mean", "median", "most_frequent", "knn")
CATEGORICAL_IMPUTERS = ("most_frequent", "constant")
ENCODERS = ("one_hot", "ordinal")
SCALERS = ("none", "standard", "robust", "minmax", "quantile")
FEATURE_PREPROCESSORS = ("none", "pca", "select_percentile", "l1_selection", "rfe", "polynomial")
#: Classifiers with a ``class_weight`` parameter; ``class_weight`` is only active for these.
CLASS_WEIGHT_ALGORITHMS = (
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "decision_tree",
    "logistic_regression",
    "sgd",
    "linear_svc",
    "svc_rbf",
)

POLYNOMIAL_MAX_INPUT_FEATURES = 20
ONE_HOT_MAX_CATEGORIES = 32
KNN_IMPUTER_MAX_REFERENCE_ROWS = 2000
CALIBRATION_CV = 3
MLP_MAX_ITER = 200
MISSING_CATEGORY = "__missing__"

_SKLEARN_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2] if part.isdigit())


# --------------------------------------------------------------------------------------------------
# The space
# --------------------------------------------------------------------------------------------------
def _bool(name: str, default: bool) -> CategoricalHyperparameter:
    return Categorical(name, [False, True], default=default)


def _forest_hyperparameters(prefix: str, bootstrap_default: bool) -> list[Hyperparameter]:
    return [
        Integer(f"{prefix}:n_estimators", (10, 500), log=True, default=100),
        Categorical(f"{prefix}:criterion", ["gini", "entropy"], default="gini"),
        Categorical(f"{prefix}:max_features", ["sqrt", "log2", "fraction"], default="sqrt"),
        Float(f"{prefix}:max_features_fraction", (0.05, 1.0), default=0.5),
        Integer(f"{prefix}:min_samples_split", (2, 20), default=2),
        Integer(f"{prefix}:min_samples_leaf", (1, 20), default=1),
        _bool(f"{prefix}:bootstrap", bootstrap_default),
    ]


def build_space(seed: int | None = None) -> ConfigurationSpace:
    """Build the search space (identical for every dataset); ``seed`` seeds its sampler."""
    cs = ConfigurationSpace(name=f"metalearn-{SPACE_VERSION}", seed=seed)

    # ---------------------------------------------------------------- data preprocessing
    num_imp = Categorical("imputation:numeric", NUMERIC_IMPUTERS, default="median")
    knn_k = Integer("imputation:knn:n_neighbors", (1, 20), log=True, default=5)
    cat_imp = Categorical("imputation:categorical", CATEGORICAL_IMPUTERS, default="constant")
    encoding = Categorical("encoding", ENCODERS, default="one_hot")
    min_freq = Float("encoding:one_hot:min_frequency", (0.001, 0.1), log=True, default=0.01)
    scaling = Categorical("scaling", SCALERS, default="standard")
    n_quantiles = Integer("scaling:quantile:n_quantiles", (10, 2000), log=True, default=1000)
    q_output = Categorical("scaling:quantile:output_distribution", ["uniform", "normal"], default="uniform")
    cs.add(
        [num_imp, knn_k, cat_imp, encoding, min_freq, scaling, n_quantiles, q_output],
        EqualsCondition(knn_k, num_imp, "knn"),
        EqualsCondition(min_freq, encoding, "one_hot"),
        EqualsCondition(n_quantiles, scaling, "quantile"),
        EqualsCondition(q_output, scaling, "quantile"),
    )

    # ---------------------------------------------------------------- feature preprocessing
    fp = Categorical("feature_preprocessing", FEATURE_PREPROCESSORS, default="none")
    fp_hps: dict[str, list[Hyperparameter]] = {
        "pca": [
            Float("feature_preprocessing:pca:keep_variance", (0.5, 0.9999), default=0.95),
            _bool("feature_preprocessing:pca:whiten", False),
        ],
        "select_percentile": [
            Categorical(
                "feature_preprocessing:select_percentile:score_func",
                ["f_classif", "mutual_info"],
                default="f_classif",
            ),
            Float("feature_preprocessing:select_percentile:percentile", (5.0, 95.0), default=50.0),
        ],
        "l1_selection": [
            Categorical(
                "feature_preprocessing:l1_selection:solver", ["liblinear", "saga"], default="liblinear"
            ),
            Float("feature_preprocessing:l1_selection:C", (0.01, 100.0), log=True, default=1.0),
        ],
        "rfe": [
            Float("feature_preprocessing:rfe:n_features_fraction", (0.1, 0.9), default=0.5),
            Float("feature_preprocessing:rfe:step", (0.05, 0.5), default=0.1),
        ],
        "polynomial": [_bool("feature_preprocessing:polynomial:interaction_only", False)],
    }
    cs.add(fp)
    for choice, hps in fp_hps.items():
        cs.add(hps, [EqualsCondition(hp, fp, choice) for hp in hps])

    # ---------------------------------------------------------------- classifiers
    clf = Categorical("classifier", ALGORITHMS, default=DEFAULT_ALGORITHM)
    class_weight = Categorical("class_weight", ["none", "balanced"], default="none")
    cs.add(clf, class_weight, InCondition(class_weight, clf, list(CLASS_WEIGHT_ALGORITHMS)))

    algo_hps: dict[str, list[Hyperparameter]] = {
        "random_forest": _forest_hyperparameters("random_forest", bootstrap_default=True),
        "extra_trees": _forest_hyperparameters("extra_trees", bootstrap_default=False),
        "hist_gradient_boosting": [
            Float("hist_gradient_boosting:learning_rate", (0.01, 1.0), log=True, default=0.1),
            Integer("hist_gradient_boosting:max_iter", (10, 500), log=True, default=100),
            Integer("hist_gradient_boosting:max_leaf_nodes", (4, 256), log=True, default=31),
            Integer("hist_gradient_boosting:min_samples_leaf", (1, 200), log=True, default=20),
            Float("hist_gradient_boosting:l2_regularization", (1e-10, 10.0), log=True, default=1e-10),
            Float("hist_gradient_boosting:max_features", (0.1, 1.0), default=1.0),
            Categorical("hist_gradient_boosting:early_stopping", ["auto", "on", "off"], default="auto"),
        ],
        "adaboost": [
            Integer("adaboost:n_estimators", (10, 500), log=True, default=50),
            Float("adaboost:learning_rate", (0.01, 2.0), log=True, default=1.0),
            Integer("adaboost:max_depth", (1, 10), default=1),
        ],
        "decision_tree": [
            Categorical("decision_tree:criterion", ["gini", "entropy"], default="gini"),
            _bool("decision_tree:limit_depth", False),
            Integer("decision_tree:max_depth", (1, 30), log=True, default=10),
            Integer("decision_tree:min_samples_split", (2, 20), default=2),
            Integer("decision_tree:min_samples_leaf", (1, 20), default=1),
        ],
        "logistic_regression": [
            Float("logistic_regression:C", (1e-4, 1e4), log=True, default=1.0),
            Categorical("logistic_regression:penalty", ["l2", "l1", "elasticnet"], default="l2"),
            Float("logistic_regression:l1_ratio", (0.01, 0.99), default=0.5),
            Categorical("logistic_regression:solver", ["lbfgs", "saga"], default="lbfgs"),
        ],
        "sgd": [
            Categorical("sgd:loss", ["log_loss", "modified_huber"], default="log_loss"),
            Categorical("sgd:penalty", ["l2", "l1", "elasticnet"], default="l2"),
            Float("sgd:alpha", (1e-7, 1e-1), log=True, default=1e-4),
            Float("sgd:l1_ratio", (0.0, 1.0), default=0.15),
            _bool("sgd:average", False),
        ],
        "linear_svc": [
            Float("linear_svc:C", (1e-3, 1e3), log=True, default=1.0),
            Categorical("linear_svc:loss", ["squared_hinge", "hinge"], default="squared_hinge"),
            Categorical("linear_svc:penalty", ["l2", "l1"], default="l2"),
            Float("linear_svc:tol", (1e-5, 1e-1), log=True, default=1e-4),
        ],
        "svc_rbf": [
            Float("svc_rbf:C", (0.03125, 32768.0), log=True, default=1.0),
            Categorical("svc_rbf:gamma_mode", ["scale", "value"], default="scale"),
            Float("svc_rbf:gamma", (3.0517578125e-05, 8.0), log=True, default=0.1),
            _bool("svc_rbf:shrinking", True),
            Float("svc_rbf:tol", (1e-5, 1e-1), log=True, default=1e-3),
        ],
        "k_neighbors": [
            Integer("k_neighbors:n_neighbors", (1, 50), log=True, default=5),
            Categorical("k_neighbors:weights", ["uniform", "distance"], default="uniform"),
            Categorical("k_neighbors:p", [1, 2], default=2),
        ],
        "mlp": [
            Integer("mlp:n_layers", (1, 3), default=1),
            Integer("mlp:layer_1_units", (16, 256), log=True, default=100),
            Integer("mlp:layer_2_units", (16, 256), log=True, default=100),
            Integer("mlp:layer_3_units", (16, 256), log=True, default=100),
            Categorical("mlp:activation", ["relu", "tanh", "logistic"], default="relu"),
            Float("mlp:alpha", (1e-7, 1e-1), log=True, default=1e-4),
            Float("mlp:learning_rate_init", (1e-4, 1e-1), log=True, default=1e-3),
            _bool("mlp:early_stopping", False),
        ],
        "gaussian_nb": [Float("gaussian_nb:var_smoothing", (1e-12, 1e-2), log=True, default=1e-9)],
        "lda": [
            Categorical("lda:solver", ["svd", "lsqr"], default="svd"),
            Categorical("lda:shrinkage", ["none", "auto", "manual"], default="none"),
            Float("lda:shrinkage_factor", (0.0, 1.0), default=0.5),
        ],
    }
    # Hyperparameters that hang below another hyperparameter of the same classifier.
    nested = {
        "random_forest:max_features_fraction": ("random_forest:max_features", "fraction"),
        "extra_trees:max_features_fraction": ("extra_trees:max_features", "fraction"),
        "decision_tree:max_depth": ("decision_tree:limit_depth", True),
        "logistic_regression:l1_ratio": ("logistic_regression:penalty", "elasticnet"),
        "sgd:l1_ratio": ("sgd:penalty", "elasticnet"),
        "svc_rbf:gamma": ("svc_rbf:gamma_mode", "value"),
        "lda:shrinkage": ("lda:solver", "lsqr"),
        "lda:shrinkage_factor": ("lda:shrinkage", "manual"),
    }
    # MLP layer widths beyond the first are active only when there are that many layers.
    deeper = {"mlp:layer_2_units": ("mlp:n_layers", 1), "mlp:layer_3_units": ("mlp:n_layers", 2)}
    for algorithm in ALGORITHMS:
        hps = algo_hps[algorithm]
        cs.add(hps)
        by_name = {hp.name: hp for hp in hps}
        for hp in hps:
            if hp.name in deeper:
                parent, layers = deeper[hp.name]
                cs.add(GreaterThanCondition(hp, by_name[parent], layers))
            elif hp.name in nested:
                parent, value = nested[hp.name]
                cs.add(EqualsCondition(hp, by_name[parent], value))
            else:
                cs.add(EqualsCondition(hp, clf, algorithm))

    # ---------------------------------------------------------------- forbidden combinations
    cs.add(
        # lbfgs only supports the L2 penalty.
        ForbiddenAndConjunction(
            ForbiddenEqualsClause(cs["logistic_regression:solver"], "lbfgs"),
            ForbiddenInClause(cs["logistic_regression:penalty"], ["l1", "elasticnet"]),
        ),
        # liblinear does not implement L1 penalty with the hinge loss.
        ForbiddenAndConjunction(
            ForbiddenEqualsClause(cs["linear_svc:penalty"], "l1"),
            ForbiddenEqualsClause(cs["linear_svc:loss"], "hinge"),
        ),
        # RBF-SVMs and MLPs on unscaled features are slow to converge (and rarely good).
        ForbiddenAndConjunction(
            ForbiddenEqualsClause(scaling, "none"),
            ForbiddenInClause(clf, ["svc_rbf", "mlp"]),
        ),
        # Squares/products of unscaled features are numerically badly conditioned.
        ForbiddenAndConjunction(
            ForbiddenEqualsClause(scaling, "none"),
            ForbiddenEqualsClause(fp, "polynomial"),
        ),
        # Distance/kernel methods gain nothing from explicit products but pay for the extra columns.
        ForbiddenAndConjunction(
            ForbiddenEqualsClause(fp, "polynomial"),
            ForbiddenInClause(clf, ["svc_rbf", "k_neighbors"]),
        ),
        # saga (L1 feature selection) does not converge in reasonable time on unscaled features.
        ForbiddenAndConjunction(
            ForbiddenEqualsClause(scaling, "none"),
            ForbiddenEqualsClause(cs["feature_preprocessing:l1_selection:solver"], "saga"),
        ),
    )
    return cs


@functools.lru_cache(maxsize=1)
def _reference_space() -> ConfigurationSpace:
    """A shared space for validation only (never sampled from, so its RNG state does not matter)."""
    return build_space(seed=0)


# --------------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------------
def algorithm_of(config: Mapping[str, Any]) -> str:
    """The classifier family of a configuration, e.g. ``"random_forest"``."""
    try:
        algorithm = config["classifier"]
    except KeyError:
        raise MetalearnError("configuration has no 'classifier' hyperparameter") from None
    return str(algorithm)


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _coerce(hp: Hyperparameter, value: Any) -> Any:
    """Convert a JSON-ish value to the python type the hyperparameter expects (strict on kinds)."""
    value = _native(value)
    name = hp.name
    if isinstance(hp, IntegerHyperparameter):
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral:
            raise MetalearnError(f"hyperparameter {name!r} must be an integer, got {value!r}")
        return int(value)
    if isinstance(hp, FloatHyperparameter):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MetalearnError(f"hyperparameter {name!r} must be a number, got {value!r}")
        return float(value)
    if isinstance(hp, CategoricalHyperparameter):
        for choice in hp.choices:
            native = _native(choice)
            if type(native) is type(value) and native == value:
                return native
        choices = ", ".join(repr(_native(c)) for c in hp.choices)
        raise MetalearnError(f"hyperparameter {name!r} must be one of {choices}; got {value!r}")
    return value


def _active_values(space: ConfigurationSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are active given the other values (inactive ones dropped)."""
    current: dict[str, Any] = {}
    for name in space:  # topological order: parents come before children
        conditions = space.parent_conditions_of[name]
        active = all(cond.satisfied_by_value(current) for cond in conditions)
        current[name] = values.get(name, NotSet) if active else NotSet
    return {name: value for name, value in current.items() if value is not NotSet}


def config_from_dict(d: Mapping[str, Any], space: ConfigurationSpace | None = None) -> Configuration:
    """Validate ``d`` (e.g. loaded from JSON) and return it as a Configuration of ``space``.

    Raises :class:`MetalearnError` for unknown, missing, inactive, out-of-range or forbidden values.
    """
    space = _reference_space() if space is None else space
    if isinstance(d, Configuration):
        d = dict(d)
    if not isinstance(d, Mapping):
        raise MetalearnError(f"a configuration must be a mapping, got {type(d).__name__}")
    where = f"search space {SPACE_VERSION}"
    unknown = sorted(set(d) - set(space))
    if unknown:
        raise MetalearnError(f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} in {where}")
    values = {name: _coerce(space[name], value) for name, value in d.items()}
    try:
        return Configuration(space, values=values)
    except IllegalValueError as exc:
        msg = f"value {exc.value!r} is out of range for hyperparameter {exc.hyperparameter.name!r}"
    except ActiveHyperparameterNotSetError as exc:
        msg = f"hyperparameter {exc.hyperparameter.name!r} is active but has no value"
    except InactiveHyperparameterSetError as exc:
        msg = f"hyperparameter {exc.hyperparameter.name!r} is set but inactive in this configuration"
    except ForbiddenValueError as exc:
        msg = " ".join(str(exc).split())
    except (ValueError, KeyError, TypeError) as exc:  # anything else ConfigSpace rejects
        msg = " ".join(str(exc).split())
    raise MetalearnError(f"invalid configuration for {where}: {msg}")


def canonical_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Active hyperparameters only, as JSON-native python values, with sorted keys.

    Works for a Configuration or a plain mapping (inactive entries of a mapping are dropped); the
    result is validated and round-trips through :func:`config_from_dict`.
    """
    space = _reference_space()
    raw = dict(config)
    unknown = sorted(set(raw) - set(space))
    if unknown:
        raise MetalearnError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} in search space {SPACE_VERSION}"
        )
    coerced = {name: _coerce(space[name], value) for name, value in raw.items()}
    valid = config_from_dict(_active_values(space, coerced), space)
    return {name: _coerce(space[name], valid[name]) for name in sorted(valid)}


def default_configuration(algorithm: str | None = None) -> dict[str, Any]:
    """The default configuration of the space, or of the space with ``classifier=algorithm``.

    All other hyperparameters take their defaults (scikit-learn's defaults for classifiers).
    """
    space = _reference_space()
    if algorithm is None:
        return canonical_config(space.get_default_configuration())
    if algorithm not in ALGORITHMS:
        raise MetalearnError(f"unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    defaults = {name: _native(hp.default_value) for name, hp in space.items()}
    defaults["classifier"] = algorithm
    return canonical_config(_active_values(space, defaults))


# --------------------------------------------------------------------------------------------------
# Helper transformers (module level so that fitted pipelines pickle)
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


def _same_feature_names(n_features: int, input_features: Any) -> np.ndarray:
    if input_features is None:
        return np.asarray([f"x{i}" for i in range(n_features)], dtype=object)
    if len(input_features) != n_features:
        raise ValueError(f"expected {n_features} input feature names, got {len(input_features)}")
    return np.asarray(input_features, dtype=object)


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
            self.poly_ = PolynomialFeatures(
                degree=2, interaction_only=self.interaction_only, include_bias=False
            ).fit(X)
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
        estimator = LogisticRegression(max_iter=200, random_state=self.random_state)
        self.rfe_ = RFE(estimator, n_features_to_select=n_select, step=self.step).fit(X, y)
        return self

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


def _l1_importances(estimator: Any) -> np.ndarray:
    """|coef| summed over classes, for a LogisticRegression or a OneVsRestClassifier of them."""
    estimators = getattr(estimator, "estimators_", [estimator])
    return np.sum([np.abs(np.atleast_2d(e.coef_)).sum(axis=0) for e in estimators], axis=0)


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


# --------------------------------------------------------------------------------------------------
# Pipeline construction
# --------------------------------------------------------------------------------------------------
def _logistic_regression(*, C: float, l1_ratio: float, solver: str, **kwargs: Any) -> LogisticRegression:
    """LogisticRegression with the penalty given as ``l1_ratio`` (0: L2, 1: L1), on any sklearn >= 1.4."""
    if _SKLEARN_VERSION >= (1, 8):
        return LogisticRegression(C=C, l1_ratio=l1_ratio, solver=solver, **kwargs)
    penalty = "l2" if l1_ratio == 0 else "l1" if l1_ratio == 1 else "elasticnet"
    ratio = l1_ratio if penalty == "elasticnet" else None
    return LogisticRegression(penalty=penalty, C=C, l1_ratio=ratio, solver=solver, **kwargs)


def _numeric_pipeline(c: Mapping[str, Any], random_state: int) -> Pipeline:
    strategy = c["imputation:numeric"]
    if strategy == "knn":
        imputer: Any = CappedKNNImputer(
            n_neighbors=c["imputation:knn:n_neighbors"],
            max_reference_rows=KNN_IMPUTER_MAX_REFERENCE_ROWS,
            random_state=random_state,
        )
    else:
        imputer = SimpleImputer(strategy=strategy, keep_empty_features=True)
    scaler: Any = {
        "none": "passthrough",
        "standard": StandardScaler(),
        "robust": RobustScaler(),
        "minmax": MinMaxScaler(),
    }.get(c["scaling"])
    if c["scaling"] == "quantile":
        scaler = QuantileTransformer(
            n_quantiles=c["scaling:quantile:n_quantiles"],
            output_distribution=c["scaling:quantile:output_distribution"],
            random_state=random_state,
        )
    return Pipeline(
        [
            ("to_float", FunctionTransformer(_to_float_array, feature_names_out="one-to-one")),
            ("imputer", imputer),
            ("scaler", scaler),
        ]
    )


def _categorical_pipeline(c: Mapping[str, Any]) -> Pipeline:
    imputer = SimpleImputer(
        strategy=c["imputation:categorical"], fill_value=MISSING_CATEGORY, keep_empty_features=True
    )
    if c["encoding"] == "one_hot":
        encoder: Any = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=c["encoding:one_hot:min_frequency"],
            max_categories=ONE_HOT_MAX_CATEGORIES,
            sparse_output=False,
            dtype=np.float64,
        )
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float64)
    return Pipeline(
        [
            ("to_object", FunctionTransformer(_to_object_array, feature_names_out="one-to-one")),
            ("imputer", imputer),
            ("to_str", FunctionTransformer(_to_str_array, feature_names_out="one-to-one")),
            ("encoder", encoder),
        ]
    )


def _feature_preprocessor(c: Mapping[str, Any], n_features: int | None, random_state: int) -> Any:
    choice = c["feature_preprocessing"]
    p = "feature_preprocessing:" + choice + ":"
    if choice == "none":
        return "passthrough"
    if choice == "pca":
        # Exact SVD so that a variance fraction can be kept (always at least one component).
        return PCA(
            n_components=c[p + "keep_variance"],
            whiten=c[p + "whiten"],
            svd_solver="full",
            random_state=random_state,
        )
    if choice == "select_percentile":
        score_func: Any = f_classif
        if c[p + "score_func"] == "mutual_info":
            score_func = functools.partial(mutual_info_classif, random_state=random_state)
        return SelectPercentileAtLeastOne(score_func=score_func, percentile=c[p + "percentile"])
    if choice == "l1_selection":
        solver = c[p + "solver"]
        base = _logistic_regression(
            C=c[p + "C"], l1_ratio=1.0, solver=solver, max_iter=200, random_state=random_state
        )
        # liblinear is binary-only: one-vs-rest makes it work for any number of classes.
        estimator = OneVsRestClassifier(base, n_jobs=1) if solver == "liblinear" else base
        # Explicit L1 threshold: SelectFromModel would default to "mean" for the one-vs-rest wrapper.
        return SelectFromModelAtLeastOne(estimator, threshold=1e-5, importance_getter=_l1_importances)
    if choice == "rfe":
        return FractionRFE(c[p + "n_features_fraction"], c[p + "step"], random_state=random_state)
    if choice == "polynomial":
        if n_features is not None and n_features > POLYNOMIAL_MAX_INPUT_FEATURES:
            return "passthrough"
        return PolynomialIfCheap(c[p + "interaction_only"], max_input_features=POLYNOMIAL_MAX_INPUT_FEATURES)
    raise MetalearnError(f"unknown feature preprocessing {choice!r}")  # pragma: no cover


def _forest(cls: type, c: Mapping[str, Any], p: str, class_weight: Any, random_state: int) -> Any:
    max_features = c[p + "max_features"]
    if max_features == "fraction":
        max_features = c[p + "max_features_fraction"]
    return cls(
        n_estimators=c[p + "n_estimators"],
        criterion=c[p + "criterion"],
        max_features=max_features,
        min_samples_split=c[p + "min_samples_split"],
        min_samples_leaf=c[p + "min_samples_leaf"],
        bootstrap=c[p + "bootstrap"],
        class_weight=class_weight,
        random_state=random_state,
        n_jobs=1,
    )


def _classifier(c: Mapping[str, Any], random_state: int) -> Any:
    algorithm = algorithm_of(c)
    p = algorithm + ":"
    cw = None if c.get("class_weight", "none") == "none" else c["class_weight"]
    if algorithm == "random_forest":
        return _forest(RandomForestClassifier, c, p, cw, random_state)
    if algorithm == "extra_trees":
        return _forest(ExtraTreesClassifier, c, p, cw, random_state)
    if algorithm == "hist_gradient_boosting":
        early = {"auto": "auto", "on": True, "off": False}[c[p + "early_stopping"]]
        return HistGradientBoostingClassifier(
            learning_rate=c[p + "learning_rate"],
            max_iter=c[p + "max_iter"],
            max_leaf_nodes=c[p + "max_leaf_nodes"],
            min_samples_leaf=c[p + "min_samples_leaf"],
            l2_regularization=c[p + "l2_regularization"],
            max_features=c[p + "max_features"],
            early_stopping=early,
            class_weight=cw,
            random_state=random_state,
        )
    if algorithm == "adaboost":
        return AdaBoostClassifier(
            estimator=DecisionTreeClassifier(max_depth=c[p + "max_depth"], random_state=random_state),
            n_estimators=c[p + "n_estimators"],
            learning_rate=c[p + "learning_rate"],
            random_state=random_state,
        )
    if algorithm == "decision_tree":
        return DecisionTreeClassifier(
            criterion=c[p + "criterion"],
            max_depth=c[p + "max_depth"] if c[p + "limit_depth"] else None,
            min_samples_split=c[p + "min_samples_split"],
            min_samples_leaf=c[p + "min_samples_leaf"],
            class_weight=cw,
            random_state=random_state,
        )
    if algorithm == "logistic_regression":
        penalty = c[p + "penalty"]
        ratio = {"l2": 0.0, "l1": 1.0}[penalty] if penalty != "elasticnet" else c[p + "l1_ratio"]
        return _logistic_regression(
            C=c[p + "C"], l1_ratio=ratio, solver=c[p + "solver"], class_weight=cw, random_state=random_state
        )
    if algorithm == "sgd":
        return SGDClassifier(
            loss=c[p + "loss"],
            penalty=c[p + "penalty"],
            alpha=c[p + "alpha"],
            l1_ratio=c.get(p + "l1_ratio", 0.15),
            average=c[p + "average"],
            class_weight=cw,
            random_state=random_state,
            n_jobs=1,
        )
    if algorithm == "linear_svc":
        svm: Any = LinearSVC(
            C=c[p + "C"],
            loss=c[p + "loss"],
            penalty=c[p + "penalty"],
            tol=c[p + "tol"],
            dual="auto",
            class_weight=cw,
            random_state=random_state,
        )
        return _calibrated(svm)
    if algorithm == "svc_rbf":
        gamma = c[p + "gamma"] if c[p + "gamma_mode"] == "value" else "scale"
        svm = SVC(
            C=c[p + "C"],
            kernel="rbf",
            gamma=gamma,
            shrinking=c[p + "shrinking"],
            tol=c[p + "tol"],
            class_weight=cw,
            random_state=random_state,
        )
        return _calibrated(svm)
    if algorithm == "k_neighbors":
        return CappedKNeighborsClassifier(
            n_neighbors=c[p + "n_neighbors"], weights=c[p + "weights"], p=c[p + "p"]
        )
    if algorithm == "mlp":
        units = tuple(c[f"{p}layer_{i}_units"] for i in range(1, c[p + "n_layers"] + 1))
        return MLPClassifier(
            hidden_layer_sizes=units,
            activation=c[p + "activation"],
            alpha=c[p + "alpha"],
            learning_rate_init=c[p + "learning_rate_init"],
            early_stopping=c[p + "early_stopping"],
            max_iter=MLP_MAX_ITER,
            random_state=random_state,
        )
    if algorithm == "gaussian_nb":
        return GaussianNB(var_smoothing=c[p + "var_smoothing"])
    if algorithm == "lda":
        solver = c[p + "solver"]
        shrinkage: Any = None
        if solver == "lsqr" and c[p + "shrinkage"] != "none":
            shrinkage = "auto" if c[p + "shrinkage"] == "auto" else c[p + "shrinkage_factor"]
        return LinearDiscriminantAnalysis(solver=solver, shrinkage=shrinkage)
    raise MetalearnError(f"unknown algorithm {algorithm!r}")  # pragma: no cover


def _calibrated(svm: Any) -> CalibratedClassifierCV:
    """Sigmoid calibration on ``CALIBRATION_CV`` folds, giving SVMs a ``predict_proba``.

    ``ensemble=True`` fits one SVM per fold on 2/3 of the rows: for libsvm (superlinear in n) this is
    cheaper than ``SVC(probability=True)`` (internal 5-fold CV plus a full fit, deprecated in
    scikit-learn 1.9) or ``ensemble=False`` (CV fits plus a full fit).
    """
    return CalibratedClassifierCV(svm, method="sigmoid", cv=CALIBRATION_CV, ensemble=True, n_jobs=1)


def build_pipeline(
    config: Mapping[str, Any],
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str],
    n_features: int | None = None,
    random_state: int = 0,
) -> Pipeline:
    """An unfitted pipeline for ``config`` that takes a DataFrame with the given columns.

    Steps: ``preprocess`` (ColumnTransformer: numeric imputer -> scaler, categorical imputer ->
    encoder; dense output), ``feature_preprocessing`` and ``classifier``. ``n_features`` is the number
    of input feature columns when known: polynomial features are replaced by ``"passthrough"`` when it
    exceeds ``POLYNOMIAL_MAX_INPUT_FEATURES`` (otherwise they are still skipped at fit time if the
    encoded data has too many columns). Every stochastic step gets ``random_state``; ``n_jobs=1``.
    """
    c = config_from_dict(config)
    numeric_columns, categorical_columns = list(numeric_columns), list(categorical_columns)
    if not numeric_columns and not categorical_columns:
        raise MetalearnError("cannot build a pipeline without feature columns")
    overlap = sorted(set(numeric_columns) & set(categorical_columns))
    if overlap:
        raise MetalearnError(f"columns declared both numeric and categorical: {', '.join(overlap)}")
    transformers = []
    if numeric_columns:
        transformers.append(("numeric", _numeric_pipeline(c, random_state), numeric_columns))
    if categorical_columns:
        transformers.append(("categorical", _categorical_pipeline(c), categorical_columns))
    preprocess = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0, n_jobs=1)
    return Pipeline(
        [
            ("preprocess", preprocess),
            ("feature_preprocessing", _feature_preprocessor(c, n_features, random_state)),
            ("classifier", _classifier(c, random_state)),
        ]
    )
