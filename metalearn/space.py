"""The search spaces of metalearn (one per task), and the identity of their configurations.

Every dataset of a task is searched in the same :class:`ConfigurationSpace` (see :func:`build_space`), so
configurations from past runs in the knowledge base can be replayed on new datasets. A configuration
describes a whole pipeline (built by :func:`metalearn.pipeline.build_pipeline`)::

    ColumnTransformer(numeric: imputer -> scaler, categorical: imputer -> encoder)
        -> feature preprocessing -> classifier | regressor

Hyperparameter names are ``<component>`` for a choice and ``<component>:<choice>:<parameter>`` (or
``<classifier>:<parameter>``, ``<regressor>:<parameter>``) for the parameters of that choice. Invalid
combinations are removed by conditions and forbidden clauses of the space, never by catching errors at fit
time. The feature preprocessors and the estimator families come from registries: classification from
:data:`metalearn.preprocessors.PREPROCESSORS` and :data:`metalearn.families.FAMILIES` (plus the ``class_weight``
hyperparameter), regression from :data:`metalearn.preprocessors.REGRESSION_PREPROCESSORS` and
:data:`metalearn.regressors.REGRESSORS` (plus ``target_transform``, see :mod:`metalearn.target`); the data
preprocessing choices are defined here and shared. A configuration's task is told by its key: ``"classifier"``
or ``"regressor"`` (:func:`task_of_config`).

A :class:`~metalearn.restriction.Restriction` (``--include`` / ``--exclude`` / ``--interpretable``) builds a
restricted space: fewer choices and narrower ranges under the same names and the same version, so its
configurations are configurations of the full space (:func:`allows` checks one against a restriction).

``SPACE_VERSIONS[task]`` must be bumped whenever that space (names, ranges, defaults, conditions, forbidden
clauses) or its mapping to scikit-learn changes; it is stored next to every configuration.
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
from metalearn.preprocessors import PREPROCESSORS, REGRESSION_PREPROCESSORS
from metalearn.protocol import TASKS, check_choice
from metalearn.registry import Component, Registry
from metalearn.regressors import REGRESSORS
from metalearn.restriction import Restriction
from metalearn.target import TARGET_TRANSFORMS

__all__ = [
    "ALGORITHMS",
    "ALGORITHMS_BY_TASK",
    "ALGORITHM_KEYS",
    "COMPATIBLE_SPACE_VERSIONS",
    "COMPATIBLE_SPACE_VERSIONS_BY_TASK",
    "DEFAULT_ALGORITHMS",
    "REGRESSION_ALGORITHMS",
    "REGRESSION_SPACE_VERSION",
    "SPACE_VERSION",
    "SPACE_VERSIONS",
    "TARGET_TRANSFORMS",
    "algorithm_of",
    "algorithms",
    "allows",
    "build_space",
    "canonical_config",
    "canonical_json",
    "complete_config",
    "config_from_dict",
    "compatible_space_versions",
    "config_hash",
    "default_configuration",
    "task_of_config",
]

SPACE_VERSION: str = "2026.11-2"
"""Version of the classification space; bump on any change of names, ranges, defaults, conditions or mapping."""
REGRESSION_SPACE_VERSION: str = "2026.11-r1"
"""Version of the regression space (bumped on its own)."""
#: task -> version of its space
SPACE_VERSIONS: dict[str, str] = {"classification": SPACE_VERSION, "regression": REGRESSION_SPACE_VERSION}

#: versions whose configurations are valid configurations of this space too (it only gained families since:
#: 2026.11-2 added LightGBM, XGBoost and CatBoost), so their runs still count as evidence
COMPATIBLE_SPACE_VERSIONS: tuple[str, ...] = (SPACE_VERSION, "2026.11-1")
#: task -> the versions whose runs count as evidence for that task's space
COMPATIBLE_SPACE_VERSIONS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": COMPATIBLE_SPACE_VERSIONS,
    "regression": (REGRESSION_SPACE_VERSION,),
}

#: the classifier families, in the order of the ``classifier`` choices
ALGORITHMS: tuple[str, ...] = FAMILIES.names
DEFAULT_ALGORITHM = FAMILIES.default
#: the regressor families, in the order of the ``regressor`` choices
REGRESSION_ALGORITHMS: tuple[str, ...] = REGRESSORS.names
#: task -> its families; task -> the hyperparameter naming the family; task -> the default family
ALGORITHMS_BY_TASK: dict[str, tuple[str, ...]] = {"classification": ALGORITHMS, "regression": REGRESSION_ALGORITHMS}
ALGORITHM_KEYS: dict[str, str] = {"classification": FAMILIES.name, "regression": REGRESSORS.name}
DEFAULT_ALGORITHMS: dict[str, str] = {"classification": FAMILIES.default, "regression": REGRESSORS.default}
#: task -> (feature preprocessors, estimator families)
_REGISTRIES: dict[str, tuple[Registry, Registry]] = {
    "classification": (PREPROCESSORS, FAMILIES),
    "regression": (REGRESSION_PREPROCESSORS, REGRESSORS),
}

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


def _narrowed(hp: Hyperparameter, allowed: tuple[Any, ...] | None) -> Hyperparameter:
    """``hp`` limited to ``allowed``: values for a categorical, ``(low, high)`` for a number (default clipped)."""
    if allowed is None:
        return hp
    if isinstance(hp, CategoricalHyperparameter):
        choices = [c for c in hp.choices if any(type(c) is type(a) and c == a for a in allowed)]
        if not choices:
            raise MetalearnError(f"no value of {hp.name!r} is left by the restriction {allowed!r}")
        return Categorical(hp.name, choices, default=hp.default_value if hp.default_value in choices else choices[0])
    low, high = max(hp.lower, allowed[0]), min(hp.upper, allowed[1])
    kind = Integer if isinstance(hp, IntegerHyperparameter) else Float
    return kind(hp.name, (low, high), log=hp.log, default=min(max(hp.default_value, low), high))


def _restricted(registry: Registry, allowed: tuple[str, ...] | None) -> Registry:
    """``registry`` with only the ``allowed`` choices (its default, or the first one left, as default)."""
    if allowed is None or tuple(allowed) == registry.names:
        return registry
    components = tuple(component for component in registry if component.name in allowed)
    default = registry.default if registry.default in allowed else components[0].name
    return Registry(registry.name, default, registry.prefix_format, components)


def _add_component(
    cs: ConfigurationSpace, registry: Registry, component: Component, choice: CategoricalHyperparameter,
    ranges: Mapping[str, tuple[Any, ...]],
) -> None:
    prefix = registry.prefix(component.name)
    hps = [_narrowed(hp, ranges.get(hp.name)) for hp in component.hyperparameters(prefix)]
    by_name = {hp.name: hp for hp in hps}
    unknown = {prefix + name for name in component.conditions} - set(by_name)
    if unknown:
        raise ValueError(f"conditions of {component.name!r} name unknown hyperparameters {sorted(unknown)}")
    cs.add(hps, [_condition(hp, component, prefix, choice, by_name) for hp in hps])


def _add_choice(cs: ConfigurationSpace, registry: Registry,
                ranges: Mapping[str, tuple[Any, ...]]) -> CategoricalHyperparameter:
    """The categorical ``registry.name`` over the registry's components, and each component's parameters."""
    choice = Categorical(registry.name, registry.names, default=registry.default)
    cs.add(choice)
    for component in registry:
        _add_component(cs, registry, component, choice, ranges)
    return choice


def _clause(cs: ConfigurationSpace, name: str, value: Any) -> ForbiddenEqualsClause | ForbiddenInClause | None:
    """The clause ``name == value`` (``in value`` for a list); None when a restricted space has no such value."""
    hp = cs[name]
    values = [v for v in (value if isinstance(value, tuple | list) else [value]) if hp.legal_value(v)]
    if not values:
        return None
    if isinstance(value, tuple | list):
        return ForbiddenInClause(hp, values)
    return ForbiddenEqualsClause(hp, value)


def _conjunction(cs: ConfigurationSpace, items: Iterable[tuple[str, Any]]) -> ForbiddenAndConjunction | None:
    """The conjunction of the clauses, or None when one of them can never hold (the whole never does)."""
    clauses = [_clause(cs, name, value) for name, value in items]
    return None if any(c is None for c in clauses) else ForbiddenAndConjunction(*clauses)


def _forbidden(cs: ConfigurationSpace, registries: Iterable[Registry]) -> list[ForbiddenAndConjunction]:
    """The components' forbidden conjunctions, and one clause per incompatible ``(hyperparameter, value)``
    forbidding it together with every choice declaring it."""
    clauses = []
    incompatible: dict[tuple[str, str, Any], list[str]] = {}
    for registry in registries:
        for component in registry:
            for conjunction in component.forbidden:
                clauses.append(_conjunction(cs, conjunction.items()))
            for name, value in component.incompatible.items():
                incompatible.setdefault((registry.name, name, value), []).append(component.name)
    for (choice, name, value), members in incompatible.items():
        chosen = members[0] if len(members) == 1 else tuple(members)
        clauses.append(_conjunction(cs, [(name, value), (choice, chosen)]))
    return [clause for clause in clauses if clause is not None]


def build_space(seed: int | None = None, task: str = "classification",
                restriction: Restriction | None = None) -> ConfigurationSpace:
    """Build the search space of ``task`` (identical for every dataset); ``seed`` seeds its sampler.

    Classification adds ``class_weight`` (for the families that take one); regression adds
    ``target_transform`` (``none``, ``log1p``, ``quantile``; see :mod:`metalearn.target`). With ``restriction``
    (of the same task), only its families and preprocessors, with its ranges, under the same names and version.
    """
    check_choice("task", task, TASKS)
    preprocessors, estimators = _REGISTRIES[task]
    ranges: dict[str, tuple[Any, ...]] = {}
    if restriction is not None:
        if restriction.task != task:
            raise MetalearnError(f"a restriction for {restriction.task} cannot restrict the {task} space")
        preprocessors = _restricted(preprocessors, restriction.preprocessors)
        estimators = _restricted(estimators, restriction.estimators)
        ranges = dict(restriction.ranges)
    cs = ConfigurationSpace(name=f"metalearn-{SPACE_VERSIONS[task]}", seed=seed)
    _add_data_preprocessing(cs)
    _add_choice(cs, preprocessors, ranges)
    estimator = _add_choice(cs, estimators, ranges)
    weighted = [name for name in CLASS_WEIGHT_ALGORITHMS if name in estimators.names]
    if task == "classification":
        if weighted:  # (a restriction may leave no family that takes one)
            class_weight = Categorical("class_weight", ["none", "balanced"], default="none")
            condition = (EqualsCondition(class_weight, estimator, weighted[0]) if len(weighted) == 1
                         else InCondition(class_weight, estimator, weighted))
            cs.add(class_weight, condition)
    else:
        cs.add(Categorical("target_transform", TARGET_TRANSFORMS, default="none"))
    cs.add(_forbidden(cs, (preprocessors, estimators)))
    return cs


@functools.lru_cache(maxsize=len(TASKS))
def _reference_space(task: str = "classification") -> ConfigurationSpace:
    """A shared space for validation only (never sampled from, so its RNG state does not matter)."""
    return build_space(seed=0, task=task)


@functools.lru_cache(maxsize=32)
def _restricted_space(restriction: Restriction) -> ConfigurationSpace:
    """A restricted space for validation only (see :func:`_reference_space`)."""
    return build_space(seed=0, task=restriction.task, restriction=restriction)


def allows(restriction: Restriction | None, config: Mapping[str, Any]) -> bool:
    """Whether ``config`` (of the full space) is a configuration of the space ``restriction`` builds."""
    if restriction is None or not restriction.restricts:
        return True
    try:
        config_from_dict(_active_values(_restricted_space(restriction), dict(config)), _restricted_space(restriction))
    except MetalearnError:
        return False
    return True


def _version_of(space: ConfigurationSpace) -> str:
    return str(space.name).removeprefix("metalearn-")


# --------------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------------
def canonical_json(config: Mapping[str, Any]) -> str:
    """A configuration as canonical JSON (sorted keys, no spaces): equal configurations, equal text."""
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"))


def config_hash(config: Mapping[str, Any], space_version: str) -> str:
    """The identity of a configuration in the knowledge base: SHA-256 of its space version and JSON."""
    return hashlib.sha256(f"{space_version}|{canonical_json(config)}".encode()).hexdigest()


def task_of_config(config: Mapping[str, Any]) -> str:
    """``"classification"`` for a configuration with a ``classifier``, ``"regression"`` for one with a
    ``regressor`` (a :class:`MetalearnError` for neither or both)."""
    tasks = [task for task, key in ALGORITHM_KEYS.items() if key in config]
    if len(tasks) != 1:
        keys = [repr(key) for key in ALGORITHM_KEYS.values()]
        which = f"both {' and '.join(keys)} hyperparameters" if tasks else f"no {' or '.join(keys)} hyperparameter"
        raise MetalearnError(f"configuration has {which}")
    return tasks[0]


def algorithms(task: str = "classification") -> tuple[str, ...]:
    """The families of ``task``'s space, in the order of its ``classifier`` / ``regressor`` choices."""
    return ALGORITHMS_BY_TASK[check_choice("task", task, TASKS)]


def compatible_space_versions(task: str = "classification") -> tuple[str, ...]:
    """The space versions whose configurations (and runs) are valid for ``task``'s current space."""
    return COMPATIBLE_SPACE_VERSIONS_BY_TASK[check_choice("task", task, TASKS)]


def _task_or_default(config: Mapping[str, Any]) -> str:
    """The task of ``config``; classification when it names no family (its space then reports the problem)."""
    return "regression" if ALGORITHM_KEYS["regression"] in config and "classifier" not in config else "classification"


def algorithm_of(config: Mapping[str, Any]) -> str:
    """The family of a configuration, e.g. ``"random_forest"``: its ``classifier`` or its ``regressor``."""
    return str(config[ALGORITHM_KEYS[task_of_config(config)]])


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

    Without ``space``, the space of the configuration's task (a ``regressor`` key means regression).
    Raises :class:`MetalearnError` for unknown, missing, inactive, out-of-range or forbidden values.
    """
    if isinstance(d, Configuration):
        d = dict(d)
    if not isinstance(d, Mapping):
        raise MetalearnError(f"a configuration must be a mapping, got {type(d).__name__}")
    space = _reference_space(_task_or_default(d)) if space is None else space
    where = f"search space {_version_of(space)}"
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


def complete_config(space: ConfigurationSpace, values: Mapping[str, Any]) -> Configuration:
    """The configuration of ``space`` with ``values`` and every other active hyperparameter at its default
    (values left inactive by the others are dropped); a :class:`MetalearnError` when ``space`` rejects it."""
    unknown = sorted(set(values) - set(space))
    if unknown:
        raise MetalearnError(f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} in this search space")
    defaults = {name: _native(hp.default_value) for name, hp in space.items()}
    given = {name: _coerce(space[name], value) for name, value in values.items()}
    return config_from_dict(_active_values(space, defaults | given), space)


def canonical_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Active hyperparameters only, as JSON-native python values, with sorted keys.

    Works for a Configuration or a plain mapping (inactive entries of a mapping are dropped); the
    result is validated and round-trips through :func:`config_from_dict`.
    """
    raw = dict(config)
    space = _reference_space(_task_or_default(raw))
    unknown = sorted(set(raw) - set(space))
    if unknown:
        raise MetalearnError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} in search space {_version_of(space)}"
        )
    coerced = {name: _coerce(space[name], value) for name, value in raw.items()}
    valid = config_from_dict(_active_values(space, coerced), space)
    return {name: _coerce(space[name], valid[name]) for name in sorted(valid)}


def default_configuration(algorithm: str | None = None, task: str = "classification") -> dict[str, Any]:
    """The default configuration of ``task``'s space, or of that space with its family set to ``algorithm``.

    All other hyperparameters take their defaults (scikit-learn's defaults for the estimators). The default
    families are ``random_forest`` (classification) and ``hist_gradient_boosting`` (regression).
    """
    check_choice("task", task, TASKS)
    space = _reference_space(task)
    if algorithm is None:
        return canonical_config(space.get_default_configuration())
    algorithms = ALGORITHMS_BY_TASK[task]
    if algorithm not in algorithms:
        raise MetalearnError(f"unknown algorithm {algorithm!r} for {task}; expected one of {', '.join(algorithms)}")
    defaults = {name: _native(hp.default_value) for name, hp in space.items()}
    defaults[ALGORITHM_KEYS[task]] = algorithm
    return canonical_config(_active_values(space, defaults))
