"""Regression end to end: the CLI on a real regression table, task detection and forcing, predictions,
the knowledge base keeping tasks apart, and the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, breast_cancer_frame, run_cli, wine_frame
from sklearn.datasets import load_diabetes

from metalearn.client import Client
from metalearn.datasets import from_frame
from metalearn.knowledge_base import KnowledgeBase
from metalearn.warmstart import Recommender, SearchSettings, WarmStartSearch

REGRESSION_CORPUS = SHARED / "datasets-regression"
FAST = {"folds": 3, "max_rows": 300}


def _diabetes(n: int = 240, seed: int = 0) -> pd.DataFrame:
    frame = load_diabetes(as_frame=True).frame
    return frame.sample(n=n, random_state=seed).reset_index(drop=True)


@pytest.mark.skipif(not REGRESSION_CORPUS.is_dir(), reason="../shared/datasets-regression is not present")
def test_cli_regression_search_predict_and_task_errors(tmp_path: Path) -> None:
    table = REGRESSION_CORPUS / "imports-85-price.parquet"  # 201 cars, 10 categorical columns, missing values
    db, model = str(tmp_path / "kb.sqlite"), tmp_path / "model.joblib"
    done = run_cli("search", str(table), "--target", "price", "--trials", "4", "--folds", "3", "--db", db,
                "--json", "--output", str(model))
    assert done.returncode == 0, done.stderr[-2000:]
    body = json.loads(done.stdout)
    assert body["dataset"]["task"] == "regression" and body["metric"] == "r2"
    assert "task: regression" in done.stderr and "distinct values" in done.stderr
    assert 0.3 < body["best"]["score"] <= 1.0  # cross-validated R^2 of car prices
    preds = run_cli("predict", str(model), str(table))
    assert preds.returncode == 0, preds.stderr
    values = pd.read_csv(pd.io.common.StringIO(preds.stdout))["prediction"]
    actual = pd.read_parquet(table)["price"]
    assert values.dtype.kind == "f" and len(values) == len(actual)
    assert np.corrcoef(values[actual.notna()], actual.dropna())[0, 1] > 0.8
    rmse = run_cli("search", str(table), "--target", "price", "--trials", "2", "--folds", "3", "--metric", "rmse",
                "--ensemble-size", "0", "--db", db, "--json")
    assert rmse.returncode == 0, rmse.stderr[-2000:]
    assert json.loads(rmse.stdout)["best"]["score"] < 0  # errors are stored and printed negated
    wrong_metric = run_cli("search", str(table), "--target", "price", "--metric", "balanced_accuracy", "--db", db)
    assert wrong_metric.returncode == 2 and "not a regression metric" in wrong_metric.stderr
    forced = run_cli("search", str(table), "--target", "make", "--task", "regression", "--db", db)
    assert forced.returncode == 2 and "numeric" in forced.stderr


def _seed(kb: KnowledgeBase) -> None:
    for name, frame, family in (("wine", wine_frame(), "wine"), ("bc", breast_cancer_frame(120), "bc")):
        WarmStartSearch(kb, SearchSettings(strategy="cold", n_trials=3, refit=False, **FAST)).run(
            from_frame(frame, "target", name, family=family))
    for seed, family in ((1, "diabetes-a"), (2, "diabetes-b")):
        WarmStartSearch(kb, SearchSettings(strategy="cold", n_trials=3, refit=False, **FAST)).run(
            from_frame(_diabetes(200, seed), "target", f"diabetes{seed}", family=family))


def test_neighbours_portfolio_and_recommendations_never_mix_tasks(tmp_path: Path) -> None:
    kb = KnowledgeBase(str(tmp_path / "kb.sqlite"))
    _seed(kb)
    tasks = {d.id: d.task for d in kb.datasets()}
    assert sorted(tasks.values()) == ["classification", "classification", "regression", "regression"]
    stats = kb.stats()["by_task"]
    assert stats["regression"]["datasets"] == 2 and stats["classification"]["datasets"] == 2
    assert stats["regression"]["runs"] == 6 and stats["classification"]["runs"] == 6
    query = from_frame(_diabetes(220, 9), "target", "query")
    engine = WarmStartSearch(kb, SearchSettings(n_trials=1, **FAST))
    _, features = engine.prepare(query)
    report = engine.recommend(query, features, top=6)
    assert report.neighbors and {tasks[n.dataset_id] for n in report.neighbors} == {"regression"}
    assert all(r.configuration.get("regressor") for r in report.recommendations)
    assert all(tasks[e.dataset_id] == "regression" for r in report.recommendations for e in r.evidence)
    regression = Recommender(kb, "r2")
    assert {tasks[d] for d in regression.scores.index} == {"regression"}
    assert all(tasks[d] == "regression" for d in regression.info)
    classification = Recommender(kb, "balanced_accuracy")
    assert {tasks[d] for d in classification.scores.index} == {"classification"}
    wine = from_frame(wine_frame(), "target", "wine")
    _, wine_features = WarmStartSearch(kb).prepare(wine)
    assert {tasks[n.dataset_id] for n in classification.neighbors(wine_features, k=5)} == {"classification"}
    kb.dispose()


def test_regression_through_the_http_api(open_server: SimpleNamespace) -> None:
    frame = _diabetes(200)
    with Client(open_server.url, timeout=120) as client:
        uploaded = client.upload_dataset(frame, target="target", name="diabetes")
        assert uploaded["task"] == "regression" and uploaded["n_classes"] is None
        assert "distinct values" in uploaded["task_reason"]
        forced = client.upload_dataset(frame.assign(target=(frame["target"] > 140).astype(int)), target="target",
                                       task="classification", name="diabetes_high")
        assert forced["task"] == "classification" and forced["task_reason"] == "forced by the request"
        report = client.recommend(uploaded["id"], top=3)
        assert report["metric"] == "r2" and report["dataset"]["task"] == "regression"
        started = client.start_search(uploaded["id"], n_trials=3, folds=3, max_rows=200)
        final = client.wait(started["id"], progress=False, timeout=300)
        assert final["status"] == "succeeded" and final["metric"] == "r2", final
        answer = client.predict(started["id"], frame.drop(columns="target").head(5))
        assert len(answer["predictions"]) == 5 and all(isinstance(v, float) for v in answer["predictions"])
        assert answer["probabilities"] is None and answer["classes"] is None
