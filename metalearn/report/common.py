"""Helpers shared by the report's builders: JSON-ready labels and numbers, section timing, pipeline roles."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from metalearn.datasets import Dataset
from metalearn.errors import MetalearnError
from metalearn.protocol import to_jsonable

#: the group / level name of a missing value
MISSING = "(missing)"


def as_label(value: Any) -> Any:
    """A class label as JSON: ints stay ints, everything else text."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, bool | int | str) else str(value)


def as_floats(values: Any, digits: int | None = None) -> list[Any]:
    """Numbers as a (nested) JSON list, optionally rounded; NaN and infinities as None."""
    array = np.asarray(values, dtype=float)
    if digits is not None:
        array = np.round(array, digits)
    return to_jsonable(array.tolist())


def thin(*arrays: np.ndarray, limit: int = 200) -> list[np.ndarray]:
    """At most ``limit`` evenly spaced points of aligned curves (first and last kept)."""
    n = len(arrays[0])
    if n <= limit:
        return list(arrays)
    idx = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
    return [a[idx] for a in arrays]


def error_text(exc: Exception) -> str:
    """``Type: first line of the message`` of a section that failed."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {detail}"


class SectionTimer:
    """Runs the report's steps, records their seconds and turns a failing step into an ``error`` entry."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, func: Callable[[], Any], warn: list[str]) -> Any:
        start = time.perf_counter()
        try:
            return func()
        except MetalearnError:
            raise
        except Exception as exc:  # one failing section must not lose the others
            warn.append(f"{name}: not computed ({error_text(exc)})")
            return {"error": error_text(exc)}
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


def is_fitted(estimator: Any) -> bool:
    try:
        check_is_fitted(estimator)
        return True
    except NotFittedError:
        return False
    except TypeError:
        return hasattr(estimator, "classes_")


def column_roles(pipeline: Any, dataset: Dataset) -> tuple[list[str], list[str]]:
    """Numeric and categorical input columns as the pipeline's ColumnTransformer sees them."""
    pre = getattr(pipeline, "named_steps", {}).get("preprocess") if hasattr(pipeline, "named_steps") else None
    transformers = getattr(pre, "transformers_", None) or getattr(pre, "transformers", None)
    if transformers:
        roles = {name: list(cols) for name, _, cols in transformers if isinstance(cols, list | tuple)}
        if "numeric" in roles or "categorical" in roles:
            cats = [c for c in roles.get("categorical", []) if c in dataset.X.columns]
            nums = [c for c in dataset.X.columns if c not in set(cats)]
            return nums, cats
    return list(dataset.numeric), list(dataset.categorical)


def eval_xy(test: Any, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The features and labels of a test split given as a Dataset or an ``(X, y)`` pair."""
    if isinstance(test, Dataset):
        X, y = test.X, test.y
    elif isinstance(test, tuple | list) and len(test) == 2:
        X, y = test
        X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=list(columns))
        y = pd.Series(np.asarray(y))
    else:
        raise MetalearnError("test must be a Dataset or an (X, y) pair")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise MetalearnError(f"the test split lacks columns of the dataset: {missing[:5]}")
    return X[list(columns)].reset_index(drop=True), pd.Series(y).reset_index(drop=True)


def align_proba(proba: np.ndarray, model_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probabilities in the column order of ``classes`` (zeros for a class the model never saw)."""
    full = np.zeros((len(proba), len(classes)))
    for j, cls in enumerate(model_classes):
        hit = np.flatnonzero(classes == cls)
        if len(hit):
            full[:, hit[0]] = proba[:, j]
    return full
