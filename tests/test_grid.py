"""``--strategy grid`` (issue #21): a grid file or the default grid, its size printed first, a refusal above the
limit, evaluated through the same trial loop and storage -- via the real CLI and the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_cli
from test_user_control import _json, iris_csv, iris_frame  # noqa: F401  (iris_csv is a fixture)

from metalearn.client import APIError, Client
from metalearn.knowledge_base import KnowledgeBase
from metalearn.space import build_space
from metalearn.warmstart.grid import DEFAULT_GRIDS, grid_plan


def test_default_grid_covers_every_family_and_stays_valid() -> None:
    for task, families in DEFAULT_GRIDS.items():
        plan = grid_plan(build_space(task=task), task)
        assert plan.dropped == 0 and plan.size == len({json.dumps(dict(c), sort_keys=True) for c in
                                                         plan.configurations})
        assert {c["classifier" if task == "classification" else "regressor"] for c in plan.configurations} == \
            set(families)


def test_cli_grid_file_yaml_and_json(iris_csv: Path, tmp_path: Path) -> None:  # noqa: F811
    db = str(tmp_path / "kb.sqlite")
    grid = tmp_path / "grid.yaml"
    grid.write_text("logistic_regression:C: [0.01, 1, 100]\nscaling: [standard]\n")
    done = run_cli("search", str(iris_csv), "--target", "target", "--strategy", "grid", "--grid", str(grid),
                   "--folds", "2", "--ensemble-size", "0", "--json", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "grid: 3 configurations (grid file)" in done.stderr
    result = _json(done.stdout)
    assert result["strategy"] == "grid" and [t["trial"] for t in result["trials"]] == [1, 2, 3]
    assert {t["origin"] for t in result["trials"]} == {"grid"}
    runs = KnowledgeBase(db).runs_frame(search_id=result["search_id"])
    assert sorted(json.loads(c)["logistic_regression:C"] for c in runs["config_json"]) == [0.01, 1.0, 100.0]

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"classifier": ["decision_tree"], "decision_tree:limit_depth": [True],
                                "decision_tree:max_depth": [2, 4, 8]}))
    done = run_cli("search", str(iris_csv), "--target", "target", "--strategy", "grid", "--grid", str(grid),
                   "--interpretable", "--trials", "1", "--folds", "2", "--ensemble-size", "0", "--json", "--db", db)
    assert done.returncode == 0, done.stderr
    # depth 8 is outside the interpretable range (<= 5): dropped; --trials caps the run
    assert "grid: 2 configurations (grid file, 1 invalid combinations dropped); the first 1 run" in done.stderr
    assert len(_json(done.stdout)["trials"]) == 1


def test_cli_grid_refused_above_the_limit(iris_csv: Path, tmp_path: Path) -> None:  # noqa: F811
    db = str(tmp_path / "kb.sqlite")
    done = run_cli("search", str(iris_csv), "--target", "target", "--strategy", "grid", "--max-grid-size", "10",
                   "--db", db)
    assert done.returncode == 2
    assert "more than the limit of 10 (--max-grid-size)" in done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"logistic_regression:gamma": [1, 2]}))
    done = run_cli("search", str(iris_csv), "--target", "target", "--strategy", "grid", "--grid", str(bad), "--db", db)
    assert done.returncode == 2 and "unknown hyperparameter(s) 'logistic_regression:gamma'" in done.stderr
    assert KnowledgeBase(db).stats()["searches"] == 0

    done = run_cli("search", str(iris_csv), "--target", "target", "--strategy", "grid", "--include",
                   "gaussian_nb,lda", "--folds", "2", "--ensemble-size", "0", "--json", "--db", db)
    assert done.returncode == 0, done.stderr  # the default grid of two families: their defaults
    assert "grid: 2 configurations (default grid 2026.11-g1)" in done.stderr
    result = _json(done.stdout)
    assert sorted(t["algorithm"] for t in result["trials"]) == ["gaussian_nb", "lda"]
    assert KnowledgeBase(db).search(result["search_id"])["settings"]["grid_version"] == "2026.11-g1"


def test_api_grid(open_server: SimpleNamespace) -> None:
    with Client(open_server.url, timeout=120) as client:
        dataset = client.upload_dataset(iris_frame(), target="target", name="iris")
        with pytest.raises(APIError) as refused:
            client.start_search(dataset["id"], strategy="grid", n_trials=None, max_grid_size=3)
        assert refused.value.status_code == 400 and "more than the limit of 3" in refused.value.detail
        search = client.start_search(dataset["id"], strategy="grid", n_trials=None, folds=2, ensemble_size=0,
                                     grid={"k_neighbors:n_neighbors": [3, 9]})
        final = client.wait(search["id"], progress=False, timeout=300)
        assert final["status"] == "succeeded" and final["trials_done"] == 2, final
        trials = client.trials(search["id"])
        assert sorted(t["configuration"]["k_neighbors:n_neighbors"] for t in trials) == [3, 9]
