"""The one search space of metalearn, and the identity of its configurations.

Every dataset is searched in the same :class:`ConfigurationSpace` (see :func:`build_space`), so
configurations from past runs in the knowledge base can be replayed on new datasets. A configuration
describes a whole pipeline (built by :func:`metalearn.pipeline.build_pipeline`)::

    ColumnTransformer(numeric: imputer -> scaler, categorical: imputer -> encoder)
        -> feature preprocessing -> classifier

Hyperparameter names are ``<component>`` for a choice and ``<component>:<choice>:<parameter>`` (or
``<classifier>:<parameter>``) for the parameters of that choice. Invalid combinations are removed by
conditions and forbidden clauses of the space, never by catching errors at fit time. The feature
preprocessors and the classifier families come from the registries :data:`metalearn.preprocessors.PREPROCESSORS`
and :data:`metalearn.families.FAMILIES`; the data preprocessing choices are defined here.

``SPACE_VERSION`` must be bumped whenever the space (names, ranges, defaults, conditions, forbidden
clauses) or the mapping to scikit-learn changes; it is stored next to every configuration.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
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
from ConfigSpace.conditions import Condition
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

# Fitted pipelines written before the custom steps moved to metalearn.components refer to them as
# ``metalearn.space.<name>``: these names stay importable here so that older model files still unpickle.
from metalearn.components import CappedKNeighborsClassifier as CappedKNeighborsClassifier
from metalearn.components import CappedKNNImputer as CappedKNNImputer
from metalearn.components import FractionRFE as FractionRFE
from metalearn.components import PolynomialIfCheap as PolynomialIfCheap
from metalearn.components import SelectFromModelAtLeastOne as SelectFromModelAtLeastOne
from metalearn.components import SelectPercentileAtLeastOne as SelectPercentileAtLeastOne
from metalearn.components import l1_importances, to_float_array, to_object_array, to_str_array
from metalearn.errors import MetalearnError
from metalearn.families import FAMILIES
from metalearn.preprocessors import POLYNOMIAL_MAX_INPUT_FEATURES as POLYNOMIAL_MAX_INPUT_FEATURES
from metalearn.preprocessors import PREPROCESSORS
from metalearn.registry import Component, Registry

__all__ = [
    "ALGORITHMS",
    "COMPATIBLE_SPACE_VERSIONS",
    "SPACE_VERSION",
    "algorithm_of",
    "build_space",
    "canonical_config",
    "canonical_json",
    "config_from_dict",
    "config_hash",
    "default_configuration",
]

SPACE_VERSION: str = "2026.11-2"
"""Version of the search space; bump on any change of names, ranges, defaults, conditions or mapping."""

#: versions whose configurations are valid configurations of this space too (it only gained families since:
#: 2026.11-2 added LightGBM, XGBoost and CatBoost), so their runs still count as evidence
COMPATIBLE_SPACE_VERSIONS: tuple[str, ...] = (SPACE_VERSION, "2026.11-1")

#: the classifier families, in the order of the ``classifier`` choices
ALGORITHMS: tuple[str, ...] = FAMILIES.names
DEFAULT_ALGORITHM = FAMILIES.default

NUMERIC_IMPUTERS = ("mean", "median", "most_frequent", "knn")
CATEGORICAL_IMPUTERS = ("most_frequent", "constant")
ENCODERS = ("one_hot", "ordinal")
SCALERS = ("none", "standard", "robust", "minmax", "quantile")
FEATURE_PREPROCESSORS: tuple[str, ...] = PREPROCESSORS.names
#: Classifiers with a ``class_weight`` parameter; ``class_weight`` is only active for these.
CLASS_WEIGHT_ALGORITHMS: tuple[str, ...] = tuple(family.name for family in FAMILIES if family.class_weight)

# Legacy pickle names of the column conversions and of the L1 importance getter (see the imports above).
_to_float_array = to_float_array
_to_object_array = to_object_array
_to_str_array = to_str_array
_l1_importances = l1_importances


# --------------------------------------------------------------------------------------------------
# The space
# --------------------------------------------------------------------------------------------------
def _add_data_preprocessing(cs: ConfigurationSpace) -> None:
    """Imputation, encoding and scaling (their parameters are active only for their choice)."""
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


def _condition(
    hp: Hyperparameter,
    component: Component,
    prefix: str,
    choice: CategoricalHyperparameter,
    by_name: Mapping[str, Hyperparameter],
) -> Condition:
    """``hp`` is active when ``component`` is chosen, or below its parent in ``component.conditions``."""
    when = component.conditions.get(hp.name.removeprefix(prefix))
    if when is None:
        return EqualsCondition(hp, choice, component.name)
    parent = by_name[prefix + when.parent]
    if when.op == ">":
        return GreaterThanCondition(hp, parent, when.value)
    return EqualsCondition(hp, parent, when.value)


def _add_component(
    cs: ConfigurationSpace, registry: Registry, component: Component, choice: CategoricalHyperparameter
) -> None:
    prefix = registry.prefix(component.name)
    hps = component.hyperparameters(prefix)
    by_name = {hp.name: hp for hp in hps}
    unknown = {prefix + name for name in component.conditions} - set(by_name)
    if unknown:
        raise ValueError(f"conditions of {component.name!r} name unknown hyperparameters {sorted(unknown)}")
    cs.add(hps, [_condition(hp, component, prefix, choice, by_name) for hp in hps])


def _add_choice(cs: ConfigurationSpace, registry: Registry) -> CategoricalHyperparameter:
    """The categorical ``registry.name`` over the registry's components, and each component's parameters."""
    choice = Categorical(registry.name, registry.names, default=registry.default)
    cs.add(choice)
    for component in registry:
        _add_component(cs, registry, component, choice)
    return choice


def _clause(cs: ConfigurationSpace, name: str, value: Any) -> ForbiddenEqualsClause | ForbiddenInClause:
    if isinstance(value, tuple | list):
        return ForbiddenInClause(cs[name], list(value))
    return ForbiddenEqualsClause(cs[name], value)


def _forbidden(cs: ConfigurationSpace, registries: Iterable[Registry]) -> list[ForbiddenAndConjunction]:
    """The components' forbidden conjunctions, and one clause per incompatible ``(hyperparameter, value)``
    forbidding it together with every choice declaring it."""
    clauses = []
    incompatible: dict[tuple[str, str, Any], list[str]] = {}
    for registry in registries:
        for component in registry:
            for conjunction in component.forbidden:
                clauses.append(ForbiddenAndConjunction(*(_clause(cs, n, v) for n, v in conjunction.items())))
            for name, value in component.incompatible.items():
                incompatible.setdefault((registry.name, name, value), []).append(component.name)
    for (choice, name, value), members in incompatible.items():
        chosen = members[0] if len(members) == 1 else tuple(members)
        clauses.append(ForbiddenAndConjunction(_clause(cs, name, value), _clause(cs, choice, chosen)))
    return clauses


def build_space(seed: int | None = None) -> ConfigurationSpace:
    """Build the search space (identical for every dataset); ``seed`` seeds its sampler."""
    cs = ConfigurationSpace(name=f"metalearn-{SPACE_VERSION}", seed=seed)
    _add_data_preprocessing(cs)
    _add_choice(cs, PREPROCESSORS)
    classifier = _add_choice(cs, FAMILIES)
    class_weight = Categorical("class_weight", ["none", "balanced"], default="none")
    cs.add(class_weight, InCondition(class_weight, classifier, list(CLASS_WEIGHT_ALGORITHMS)))
    cs.add(_forbidden(cs, (PREPROCESSORS, FAMILIES)))
    return cs


@functools.lru_cache(maxsize=1)
def _reference_space() -> ConfigurationSpace:
    """A shared space for validation only (never sampled from, so its RNG state does not matter)."""
    return build_space(seed=0)


# --------------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------------
def canonical_json(config: Mapping[str, Any]) -> str:
    """A configuration as canonical JSON (sorted keys, no spaces): equal configurations, equal text."""
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"))


def config_hash(config: Mapping[str, Any], space_version: str) -> str:
    """The identity of a configuration in the knowledge base: SHA-256 of its space version and JSON."""
    return hashlib.sha256(f"{space_version}|{canonical_json(config)}".encode()).hexdigest()


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
