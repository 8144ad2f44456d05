"""Forests with ``class_weight="balanced"`` and labels that look like numbers (scikit-learn 1.9 fails on them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from metalearn.components import LabelSafeExtraTreesClassifier, LabelSafeRandomForestClassifier
from metalearn.pipeline import build_pipeline
from metalearn.space import default_configuration

PAIRS = [(LabelSafeRandomForestClassifier, RandomForestClassifier),
         (LabelSafeExtraTreesClassifier, ExtraTreesClassifier)]


@pytest.mark.parametrize(("safe", "plain"), PAIRS)
def test_balanced_forest_equals_scikit_learn_and_takes_digit_string_labels(safe: type, plain: type) -> None:
    X, y = load_wine(return_X_y=True)
    options = {"n_estimators": 15, "random_state": 0, "class_weight": "balanced"}
    ours, theirs = safe(**options).fit(X, y), plain(**options).fit(X, y)
    assert np.array_equal(ours.predict_proba(X), theirs.predict_proba(X))  # the same weights, by another path
    assert ours.class_weight == "balanced" and ours.get_params()["class_weight"] == "balanced"
    # anneal's labels: "1", "2", "3", "5", "U" (scikit-learn looks the label up as int("1") and fails)
    labels = np.array(["1", "2", "U"], dtype=object)[y]
    with pytest.raises(ValueError, match="not in class_weight"):
        plain(**options).fit(X, labels)
    fitted = safe(**options).fit(X, labels)
    assert list(fitted.classes_) == ["1", "2", "U"]
    assert np.array_equal(fitted.predict_proba(X), ours.predict_proba(X))
    weighted = safe(**options).fit(X, labels, sample_weight=np.full(len(y), 2.0))
    assert np.allclose(weighted.predict_proba(X), ours.predict_proba(X))


@pytest.mark.parametrize("family", ["random_forest", "extra_trees"])
def test_search_space_forests_fit_digit_string_labels(family: str) -> None:
    X, y = load_wine(return_X_y=True, as_frame=True)
    labels = pd.Series(np.array(["0", "1", "U"], dtype=object)[y.to_numpy()])
    config = dict(default_configuration(family), class_weight="balanced")
    pipeline = build_pipeline(config, list(X.columns), []).fit(X, labels)
    assert set(pipeline.predict(X)) <= {"0", "1", "U"} and pipeline.score(X, labels) > 0.9
