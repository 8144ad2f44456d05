"""User control over what a search may try: ``--include`` / ``--exclude`` and the ``--interpretable`` preset.

A :class:`Restriction` names the estimator families and feature preprocessors a search of one task may use, and
narrower ranges for some hyperparameters. :func:`metalearn.space.build_space` builds the restricted space from
it: the same hyperparameter names and the same space version, only fewer choices and narrower ranges, so every
configuration of a restricted space is a valid configuration of the full one (and is stored as such). The
recommender drops the recommendations a restriction does not allow (:func:`metalearn.space.allows`).

Names are those of the registries (:data:`metalearn.families.FAMILIES`, :data:`metalearn.regressors.REGRESSORS`,
:data:`metalearn.preprocessors.PREPROCESSORS`); one list of names may mix families and preprocessors. Including
names of one kind keeps only those of that kind (the other kind stays whole); excluding removes them. Unknown
names are a :class:`MetalearnError` that lists the valid ones. Presets (:data:`PRESETS`) are the one home of
named restrictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metalearn.errors import MetalearnError
from metalearn.families import FAMILIES
from metalearn.preprocessors import PREPROCESSORS, REGRESSION_PREPROCESSORS
from metalearn.protocol import TASKS, check_choice
from metalearn.registry import Registry
from metalearn.regressors import REGRESSORS

__all__ = ["PRESETS", "Preset", "Restriction", "names_of", "restriction", "split_names"]

#: task -> (estimator families, feature preprocessors)
REGISTRIES: dict[str, tuple[Registry, Registry]] = {
    "classification": (FAMILIES, PREPROCESSORS),
    "regression": (REGRESSORS, REGRESSION_PREPROCESSORS),
}


@dataclass(frozen=True)
class Preset:
    """A named restriction: the families and preprocessors it allows (per task) and its narrower ranges.

    ``ranges`` maps a hyperparameter to ``(low, high)`` (numbers) or a list of allowed values (categories);
    a name whose family is not allowed is ignored.
    """

    families: Mapping[str, tuple[str, ...]]
    preprocessors: tuple[str, ...]
    ranges: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


#: the presets (``--interpretable``): linear models, a shallow decision tree and naive Bayes, with feature
#: selection only (no PCA, no polynomial products): every model reads the original features
PRESETS: dict[str, Preset] = {
    "interpretable": Preset(
        families={"classification": ("logistic_regression", "decision_tree", "gaussian_nb", "lda"),
                  "regression": ("ridge", "lasso", "elastic_net", "decision_tree")},
        preprocessors=("none", "select_percentile", "l1_selection", "rfe"),
        ranges={"decision_tree:limit_depth": [True], "decision_tree:max_depth": (1, 5)},
        description="linear models, a decision tree of depth <= 5 and naive Bayes, on the original features",
    ),
}


def names_of(task: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The valid names of ``task``: (estimator families, feature preprocessors)."""
    estimators, preprocessors = REGISTRIES[check_choice("task", task, TASKS)]
    return estimators.names, preprocessors.names


@dataclass(frozen=True)
class Restriction:
    """What a search of ``task`` may use: ``estimators``, ``preprocessors`` (registry order) and ``ranges``
    (``(hyperparameter, (low, high) or (value, ...))`` pairs; hashable, so restricted spaces can be cached).

    :func:`metalearn.space.allows` tells whether a configuration of the full space is one of the restricted space.
    """

    task: str
    estimators: tuple[str, ...]
    preprocessors: tuple[str, ...]
    ranges: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    @property
    def restricts(self) -> bool:
        """Whether anything is left out of the full space."""
        return (self.estimators, self.preprocessors) != names_of(self.task) or bool(self.ranges)

    def to_json(self) -> dict[str, Any]:
        return {"estimators": list(self.estimators), "preprocessors": list(self.preprocessors),
                "ranges": {name: list(value) for name, value in self.ranges}}


def split_names(values: Iterable[str] | str | None) -> list[str]:
    """Names from a list, or from comma-separated text (``"rfe, pca"``)."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [name.strip() for item in items for name in str(item).split(",") if name.strip()]


def _kept(kind: str, start: Sequence[str], include: list[str], exclude: list[str], valid: Sequence[str]) -> tuple:
    named = [name for name in include if name in valid]
    kept = [name for name in start if (not named or name in named) and name not in exclude]
    if not kept:
        raise MetalearnError(f"--include / --exclude leave no {kind} to search; the {kind} are: {', '.join(start)}")
    return tuple(kept)


def restriction(task: str, include: Iterable[str] | str | None = None, exclude: Iterable[str] | str | None = None,
                preset: str | None = None) -> Restriction:
    """The restriction of ``task`` for these names (families and preprocessors mixed) and ``preset``.

    A :class:`MetalearnError` for a name that is neither a family nor a preprocessor of ``task`` (listing the
    valid names), for an unknown preset, and when nothing is left of one kind.
    """
    estimators, preprocessors = names_of(task)
    include, exclude = split_names(include), split_names(exclude)
    unknown = [name for name in include + exclude if name not in estimators and name not in preprocessors]
    if unknown:
        raise MetalearnError(f"unknown name(s) {', '.join(map(repr, unknown))} for {task}; estimator families: "
                             f"{', '.join(estimators)}; feature preprocessors: {', '.join(preprocessors)}")
    ranges: Mapping[str, Any] = {}
    if preset is not None:
        chosen = PRESETS[check_choice("preset", preset, PRESETS)]
        estimators = tuple(name for name in estimators if name in chosen.families[task])
        preprocessors = tuple(name for name in preprocessors if name in chosen.preprocessors)
        ranges = chosen.ranges
    kept_estimators = _kept("estimator families", estimators, include, exclude, names_of(task)[0])
    kept_preprocessors = _kept("feature preprocessors", preprocessors, include, exclude, names_of(task)[1])
    kept_ranges = tuple((name, tuple(value)) for name, value in ranges.items() if name.split(":")[0] in kept_estimators)
    return Restriction(task, kept_estimators, kept_preprocessors, kept_ranges)
