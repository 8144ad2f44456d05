"""Registries of pipeline components: one self-contained :class:`Component` per choice of a step.

A component (a classifier or regressor family, a feature preprocessor) declares its hyperparameters, the conditions
between them, its forbidden combinations and how to build its scikit-learn object. :mod:`metalearn.space`
assembles the search space from the registries and :mod:`metalearn.pipeline` builds pipelines from the very
same entries, so adding a choice is adding one entry to a :class:`Registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ConfigSpace import Categorical
from ConfigSpace.hyperparameters import CategoricalHyperparameter, Hyperparameter

from metalearn.errors import MetalearnError

__all__ = ["BuildContext", "Component", "Params", "Registry", "When", "boolean"]


@dataclass(frozen=True)
class When:
    """Activation of a hyperparameter below another one of the same component.

    ``When("penalty", "elasticnet")`` is active when ``penalty == "elasticnet"``; ``When("n_layers", 1, ">")``
    when ``n_layers > 1``. Names are relative to the component (without its prefix).
    """

    parent: str
    value: Any
    op: Literal["==", ">"] = "=="


@dataclass(frozen=True)
class BuildContext:
    """What a builder needs besides the component's own hyperparameters."""

    random_state: int = 0
    #: number of input feature columns, when known
    n_features: int | None = None
    #: ``None`` or ``"balanced"`` (only ever set for components with ``class_weight=True``)
    class_weight: str | None = None


class Params(Mapping[str, Any]):
    """A component's view of a configuration: ``params["C"]`` is ``config[prefix + "C"]``."""

    def __init__(self, config: Mapping[str, Any], prefix: str) -> None:
        self._config = config
        self._prefix = prefix

    def __getitem__(self, name: str) -> Any:
        return self._config[self._prefix + name]

    def __iter__(self) -> Iterator[str]:
        return (key[len(self._prefix) :] for key in self._config if key.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Params({dict(self)!r})"


def boolean(name: str, default: bool) -> CategoricalHyperparameter:
    """A boolean hyperparameter (a categorical of ``False``/``True``)."""
    return Categorical(name, [False, True], default=default)


def _no_hyperparameters(prefix: str) -> list[Hyperparameter]:
    return []


@dataclass(frozen=True)
class Component:
    """One choice of a pipeline step.

    ``hyperparameters(prefix)`` creates its hyperparameters, named ``prefix + <parameter>``; each is active
    when the component is chosen, or, when listed in ``conditions``, when its parent has the given value.
    ``forbidden`` lists conjunctions of hyperparameter values (full names; a tuple of values means any of
    them) that are never sampled. ``incompatible`` maps another hyperparameter to a value this choice cannot
    be combined with (e.g. ``{"scaling": "none"}``). ``build(params, context)`` returns the scikit-learn object
    (or ``"passthrough"``); an optional dependency is imported inside the builder. ``class_weight`` tells
    whether the component accepts the shared ``class_weight`` hyperparameter.
    """

    name: str
    build: Callable[[Params, BuildContext], Any]
    hyperparameters: Callable[[str], list[Hyperparameter]] = _no_hyperparameters
    conditions: Mapping[str, When] = field(default_factory=dict)
    forbidden: tuple[Mapping[str, Any], ...] = ()
    incompatible: Mapping[str, Any] = field(default_factory=dict)
    class_weight: bool = False


@dataclass(frozen=True)
class Registry:
    """The choices of one pipeline step, in order: the values of the categorical hyperparameter ``name``.

    The parameters of choice ``x`` are named ``prefix_format.format(x) + <parameter>``.
    """

    name: str
    default: str
    prefix_format: str
    components: tuple[Component, ...]
    _by_name: dict[str, Component] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {component.name: component for component in self.components}
        if len(by_name) != len(self.components):
            raise ValueError(f"duplicate choices in the {self.name!r} registry")
        if self.default not in by_name:
            raise ValueError(f"default {self.default!r} is not a choice of the {self.name!r} registry")
        object.__setattr__(self, "_by_name", by_name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __getitem__(self, name: str) -> Component:
        try:
            return self._by_name[name]
        except KeyError:
            raise MetalearnError(f"unknown {self.name} {name!r}") from None

    def __iter__(self) -> Iterator[Component]:
        return iter(self.components)

    def prefix(self, name: str) -> str:
        return self.prefix_format.format(name)

    def build(self, config: Mapping[str, Any], context: BuildContext) -> Any:
        """Build the chosen component of ``config`` (validated beforehand)."""
        component = self[str(config[self.name])]
        return component.build(Params(config, self.prefix(component.name)), context)
