"""User control (issue #21): ``--include`` / ``--exclude``, the ``--interpretable`` preset, and a leaderboard that
stays readable at 80 columns -- through the real CLI, the library and the HTTP API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import run_cli
from sklearn.datasets import load_iris

from metalearn import AutoClassifier
from metalearn.client import APIError, Client
from metalearn.knowledge_base import KnowledgeBase
from metalearn.restriction import restriction
from metalearn.space import allows, build_space, canonical_config, default_configuration

INTERPRETABLE = {"logistic_regression", "decision_tree", "gaussian_nb", "lda"}


def iris_frame() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    frame["target"] = frame["target"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    return frame


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iris") / "iris.csv"
    iris_frame().to_csv(path, index=False)
    return path


def cli(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    """``metalearn ARGS`` in a new process (this module's tests run it in-process: ``conftest.run_cli``)."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "metalearn.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _json(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{"):])


def test_restricted_space_keeps_names_version_and_validity() -> None:
    limit = restriction("classification", preset="interpretable")
    space = build_space(seed=3, task="classification", restriction=limit)
    assert space.name == build_space(task="classification").name  # same space version
    assert set(space["classifier"].choices) == INTERPRETABLE
    assert {"pca", "polynomial"}.isdisjoint(space["feature_preprocessing"].choices)
    assert space["decision_tree:max_depth"].upper == 5
    for config in space.sample_configuration(40):
        full = canonical_config(config)  # validated against the FULL space
        assert allows(limit, full)
        if full["classifier"] == "decision_tree":
            assert full["decision_tree:limit_depth"] is True and full["decision_tree:max_depth"] <= 5
    assert not allows(limit, default_configuration("random_forest"))
    deep = default_configuration("decision_tree") | {"decision_tree:limit_depth": True, "decision_tree:max_depth": 9}
    assert not allows(limit, deep)


def test_unknown_name_lists_the_valid_ones(iris_csv: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "kb.sqlite")
    done = run_cli("search", str(iris_csv), "--target", "target", "--include", "ridge,foo", "--trials", "2", "--db", db)
    assert done.returncode == 2, done.stderr
    assert "'ridge', 'foo'" in done.stderr and "logistic_regression" in done.stderr and "rfe" in done.stderr
    assert KnowledgeBase(db).stats()["searches"] == 0  # refused before the search was stored


def test_cli_include_exclude_and_interpretable(iris_csv: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "kb.sqlite")
    done = run_cli("search", str(iris_csv), "--target", "target", "--include", "logistic_regression",
                   "--include", "k_neighbors", "--exclude", "pca,polynomial", "--trials", "4", "--folds", "2",
                   "--ensemble-size", "0", "--json", "--db", db)
    assert done.returncode == 0, done.stderr
    result = _json(done.stdout)
    assert {t["algorithm"] for t in result["trials"]} <= {"logistic_regression", "k_neighbors"}
    kb = KnowledgeBase(db)
    runs = kb.runs_frame(search_id=result["search_id"])
    assert not any(json.loads(c).get("feature_preprocessing") in ("pca", "polynomial") for c in runs["config_json"])
    stored = kb.search(result["search_id"])["settings"]
    assert stored["include"] == ["logistic_regression", "k_neighbors"] and stored["exclude"] == ["pca", "polynomial"]

    rec = run_cli("recommend", str(iris_csv), "--target", "target", "--interpretable", "--top", "5", "--json",
                  "--db", db)
    assert rec.returncode == 0, rec.stderr
    report = _json(rec.stdout)
    assert report["recommendations"] and {r["algorithm"] for r in report["recommendations"]} <= INTERPRETABLE
    limit = restriction("classification", preset="interpretable")
    assert all(allows(limit, r["configuration"]) for r in report["recommendations"])
    assert report["filtered"] > 0  # the shipped knowledge base recommends forests and boosting first

    done = run_cli("search", str(iris_csv), "--target", "target", "--interpretable", "--trials", "3", "--folds", "2",
                   "--ensemble-size", "0", "--json", "--db", db)
    assert done.returncode == 0, done.stderr
    runs = kb.runs_frame(search_id=_json(done.stdout)["search_id"])
    assert len(runs) == 3 and all(allows(limit, json.loads(c)) for c in runs["config_json"])
    assert kb.search(_json(done.stdout)["search_id"])["settings"]["interpretable"] is True


def test_leaderboard_readable_at_80_columns(iris_csv: Path, tmp_path: Path) -> None:
    done = run_cli("search", str(iris_csv), "--target", "target", "--trials", "3", "--folds", "2", "--ensemble-size",
                   "0", "--include", "hist_gradient_boosting,logistic_regression", "--db", str(tmp_path / "kb.sqlite"),
                   env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "…" not in done.stdout and max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "trial" in line and "score" in line)
    assert header.split() == ["trial", "pipeline", "score", "std", "status", "origin", "seconds"]
    rows = [line.split() for line in lines if line.strip().split(" ")[0].isdigit()]
    assert len(rows) == 3 and all(len(row[-1].split(".")[1]) == 2 for row in rows)  # seconds printed whole
    assert any(cell.startswith("0.") and len(cell) == 6 for row in rows for cell in row)  # scores: 4 decimals


def test_library_estimator_include(tmp_path: Path) -> None:
    frame = iris_frame()
    clf = AutoClassifier(n_trials=2, folds=2, ensemble_size=0, kb=str(tmp_path / "kb.sqlite"),
                         include=["gaussian_nb", "lda"]).fit(frame.drop(columns="target"), frame["target"])
    assert set(clf.leaderboard_["algorithm"]) <= {"gaussian_nb", "lda"}
    assert clf.score(frame.drop(columns="target"), frame["target"]) > 0.8


def test_api_include_exclude(open_server: SimpleNamespace) -> None:
    with Client(open_server.url, timeout=120) as client:
        dataset = client.upload_dataset(iris_frame(), target="target", name="iris")
        report = client.recommend(dataset["id"], top=3, include=["logistic_regression", "lda"])
        assert report["recommendations"] and {r["algorithm"] for r in report["recommendations"]} <= {
            "logistic_regression", "lda"}
        assert report["filtered"] > 0
        with pytest.raises(APIError) as bad:
            client.recommend(dataset["id"], include=["no_such_family"])
        assert bad.value.status_code == 400 and "gaussian_nb" in bad.value.detail
        with pytest.raises(APIError) as bad:
            client.start_search(dataset["id"], n_trials=2, exclude=["nope"])
        assert bad.value.status_code == 400
        search = client.start_search(dataset["id"], n_trials=3, folds=2, ensemble_size=0, interpretable=True,
                                     exclude=["lda"])
        final = client.wait(search["id"], progress=False, timeout=300)
        assert final["status"] == "succeeded", final
        algorithms = {t["algorithm"] for t in client.trials(search["id"])}
        assert algorithms <= INTERPRETABLE - {"lda"}
        assert final["settings"]["interpretable"] is True and final["settings"]["exclude"] == ["lda"]
