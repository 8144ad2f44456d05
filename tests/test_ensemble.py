"""Ensembles of a search's trials: greedy selection, the fitted ensemble, the search's final model, the record
in the knowledge base and the model file."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import breast_cancer_frame, messy_iris_frame
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.tree import DecisionTreeClassifier

from metalearn.datasets import from_frame
from metalearn.ensemble import EnsembleClassifier, ensemble_selection
from metalearn.evaluation import balanced_accuracy, score_proba
from metalearn.knowledge_base import KnowledgeBase
from metalearn.model_io import ModelBundle
from metalearn.service import save_search_model
from metalearn.warmstart.result import stored_ensemble, trials_from_runs
from metalearn.warmstart.search import SearchSettings, WarmStartSearch

FAST = {"folds": 3, "max_rows": 300}


def test_selection_combines_complementary_candidates_and_never_loses_to_the_best_single() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    labels = np.array([0, 1])
    truth = np.eye(2)[y]
    # two candidates each right on a different half of the rows, confidently wrong elsewhere; one weak one
    half = np.arange(400) < 200
    a = np.where(half[:, None], truth * 0.9 + 0.05, (1 - truth) * 0.55 + 0.225)
    b = np.where(~half[:, None], truth * 0.9 + 0.05, (1 - truth) * 0.55 + 0.225)
    weak = np.full((400, 2), 0.5)
    singles = [score_proba("balanced_accuracy", y, p, labels) for p in (a, b, weak)]
    weights, score = ensemble_selection([a, b, weak], y, labels, "balanced_accuracy", size=10)
    assert weights.sum() == pytest.approx(1.0) and weights[0] > 0 and weights[1] > 0
    assert score > max(singles) + 0.2
    mixed = sum(w * p for w, p in zip(weights, (a, b, weak), strict=True))
    assert score == pytest.approx(score_proba("balanced_accuracy", y, mixed, labels))
    _, best = ensemble_selection([weak, a], y, labels, "log_loss", size=5)
    assert best >= max(score_proba("log_loss", y, p, labels) for p in (weak, a))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_balanced_accuracy_is_scikit_learns() -> None:
    """The fast balanced accuracy ensemble selection uses equals scikit-learn's, also when a class is never
    predicted, when a predicted class is not in ``y``, and for string labels."""
    rng = np.random.default_rng(1)
    for n_classes, n in ((2, 7), (3, 50), (5, 400)):
        y = rng.integers(0, n_classes, n)
        predicted = np.where(rng.random(n) < 0.6, y, rng.integers(0, n_classes + 1, n))  # class n_classes: unseen
        assert balanced_accuracy(y, predicted) == pytest.approx(balanced_accuracy_score(y, predicted))
        names = np.array(list("abcdef"), dtype=object)
        assert balanced_accuracy(names[y], names[predicted]) == pytest.approx(
            balanced_accuracy_score(names[y], names[predicted]))
    assert balanced_accuracy([1, 1, 2], [2, 2, 2]) == 0.5


def test_ensemble_classifier_averages_members_over_all_classes() -> None:
    frame = messy_iris_frame().dropna()
    X, y = frame[["sepal_length", "sepal_width", "petal_length", "petal_width"]], frame["target"].to_numpy()
    first = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X[y != "setosa"], y[y != "setosa"])
    second = LogisticRegression(max_iter=500).fit(X, y)
    model = EnsembleClassifier.from_fitted([first, second], [0.25, 0.75])
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    proba = model.predict_proba(X)
    expected = 0.75 * second.predict_proba(X)
    expected[:, 1:] += 0.25 * first.predict_proba(X)
    np.testing.assert_allclose(proba, expected)
    assert set(model.predict(X)) <= set(model.classes_)
    with pytest.raises(ValueError, match="one weight per member"):
        EnsembleClassifier.from_fitted([first], [0.5, 0.5])


@pytest.fixture
def kb_path(tmp_path) -> str:
    return str(tmp_path / "kb.sqlite")


def test_search_ends_with_a_recorded_ensemble_that_saves_loads_and_predicts(kb: KnowledgeBase, tmp_path) -> None:
    dataset = from_frame(breast_cancer_frame(240), "target", "bc")
    result = WarmStartSearch(kb, SearchSettings(strategy="random", n_trials=8, ensemble_size=15, test_size=0.25,
                                                **FAST)).run(dataset)
    report = result.ensemble
    assert report is not None and result.status == "succeeded"
    assert report.oof_score >= report.best_single_oof_score
    assert sum(m["weight"] for m in report.members) == pytest.approx(1.0)
    numbers = {t.number for t in result.trials}
    assert {m["trial"] for m in report.members} <= numbers
    if len(report.members) > 1:
        assert isinstance(result.model, EnsembleClassifier)
    assert 0.5 < result.extra["test_score"] <= 1.0
    # the knowledge base keeps the ensemble as a run of the search, apart from its trials
    stored = kb.ensemble_of(result.search_id)
    assert stored["run_id"] == report.run_id and stored["score"] == pytest.approx(report.oof_score)
    trials = trials_from_runs(kb.runs_frame(search_id=result.search_id))
    assert [t.number for t in trials] == [t.number for t in result.trials]
    assert stored_ensemble(stored, trials)["members"] == [
        {"trial": m["trial"], "run_id": m["run_id"], "algorithm": m["algorithm"], "weight": pytest.approx(m["weight"]),
         "cv_score": m["cv_score"]} for m in report.members]
    body = result.to_json()["ensemble"]
    assert body["oof_score"] == pytest.approx(report.oof_score) and len(body["members"]) == len(report.members)
    # one model file, read back by ModelBundle, predicts as the in-memory ensemble does
    bundle = ModelBundle.load(save_search_model(result, dataset, tmp_path / "model.joblib", kb))
    test = result.extra["test"]
    np.testing.assert_array_equal(bundle.predict(test.X), result.model.predict(test.X))
    np.testing.assert_allclose(bundle.predict_proba(test.X), result.model.predict_proba(test.X))
    assert bundle.metadata["ensemble"]["members"] == body["members"]


def test_ensemble_size_zero_gives_the_single_best_pipeline(kb: KnowledgeBase) -> None:
    dataset = from_frame(breast_cancer_frame(150), "target", "bc")
    result = WarmStartSearch(kb, SearchSettings(strategy="random", n_trials=3, ensemble_size=0, **FAST)).run(dataset)
    assert result.ensemble is None and kb.ensemble_of(result.search_id) is None
    assert not isinstance(result.model, EnsembleClassifier) and hasattr(result.model, "steps")
