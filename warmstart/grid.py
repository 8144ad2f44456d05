"""``--strategy grid``: an exhaustive grid over a small space, run through the same trial loop as SMAC.

A grid maps hyperparameter names of the search space to lists of values: the default grid of each estimator
family (:data:`DEFAULT_GRIDS`, versioned by :data:`GRID_VERSION`), or a user's grid (``--grid FILE``, JSON or
YAML, read by :func:`load_grid`). Every family of the grid contributes the product of its own lists and of the
shared lists (data and feature preprocessing, ``class_weight``, ``target_transform``), all other
hyperparameters at their defaults; combinations the space forbids (or leaves inactive) are dropped and
counted. The families are those the grid names under ``classifier`` / ``regressor``, else those with a list
of their own in the grid, else every family of the (possibly restricted) space.

:class:`GridOptimizer` hands the points out through the ``ask`` / ``tell`` interface of a SMAC facade, so the
loop, the storage, the limits and a continued search work as for every other strategy.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ConfigSpace import Configuration, ConfigurationSpace
from smac.runhistory import TrialInfo, TrialValue

from metalearn.errors import MetalearnError
from metalearn.space import ALGORITHM_KEYS, canonical_json, complete_config

__all__ = ["DEFAULT_GRIDS", "GRID_VERSION", "GridOptimizer", "GridPlan", "grid_plan", "load_grid"]

#: version of :data:`DEFAULT_GRIDS`; bump on any change (it is recorded with every grid search)
GRID_VERSION = "2026.11-g1"
#: task -> family -> parameter (without the ``<family>:`` prefix) -> values; a family not listed runs its defaults
DEFAULT_GRIDS: dict[str, dict[str, dict[str, list[Any]]]] = {
    "classification": {
        "random_forest": {"n_estimators": [100, 300], "min_samples_leaf": [1, 5]},
        "extra_trees": {"n_estimators": [100, 300], "min_samples_leaf": [1, 5]},
        "hist_gradient_boosting": {"learning_rate": [0.05, 0.1, 0.2], "max_leaf_nodes": [15, 31]},
        "adaboost": {"n_estimators": [50, 200], "learning_rate": [0.1, 1.0]},
        "decision_tree": {"limit_depth": [True], "max_depth": [3, 5, 10], "min_samples_leaf": [1, 5]},
        "logistic_regression": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
        "sgd": {"alpha": [1e-5, 1e-4, 1e-3]},
        "linear_svc": {"C": [0.1, 1.0, 10.0]},
        "svc_rbf": {"C": [0.1, 1.0, 10.0, 100.0]},
        "k_neighbors": {"n_neighbors": [3, 5, 11, 21], "weights": ["uniform", "distance"]},
        "mlp": {"alpha": [1e-4, 1e-2]},
        "gaussian_nb": {},
        "lda": {},
        "lightgbm": {"learning_rate": [0.05, 0.1], "num_leaves": [15, 31]},
        "xgboost": {"learning_rate": [0.1, 0.3], "max_depth": [3, 6]},
        "catboost": {"depth": [4, 6]},
    },
    "regression": {
        "hist_gradient_boosting": {"learning_rate": [0.05, 0.1, 0.2], "max_leaf_nodes": [15, 31]},
        "random_forest": {"n_estimators": [100, 300], "min_samples_leaf": [1, 5]},
        "extra_trees": {"n_estimators": [100, 300], "min_samples_leaf": [1, 5]},
        "adaboost": {"n_estimators": [50, 200], "learning_rate": [0.1, 1.0]},
        "decision_tree": {"limit_depth": [True], "max_depth": [3, 5, 10], "min_samples_leaf": [1, 5]},
        "ridge": {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
        "lasso": {"alpha": [0.001, 0.01, 0.1, 1.0]},
        "elastic_net": {"alpha": [0.01, 0.1, 1.0], "l1_ratio": [0.2, 0.5, 0.8]},
        "linear_svr": {"C": [0.1, 1.0, 10.0]},
        "svr_rbf": {"C": [0.1, 1.0, 10.0, 100.0]},
        "k_neighbors": {"n_neighbors": [3, 5, 11, 21], "weights": ["uniform", "distance"]},
        "mlp": {"alpha": [1e-4, 1e-2]},
        "lightgbm": {"learning_rate": [0.05, 0.1], "num_leaves": [15, 31]},
        "xgboost": {"learning_rate": [0.1, 0.3], "max_depth": [3, 6]},
        "catboost": {"depth": [4, 6]},
    },
}


def load_grid(path: str | Path) -> dict[str, list[Any]]:
    """A grid file (JSON, or YAML for ``.yaml`` / ``.yml``): a mapping of hyperparameter names to value lists."""
    path = Path(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except FileNotFoundError:
        raise MetalearnError(f"no such grid file: {path}") from None
    except (OSError, ValueError, yaml.YAMLError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MetalearnError(f"cannot read the grid file {path}: {detail}") from None
    return check_grid(data)


def check_grid(data: Any) -> dict[str, list[Any]]:
    """``data`` as a grid: a non-empty mapping of names to non-empty lists (a single value counts as a list)."""
    if not isinstance(data, Mapping) or not data:
        raise MetalearnError("a grid is a mapping of hyperparameter names to lists of values, e.g. "
                             '{"logistic_regression:C": [0.1, 1, 10]}')
    grid = {}
    for name, values in data.items():
        values = list(values) if isinstance(values, list | tuple) else [values]
        if not values:
            raise MetalearnError(f"the grid gives no value for {name!r}")
        grid[str(name)] = values
    return grid


@dataclass
class GridPlan:
    """The points of a grid search: configurations of the space, how many combinations were dropped, the source."""

    configurations: list[Configuration]
    dropped: int = 0
    source: str = f"default grid {GRID_VERSION}"

    @property
    def size(self) -> int:
        return len(self.configurations)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "dropped": self.dropped, "source": self.source}


def _default_grid(task: str, families: tuple[str, ...]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {ALGORITHM_KEYS[task]: list(families)}
    for family in families:
        for name, values in DEFAULT_GRIDS[task].get(family, {}).items():
            grid[f"{family}:{name}"] = list(values)
    return grid


def _grid_families(grid: Mapping[str, list[Any]], key: str, families: tuple[str, ...]) -> list[str]:
    if key in grid:
        unknown = [f for f in grid[key] if f not in families]
        if unknown:
            raise MetalearnError(f"the grid names families {unknown} that this search may not use; it may use: "
                                 f"{', '.join(families)}")
        return list(dict.fromkeys(grid[key]))
    named = [f for f in families if any(name.startswith(f"{f}:") for name in grid)]
    return named or list(families)


def grid_plan(space: ConfigurationSpace, task: str, grid: Mapping[str, Any] | None = None) -> GridPlan:
    """The configurations of ``grid`` (the default grid when None) in ``space``, in a fixed order."""
    key = ALGORITHM_KEYS[task]
    families = tuple(space[key].choices)
    source = f"default grid {GRID_VERSION}" if grid is None else "grid file"
    grid = _default_grid(task, families) if grid is None else check_grid(grid)
    unknown = sorted(set(grid) - set(space))
    if unknown:
        raise MetalearnError(f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} in this search space "
                             f"(names look like 'logistic_regression:C' or 'scaling'; families it may use: "
                             f"{', '.join(families)})")
    shared = [name for name in grid if name != key and name.split(":")[0] not in families]
    configs, seen, dropped = [], set(), 0
    for family in _grid_families(grid, key, families):
        names = shared + [name for name in grid if name.startswith(f"{family}:")]
        for values in itertools.product(*(grid[name] for name in names)):
            try:
                config = complete_config(space, {key: family, **dict(zip(names, values, strict=True))})
            except MetalearnError:
                dropped += 1
                continue
            text = canonical_json(dict(config))
            if text not in seen:
                seen.add(text)
                configs.append(config)
    if not configs:
        raise MetalearnError(f"the grid has no valid point in this search space ({dropped} combinations dropped)")
    return GridPlan(configs, dropped, source)


@dataclass
class GridOptimizer:
    """The grid behind SMAC's ``ask`` / ``tell``: ``ask`` hands out the next point (None once all were asked)."""

    configurations: list[Configuration]
    _queue: deque[Configuration] = field(init=False)

    def __post_init__(self) -> None:
        self._queue = deque(self.configurations)

    def ask(self) -> TrialInfo | None:
        if not self._queue:
            return None
        config = self._queue.popleft()
        config.origin = "grid"
        return TrialInfo(config=config, budget=None, seed=0)

    def tell(self, info: TrialInfo, value: TrialValue) -> None:
        """A grid learns nothing from its results."""
