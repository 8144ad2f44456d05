"""The folds of the SVM families' sigmoid calibration, safe with a class of very few rows.

scikit-learn's ``CalibratedClassifierCV(cv=3)`` refuses a training set in which a class has fewer than 3 rows
("Requesting 3-fold cross-validation but provided less than 3 examples for at least one class"), so an SVM
could not be fitted at all on data with a rare class. :class:`RareClassFolds` gives stratified folds that
shrink to the rarest class (never under 2 folds); a class of one row then sits in one fold only, and
scikit-learn's calibration gives it probability 0 in the members trained without it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold


def stratified_fold_count(smallest: int, folds: int) -> int:
    """How many stratified folds a target whose rarest class has ``smallest`` rows gets: ``folds``, fewer for
    a rarer class, never under 2 (the one rule of the search's CV and of the SVMs' calibration)."""
    return max(2, min(folds, smallest))


class RareClassFolds:
    """Stratified ``folds``-fold splits, fewer where the rarest class has fewer rows (at least 2).

    It has no ``n_splits`` attribute on purpose: scikit-learn checks class counts against it before splitting.
    """

    def __init__(self, folds: int = 3) -> None:
        self.folds = folds

    def _splitter(self, y: Any) -> StratifiedKFold:
        smallest = int(np.unique(np.asarray(y), return_counts=True)[1].min())
        return StratifiedKFold(n_splits=stratified_fold_count(smallest, self.folds))

    def split(self, X: Any, y: Any, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The (train, test) index pairs of ``y``'s folds."""
        with warnings.catch_warnings():  # "the least populated class has only 1 member": expected here
            warnings.simplefilter("ignore")
            splits = list(self._splitter(y).split(X, y))
        yield from splits

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """How many folds ``y`` gets (``folds`` when ``y`` is not given)."""
        return self.folds if y is None else self._splitter(y).get_n_splits()

    def __repr__(self) -> str:
        return f"RareClassFolds(folds={self.folds})"
