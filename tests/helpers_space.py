"""What the space tests of both tasks share (tests/test_space.py, tests/test_space_regression.py): train/test
splits of small tables, sampled configurations, configurations with a feature preprocessor, and one-thread fits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from metalearn.space import build_space, canonical_config, default_configuration

N_SAMPLED = 300
SEED = 2026
#: boosting rounds / trees / iterations of a fit in the sampled-configuration tests: at least every range's lower
#: bound (8..16), so the capped configuration is still one of the space's; a 2000-round CatBoost of depth 10 takes a
#: minute on one core, 16 rounds a fraction of a second, and the code path is the same
MAX_ROUNDS = 16
ROUNDS = (":n_estimators", ":iterations", ":max_iter")
FIT_WARNINGS = ["ignore::sklearn.exceptions.ConvergenceWarning", "ignore::UserWarning", "ignore::RuntimeWarning"]


@pytest.fixture(autouse=True)
def single_thread():
    """One thread for OpenMP/BLAS (HistGradientBoosting, PCA, ...): on a shared 2-core machine oversubscribed
    OpenMP makes tiny fits up to 30x slower. Autouse in every module that imports it."""
    with threadpool_limits(limits=1):
        yield


@dataclass(frozen=True)
class Split:
    """A table split into train and test rows, with its numeric and categorical columns."""

    name: str
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return len(self.numeric) + len(self.categorical)

    def with_test(self, X_test: pd.DataFrame) -> Split:
        """The same split with other test features (e.g. unseen categories)."""
        return dataclasses.replace(self, X_test=X_test)

    def categorical_only(self) -> Split:
        """The split restricted to its categorical columns."""
        columns = list(self.categorical)
        return Split("categorical_only", self.X_train[columns], self.y_train, self.X_test[columns], self.y_test, (),
                     self.categorical)


def split(name: str, X: pd.DataFrame, y: np.ndarray, numeric: list[str], categorical: list[str],
          regression: bool = False) -> Split:
    """30% test rows (seeded): stratified by class, or, for ``regression``, plain with a float target."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=None if regression else y,
                                                        random_state=0)
    if regression:
        y_train, y_test = np.asarray(y_train, float), np.asarray(y_test, float)
    return Split(name, X_train, y_train, X_test, y_test, tuple(numeric), tuple(categorical))


@cache
def sampled(task: str = "classification") -> tuple[dict, ...]:
    """``N_SAMPLED`` configurations of ``task``'s space, sampled with ``SEED``."""
    return tuple(dict(c) for c in build_space(seed=SEED, task=task).sample_configuration(N_SAMPLED))


def capped(config: dict) -> dict:
    """``config`` with its number of boosting rounds / trees / iterations capped at ``MAX_ROUNDS`` (the rest as
    sampled): every structural choice is still fitted, in a fraction of the time."""
    return {name: min(value, MAX_ROUNDS) if name.endswith(ROUNDS) else value for name, value in config.items()}


def fit_failures(cases: Iterable[tuple[dict, Split]], fit_and_check: Callable[[dict, Split], object]) -> list[str]:
    """``fit_and_check`` on every (configuration, split); one readable line per failure."""
    failures = []
    for config, table in cases:
        try:
            fit_and_check(config, table)
        except Exception as exc:  # collect all failures for one readable report
            failures.append(f"{table.name}: {type(exc).__name__}: {exc}\n  config={canonical_config(config)}")
    return failures


def with_preprocessing(algorithm: str, choice: str, task: str = "classification", **params: object) -> dict:
    """The default configuration of ``algorithm`` with the feature preprocessor ``choice`` and its ``params``."""
    prefix = f"feature_preprocessing:{choice}:"
    return (default_configuration(algorithm, task=task) | {"feature_preprocessing": choice}
            | {prefix + name: value for name, value in params.items()})
