"""One home per concept: a model file's task, the best trial's ordering, scoring a fitted model, negated metrics.

Data: scikit-learn's diabetes table (442 real rows, a numeric target), fitted with a real ridge regression.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score, root_mean_squared_error

from metalearn.drift import compare, profile_of
from metalearn.errors import MetalearnError
from metalearn.evaluation import score_model, worst_score
from metalearn.metafeatures import extract_metafeatures
from metalearn.model_io import ModelBundle
from metalearn.protocol import METRICS, NEGATED_METRICS, task_of
from metalearn.warmstart.budget import FIXED_RESERVE, final_model_reserve, refit_seconds
from metalearn.warmstart.result import SearchResult, Trial, incumbent, ranked
from metalearn.warmstart.search import SearchSettings


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


def _trial(number: int, score: float | None, budget: float = 1.0, status: str = "success",
           seconds: float = 1.0) -> Trial:
    return Trial(number, {"n": number}, "ridge", "smac", status, score, 0.0, seconds, 0.0, budget=budget)


def test_task_of_reads_the_task_else_the_metric() -> None:
    assert task_of({"task": "classification", "metric": "r2"}) == "classification"
    assert task_of({"metric": "r2"}) == task_of({"task": None, "metric": "rmse"}) == "regression"
    assert task_of({"metric": "log_loss"}) == "classification"
    assert task_of({}) is None and task_of({"metric": "no-such-metric"}) is None
    with pytest.raises(MetalearnError, match="unknown task"):
        task_of({"task": "ranking"})
    result = SearchResult(None, {"name": "d"}, SearchSettings(metric="mae"), [], "succeeded")
    assert result.model_metadata()["task"] == "regression"  # no dataset task: the metric's


def test_a_regression_model_file_without_a_task_is_drift_checked_as_regression(diabetes: pd.DataFrame,
                                                                              tmp_path: Path) -> None:
    X, y = diabetes.drop(columns="target"), diabetes["target"]
    model = Ridge().fit(X, y)
    features = extract_metafeatures(X, y, task="regression").features
    bundle = ModelBundle(model, {"metric": "r2", "target": "target", "columns": list(X.columns), "categorical": []})
    bundle.profile = profile_of(X, [], metafeatures=features, reference={"metric": "r2", "score": 0.5,
                                                                         "source": "cross-validation"})
    loaded = ModelBundle.load(bundle.save(tmp_path / "model.joblib"))
    assert "task" not in loaded.metadata
    report = compare(loaded, diabetes)
    # profiled as classification, the same rows were 0.12 away from their own regression meta-features
    assert report["metafeature_distance"] == 0.0
    assert not any("meta-feature" in reason for reason in report["reasons"])
    assert "--task regression" in report["retrain"]["command"]
    assert report["score"]["new"] == pytest.approx(r2_score(y, model.predict(X)))


def test_score_model_is_the_higher_is_better_metric(diabetes: pd.DataFrame) -> None:
    X, y = diabetes.drop(columns="target"), diabetes["target"]
    model = Ridge().fit(X, y)
    assert score_model(model, X, y, "rmse") == pytest.approx(-root_mean_squared_error(y, model.predict(X)))
    assert score_model(model, X, y, "r2") == pytest.approx(r2_score(y, model.predict(X)))
    with pytest.raises(MetalearnError, match="unknown metric"):
        score_model(model, X, y, "no-such-metric")


def test_negated_metrics_are_the_neg_scorers_and_worst_scores_hold() -> None:
    assert set(NEGATED_METRICS) == {"log_loss", "rmse", "mae", "mape"}
    assert all(METRICS[m].startswith("neg_") for m in NEGATED_METRICS)
    assert {m: worst_score(m) for m in METRICS} == {
        "balanced_accuracy": 0.0, "accuracy": 0.0, "f1_macro": 0.0, "roc_auc": 0.0, "log_loss": -10.0,
        "r2": -1.0, "rmse": -1e6, "mae": -1e6, "mape": -10.0}


def test_ranked_orders_by_budget_then_score_then_number_and_names_the_incumbent() -> None:
    trials = [_trial(1, 0.9, budget=0.3), _trial(2, 0.7), _trial(3, None, status="crash"), _trial(4, 0.8),
              _trial(5, 0.8), _trial(6, float("nan"))]
    assert [t.number for t in ranked(trials)] == [4, 5, 2, 1]
    assert incumbent(trials) is ranked(trials)[0]
    assert incumbent(trials, 1).number == 1 and incumbent(trials, 2).number == 2
    assert incumbent(trials[2:3]) is None and ranked([]) == []


def test_the_reserve_counts_the_best_trials_as_ranked() -> None:
    # an r2 of exactly 0 is better than -0.5: its refit is the one kept in reserve
    trials = [_trial(1, -0.5, seconds=40.0), _trial(2, 0.0, seconds=4.0), _trial(3, 0.9, budget=0.3, seconds=1.0)]
    reserve = final_model_reserve(trials, 3, 1.0, members=1, budget=1000.0)
    assert reserve == pytest.approx(FIXED_RESERVE + refit_seconds(trials[1], 3))
