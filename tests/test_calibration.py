"""The SVM families fit and predict on data with a class of 1 to 3 rows (their calibration folds shrink)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import SVC, LinearSVC

from metalearn.calibration import RareClassFolds, stratified_fold_count
from metalearn.families import CALIBRATION_CV, calibrated


@pytest.mark.parametrize("rare", [1, 2, 3])
@pytest.mark.parametrize("svm", [LinearSVC(dual="auto"), SVC()])
def test_a_calibrated_svm_fits_with_a_rare_class(rare: int, svm: object) -> None:
    rng = np.random.default_rng(0)
    y = np.array(["a"] * 40 + ["b"] * 30 + ["c"] * rare)
    X = rng.normal(size=(len(y), 4)) + (y == "b")[:, None] * 2.0
    model = calibrated(svm).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X)) <= {"a", "b", "c"}
    assert len(model.calibrated_classifiers_) == stratified_fold_count(rare, CALIBRATION_CV) == {1: 2, 2: 2, 3: 3}[rare]


def test_the_folds_stay_stratified_when_every_class_is_large() -> None:
    y = np.repeat([0, 1, 2], 10)
    folds = list(RareClassFolds(3).split(np.zeros((30, 1)), y))
    assert len(folds) == 3 == RareClassFolds(3).get_n_splits(y=y)
    for _, test in folds:  # every class in every fold, 3 or 4 of its 10 rows
        assert set(np.bincount(y[test], minlength=3)) <= {3, 4}
