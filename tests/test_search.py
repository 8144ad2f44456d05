"""Warm-started search end to end: strategies, evidence, interruption, the feedback loop, the Python API."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import POSTGRES_URL, _reset_postgres, breast_cancer_frame, messy_iris_frame, run_cli, wine_frame

import metalearn
from metalearn.datasets import from_frame
from metalearn.knowledge_base import KnowledgeBase, RunRecord
from metalearn.knowledge_base.snapshot import export_snapshot, import_snapshot
from metalearn.report import report_for_result
from metalearn.space import default_configuration
from metalearn.warmstart import Recommender, SearchSettings, WarmStartSearch

FAST = {"folds": 3, "max_rows": 300}


@pytest.fixture
def kb_path(tmp_path: Path) -> str:
    """SQLite only here (search tests are the slow ones); PostgreSQL has its own search test below."""
    return str(tmp_path / "kb.sqlite")


@pytest.mark.skipif(not POSTGRES_URL, reason="METALEARN_TEST_POSTGRES_URL not set (.ci/run starts PostgreSQL)")
def test_warm_search_feedback_loop_on_postgresql(seeded_file: tuple[Path, list[int]], tmp_path: Path) -> None:
    _reset_postgres(POSTGRES_URL)
    kb, template = KnowledgeBase(POSTGRES_URL), KnowledgeBase(str(seeded_file[0]))
    try:
        export_snapshot(template, tmp_path / "seeded.json.gz")  # the module's tiny knowledge base, moved to PostgreSQL
        assert import_snapshot(kb, tmp_path / "seeded.json.gz")["runs"] == template.stats()["runs"] >= 15
        dataset = from_frame(breast_cancer_frame(150), "target", "query")
        result = WarmStartSearch(kb, SearchSettings(n_trials=4, workers=1, **FAST)).run(dataset)
        assert result.trials[0].origin == "warm_start" and result.status == "succeeded"
        stored = kb.runs_frame(search_id=result.search_id)
        assert len(stored) == 4 and kb.search(result.search_id)["best_run_id"] == result.best.run_id
        again = WarmStartSearch(kb, SearchSettings(n_trials=1, **FAST))
        _, features = again.prepare(from_frame(breast_cancer_frame(149), "target", "near"))
        report = again.recommender.recommend(features, top=3)
        assert report.neighbors[0].name == "query"  # the run just stored is found again
        assert any(e.dataset == "query" for r in report.recommendations for e in r.evidence)
    finally:
        kb.dispose(), template.dispose()


def _seeded_kb(kb: KnowledgeBase) -> list[int]:
    """A tiny knowledge base: cold searches on three real datasets from different families."""
    ids = []
    for name, frame, family in (("wine", wine_frame(), "wine"), ("iris", messy_iris_frame(), "iris"),
                                ("bc", breast_cancer_frame(120, seed=3), "bc")):
        dataset = from_frame(frame, "target", name, family=family)
        WarmStartSearch(kb, SearchSettings(strategy="cold", n_trials=5, refit=False, **FAST)).run(dataset)
        ids.append(kb.dataset_by_hash(dataset.content_hash).id)
    return ids


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """The tiny knowledge base of :func:`_seeded_kb` in a SQLite file, built once for the module; its dataset ids."""
    path = tmp_path_factory.mktemp("seeded") / "kb.sqlite"
    kb = KnowledgeBase(str(path))
    try:
        return path, _seeded_kb(kb)
    finally:
        kb.dispose()


@pytest.fixture
def seeded(seeded_file: tuple[Path, list[int]], kb_path: str) -> Iterator[tuple[KnowledgeBase, list[int]]]:
    """A copy of the module's tiny knowledge base (SQLite's online backup) for one test to add to; its dataset ids
    (wine, iris, bc)."""
    source, ids = seeded_file
    with contextlib.closing(sqlite3.connect(source)) as original, contextlib.closing(sqlite3.connect(kb_path)) as copy:
        original.backup(copy)
    kb = KnowledgeBase(kb_path)
    yield kb, ids
    kb.dispose()


@pytest.mark.parametrize("strategy", ["warm", "cold", "random"])
def test_each_strategy_end_to_end(request: pytest.FixtureRequest, strategy: str) -> None:
    kb = request.getfixturevalue("seeded")[0] if strategy == "warm" else request.getfixturevalue("kb")
    dataset = from_frame(breast_cancer_frame(150), "target", "query")
    runs_before = kb.stats()["runs"]
    # SMAC's Sobol design for a cold search sizes itself by the trial budget and drops forbidden points:
    # 8 trials leave it one point. CatBoost is left out: SMAC's pick of it alone (1,000 rounds) took 3/4 of the time
    n = 8 if strategy == "cold" else 4
    settings = SearchSettings(strategy=strategy, n_trials=n, exclude=["catboost"], **FAST)
    result = WarmStartSearch(kb, settings).run(dataset)
    assert "catboost" not in {t.configuration["classifier"] for t in result.trials}
    assert result.status == "succeeded" and len(result.trials) == n
    assert kb.stats()["runs"] == runs_before + n + (result.ensemble is not None)  # trials + the ensemble's run
    assert 0.5 < result.best_score <= 1.0
    predictions = result.model.predict(dataset.X)
    assert (predictions == dataset.y).mean() > 0.8  # refit on all data
    origins = {t.origin for t in result.trials}
    expected = {"warm": {"warm_start"}, "cold": {"smac_initial"}, "random": {"random"}}[strategy]
    assert expected <= origins
    traj = result.trajectory
    assert list(traj["trial"]) == list(range(1, n + 1)) and traj["best_so_far"].dropna().is_monotonic_increasing
    stored = kb.search(result.search_id)
    assert stored["status"] == "succeeded" and stored["best_run_id"] == result.best.run_id


def test_warm_start_begins_with_recommendations_and_evidence(seeded: tuple[KnowledgeBase, list[int]]) -> None:
    kb, _ = seeded
    dataset = from_frame(breast_cancer_frame(150), "target", "query")
    engine = WarmStartSearch(kb, SearchSettings(n_trials=3, n_warm=3, **FAST))
    _, features = engine.prepare(dataset)
    report = engine.recommend(dataset, features, top=3)
    body = report.to_json()
    assert {"dataset", "neighbors", "recommendations"} <= set(body)
    assert [r["rank"] for r in body["recommendations"]] == [1, 2, 3]
    first = report.recommendations[0]
    assert first.source in ("neighbors", "portfolio") and first.evidence
    neighbor_names = {n.name for n in report.neighbors}
    for e in first.evidence:
        assert e.dataset in {"wine", "iris", "bc"} and 0 <= e.score <= 1
    assert "query" not in neighbor_names
    json.dumps(body, allow_nan=False)
    result = engine.run(dataset)
    assert result.trials[0].origin == "warm_start"
    assert result.trials[0].configuration == report.recommendations[0].configuration


def test_exclusions_and_self_exclusion(seeded: tuple[KnowledgeBase, list[int]]) -> None:
    kb, _ = seeded
    wine = from_frame(wine_frame(), "target", "wine", family="wine")
    recommender = Recommender(kb)
    _, features = WarmStartSearch(kb).prepare(wine)
    names = {n.name for n in recommender.neighbors(features, k=5, exclude_hashes={wine.content_hash})}
    assert names == {"iris", "bc"}
    names = {n.name for n in recommender.neighbors(features, k=5, exclude_families={"iris"})}
    assert names == {"wine", "bc"}
    report = recommender.recommend(features, top=5, exclude_families={"wine", "iris"},
                                   exclude_hashes={wine.content_hash})
    assert all(e.dataset == "bc" for r in report.recommendations for e in r.evidence)


def test_cross_evaluated_winner_of_a_held_out_dataset_does_not_leak_back(
        seeded: tuple[KnowledgeBase, list[int]]) -> None:
    """A configuration found on wine and cross-evaluated on the others is hidden when wine's family is out."""
    kb, (wine_id, iris_id, bc_id) = seeded
    winner = {**default_configuration("gaussian_nb"), "gaussian_nb:var_smoothing": 3.3e-7}
    run = {"config": winner, "algorithm": "gaussian_nb", "metric": "balanced_accuracy", "status": "success",
           "score": 1.0, "seconds": 0.1}
    kb.record_runs([RunRecord(dataset_id=wine_id, origin="smac", **run)]
                   + [RunRecord(dataset_id=d, origin="cross_eval", **run) for d in (iris_id, bc_id)])
    wine = from_frame(wine_frame(), "target", "wine", family="wine")
    _, features = WarmStartSearch(kb).prepare(wine)
    recommender = Recommender(kb)
    winner_id = kb.best_configurations(iris_id, "balanced_accuracy", limit=1)[0].configuration_id
    assert kb.configurations([winner_id])[winner_id] == winner
    open_report = recommender.recommend(features, top=5)
    assert open_report.recommendations[0].configuration_id == winner_id
    held_out = recommender.recommend(features, top=20, exclude_families={"wine"})
    assert winner_id not in {r.configuration_id for r in held_out.recommendations}
    assert winner_id in recommender.hidden_configurations({wine_id})
    assert winner_id not in {c for c, _ in recommender.portfolio({wine_id})}
    assert winner_id in {c for c, _ in recommender.portfolio()}


def test_feedback_loop_near_duplicate_gets_the_winner(kb: KnowledgeBase) -> None:
    frame = breast_cancer_frame(200)
    first = WarmStartSearch(kb, SearchSettings(strategy="cold", n_trials=6, refit=False, **FAST)).run(
        from_frame(frame, "target", "original"))
    rng = np.random.default_rng(0)
    near = frame.drop(index=range(5)).reset_index(drop=True)
    numeric = near.columns.drop("target")
    near[numeric] = near[numeric] * (1 + rng.normal(0, 1e-3, size=(len(near), len(numeric))))
    duplicate = from_frame(near, "target", "near_duplicate")
    assert duplicate.content_hash != from_frame(frame, "target").content_hash
    engine = WarmStartSearch(kb, SearchSettings(n_trials=2, **FAST))
    _, features = engine.prepare(duplicate)
    top = engine.recommend(duplicate, features, top=3).recommendations[0]
    assert top.configuration == first.best.configuration
    assert top.evidence[0].dataset == "original"


def test_interrupted_search_keeps_finished_trials(tmp_path: Path) -> None:
    db = str(tmp_path / "kb.sqlite")
    csv = tmp_path / "bc.csv"
    breast_cancer_frame(300).to_csv(csv, index=False)
    proc = subprocess.Popen([sys.executable, "-m", "metalearn.cli", "search", str(csv), "--target", "target",
                             "--trials", "500", "--strategy", "random", "--folds", "3", "--db", db, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kb = KnowledgeBase(db)

    def random_runs() -> int:  # the shipped seed may be loaded too: count this search's trials only
        return kb.stats()["runs_by_origin"].get("random", 0)

    deadline = time.time() + 120
    while time.time() < deadline and random_runs() < 3:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    runs = random_runs()
    assert runs >= 3
    result = json.loads(stdout)
    assert result["status"] == "interrupted" and result["n_trials"] == runs
    # the honest state: a signal interrupts a search ("cancelled" is for an explicit cancel request)
    assert kb.search(result["search_id"])["status"] == "interrupted"
    # a hard kill loses nothing that was written either
    proc = subprocess.Popen([sys.executable, "-m", "metalearn.cli", "search", str(csv), "--target", "target",
                             "--trials", "500", "--strategy", "random", "--folds", "3", "--db", db, "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.time() < deadline + 60 and random_runs() < runs + 2:
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert random_runs() >= runs + 2


def test_python_api_and_autoclassifier(kb_path: str) -> None:
    frame = messy_iris_frame()
    X, y = frame.drop(columns="target"), frame["target"]
    clf = metalearn.AutoClassifier(n_trials=3, folds=3, kb=kb_path)
    assert clf.get_params()["n_trials"] == 3
    clf.fit(X, y)
    assert clf.score(X, y) > 0.8
    assert clf.predict_proba(X).shape == (150, 3)
    assert set(clf.predict(X)) <= set(y)
    assert len(clf.leaderboard_) == 3 and clf.best_config_ is not None
    assert clf.ensemble_ is not None and clf.ensemble_.oof_score >= clf.ensemble_.best_single_oof_score
    # the only dataset in the knowledge base is the query itself: library defaults, flagged as such
    report = metalearn.recommend(X, y, kb=kb_path, top=2)
    assert [r.source for r in report.recommendations] == ["defaults", "defaults"]
    assert report.neighbors == []


def test_cli_search_json_and_predict(tmp_path: Path) -> None:
    db, model = str(tmp_path / "kb.sqlite"), tmp_path / "model.joblib"
    csv = tmp_path / "wine.csv"
    wine_frame().to_csv(csv, index=False)
    proc = run_cli("search", str(csv), "--target", "target", "--trials", "3", "--folds", "3", "--db", db, "--json",
                   "--output", str(model))
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert {"search_id", "strategy", "n_trials", "best", "trials"} <= set(body)
    assert body["n_trials"] == 3 and {"score", "algorithm", "configuration"} <= set(body["best"])
    assert all({"score", "status", "seconds", "origin"} <= set(t) for t in body["trials"])
    preds = run_cli("predict", str(model), str(csv))
    assert preds.returncode == 0, preds.stderr
    lines = preds.stdout.strip().splitlines()
    assert lines[0] == "prediction" and len(lines) == 179


@pytest.mark.parametrize("strategy", ["hyperband", "successive-halving"])
def test_multi_fidelity_stores_budgets_and_recommends_full_budget_only(kb: KnowledgeBase, strategy: str) -> None:
    dataset = from_frame(breast_cancer_frame(200), "target", "bc")
    result = WarmStartSearch(kb, SearchSettings(strategy=strategy, n_trials=6, min_budget=0.3, **FAST)).run(dataset)
    budgets = {t.budget for t in result.trials}
    assert min(budgets) < 1.0 and result.status == "succeeded"
    stored = kb.runs_frame(search_id=result.search_id)
    assert sorted(stored["budget"].round(4)) == sorted(round(t.budget, 4) for t in result.trials)
    full = set(stored.loc[stored["budget"] == 1.0, "configuration_id"])
    assert set(kb.performance("balanced_accuracy")["configuration_id"]) == full
    assert result.best.budget == max(t.budget for t in result.trials if t.status == "success")


def test_parallel_trials_on_a_local_dask_cluster(kb: KnowledgeBase) -> None:
    dataset = from_frame(breast_cancer_frame(150), "target", "bc")
    settings = SearchSettings(strategy="random", n_trials=6, workers=2, trial_time_limit=60, **FAST)
    result = WarmStartSearch(kb, settings).run(dataset)
    stored = kb.runs_frame(search_id=result.search_id)
    assert len(result.trials) == 6 and len(stored) == 6  # nothing lost, nothing written twice
    assert stored["configuration_id"].is_unique
    assert [t.number for t in result.trials] == list(range(1, 7))


def test_test_split_is_kept_aside(kb: KnowledgeBase) -> None:
    dataset = from_frame(breast_cancer_frame(200), "target", "bc")
    result = WarmStartSearch(kb, SearchSettings(strategy="random", n_trials=2, test_size=0.25, **FAST)).run(dataset)
    test = result.extra["test"]
    assert test.n_rows == 50 and set(test.y) == set(dataset.y)
    assert 0.5 < result.to_json()["test_score"] <= 1.0
    report = report_for_result(result, dataset.subset(range(10)), test=test, shap=False)  # scores the test split
    assert np.asarray(report.data["sections"]["confusion-matrix"]["matrix"]).sum() == 50


def test_unusable_recommendations_are_reported_never_silently_dropped(kb: KnowledgeBase, caplog) -> None:
    """A stored configuration the space rejects is still recommended; the search says it could not use it."""
    wine = from_frame(wine_frame(), "target", "wine", family="wine")
    wine_id, _ = WarmStartSearch(kb).prepare(wine)
    broken = {**default_configuration("random_forest"), "random_forest:n_estimators": 10**9}  # out of range
    kb.record_runs([RunRecord(dataset_id=wine_id, config=broken, algorithm="random_forest",
                              metric="balanced_accuracy", status="success", score=1.0, seconds=0.1, origin="smac")])
    dataset = from_frame(breast_cancer_frame(150), "target", "query")
    with caplog.at_level("WARNING", logger="metalearn.warmstart.search"):
        result = WarmStartSearch(kb, SearchSettings(n_trials=2, n_warm=3, **FAST)).run(dataset)
    note = result.warm_start
    assert note is not None and note.requested >= 1 and len(note.dropped) == note.requested - note.used >= 1
    assert any("cannot be used" in r.getMessage() for r in caplog.records)
    body = result.to_json()["warm_start"]
    assert body["used"] == note.used and body["dropped"] and body["ran_cold"] == (note.used == 0)
    assert all(t.configuration != broken for t in result.trials)


def test_winner_of_a_held_out_family_stays_hidden_when_another_search_proposed_it_once(
        seeded: tuple[KnowledgeBase, list[int]]) -> None:
    """The leak of #22: a configuration pooled for cross-evaluation only because it was best on the held-out
    family came back when some other family's search had also proposed it once."""
    kb, (wine_id, iris_id, bc_id) = seeded
    winner = {**default_configuration("gaussian_nb"), "gaussian_nb:var_smoothing": 4.4e-7}
    run = {"config": winner, "algorithm": "gaussian_nb", "metric": "balanced_accuracy", "status": "success",
           "seconds": 0.1}
    kb.record_runs([RunRecord(dataset_id=wine_id, origin="smac", score=1.0, **run),  # wine's best: pooled
                    RunRecord(dataset_id=iris_id, origin="smac", score=0.2, **run)]  # proposed once, poorly, on iris
                   + [RunRecord(dataset_id=d, origin="cross_eval", score=1.0, **run) for d in (iris_id, bc_id)])
    winner_id = kb.best_configurations(wine_id, "balanced_accuracy", limit=1)[0].configuration_id
    assert kb.configurations([winner_id])[winner_id] == winner
    assert kb.pooled_by("balanced_accuracy")[winner_id] == {wine_id}
    wine = from_frame(wine_frame(), "target", "wine", family="wine")
    _, features = WarmStartSearch(kb).prepare(wine)
    recommender = Recommender(kb)
    assert winner_id in {r.configuration_id for r in recommender.recommend(features, top=20).recommendations}
    held_out = recommender.recommend(features, top=20, exclude_families={"wine"})
    assert winner_id not in {r.configuration_id for r in held_out.recommendations}
    assert winner_id in recommender.hidden_configurations({wine_id})
    assert winner_id not in {c for c, _ in recommender.portfolio({wine_id})}
    # held out on iris instead, wine's winner is fair evidence
    assert winner_id not in recommender.hidden_configurations({iris_id})
