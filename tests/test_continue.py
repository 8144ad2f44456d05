"""Continued searches (issue #21): ``metalearn search --continue ID --trials N`` and ``POST
/v1/searches/{id}/continue`` add trials to the same search -- numbered on, SMAC told the earlier trials, the
final model rebuilt from all of them -- for finished and interrupted searches alike."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_cli
from test_user_control import _json, iris_csv, iris_frame  # noqa: F401  (iris_csv is a fixture)

from metalearn import service
from metalearn.client import APIError, Client
from metalearn.datasets import from_xy
from metalearn.errors import Conflict
from metalearn.knowledge_base import KnowledgeBase
from metalearn.knowledge_base.snapshot import open_kb
from metalearn.mitigation import FairClassifier
from metalearn.model_io import ModelBundle
from metalearn.warmstart.search import SearchSettings

TITANIC = Path(__file__).resolve().parent / "data" / "titanic_sex.csv"  # binary target, sensitive column "sex"


def test_reopen_is_the_one_backward_transition(tmp_path: Path) -> None:
    kb = KnowledgeBase(str(tmp_path / "kb.sqlite"))
    dataset_id = kb.register_dataset(name="d", content_hash="h", n_rows=10, n_features=2, n_classes=2)
    search_id = kb.start_search(dataset_id, "warm", {"n_trials": 2})
    with pytest.raises(Conflict):
        kb.reopen_search(search_id)  # still running
    assert kb.finish_search(search_id, "interrupted", error="signal")
    assert not kb.set_search_status(search_id, "running")  # the forward-only writer never goes back
    kb.reopen_search(search_id, note={"n_trials": 3})
    row = kb.search(search_id)
    assert row["status"] == "running" and row["error"] is None and row["finished_at"] is None
    assert row["settings"]["continued"][0]["n_trials"] == 3
    assert kb.finish_search(search_id, "succeeded")


def test_cli_continue_adds_numbered_trials_to_the_same_search(iris_csv: Path, tmp_path: Path) -> None:  # noqa: F811
    db = str(tmp_path / "kb.sqlite")
    first = run_cli("search", str(iris_csv), "--target", "target", "--trials", "3", "--folds", "2", "--ensemble-size",
                "5", "--include", "logistic_regression,decision_tree", "--json", "--db", db)
    assert first.returncode == 0, first.stderr
    search_id = _json(first.stdout)["search_id"]
    more = run_cli("search", str(iris_csv), "--target", "target", "--continue", str(search_id), "--trials", "2",
               "--json", "--db", db, "--output", str(tmp_path / "model.joblib"))
    assert more.returncode == 0, more.stderr
    result = _json(more.stdout)
    assert result["search_id"] == search_id and result["status"] == "succeeded"
    assert [t["trial"] for t in result["trials"]] == [1, 2, 3, 4, 5]
    assert {t["algorithm"] for t in result["trials"]} <= {"logistic_regression", "decision_tree"}  # its settings
    assert result["ensemble"] is not None and (tmp_path / "model.joblib").is_file()
    kb = KnowledgeBase(db)
    assert kb.stats()["searches"] == 1 and len(kb.runs_frame(search_id=search_id)) == 5
    configs = [json.loads(c) for c in kb.runs_frame(search_id=search_id)["config_json"]]
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == 5  # SMAC knew the earlier trials
    row = kb.search(search_id)
    assert row["status"] == "succeeded" and row["settings"]["continued"][0]["n_trials"] == 2
    assert row["best_run_id"] == kb.runs_frame(search_id=search_id).loc[
        [t["trial"] - 1 for t in result["trials"] if t["trial"] == result["best"]["trial"]], "id"].item()

    other = tmp_path / "other.csv"
    iris_frame().head(120).to_csv(other, index=False)
    refused = run_cli("search", str(other), "--target", "target", "--continue", str(search_id), "--trials", "1",
                  "--db", db)
    assert refused.returncode == 2 and f"not the data search {search_id} ran on" in refused.stderr
    missing = run_cli("search", str(iris_csv), "--target", "target", "--continue", "999", "--trials", "1", "--db", db)
    assert missing.returncode == 2 and "no search with id 999" in missing.stderr
    assert KnowledgeBase(db).search(search_id)["status"] == "succeeded"


def test_interrupted_search_can_be_continued(iris_csv: Path, tmp_path: Path) -> None:  # noqa: F811
    db = str(tmp_path / "kb.sqlite")
    kb = open_kb(db)
    frame = iris_frame()
    dataset = from_xy(frame.drop(columns="target"), frame["target"], name="iris")
    settings = SearchSettings(n_trials=6, folds=2, ensemble_size=0, include=["gaussian_nb", "lda", "k_neighbors"])
    done: list[int] = []
    result = service.search(kb, dataset, settings, callback=lambda trial, _: done.append(trial.number),
                            should_stop=lambda: "interrupted" if len(done) >= 2 else False)
    assert result.status == "interrupted" and kb.search(result.search_id)["status"] == "interrupted"
    assert len(kb.runs_frame(search_id=result.search_id)) == 2
    more = run_cli("search", str(iris_csv), "--target", "target", "--continue", str(result.search_id), "--trials", "2",
               "--json", "--db", db)
    assert more.returncode == 0, more.stderr
    continued = _json(more.stdout)
    assert continued["status"] == "succeeded" and [t["trial"] for t in continued["trials"]] == [1, 2, 3, 4]
    assert KnowledgeBase(db).search(result.search_id)["status"] == "succeeded"


def test_cli_continue_makes_a_fair_search_fair_again(tmp_path: Path) -> None:
    db, model = str(tmp_path / "kb.sqlite"), tmp_path / "fair.joblib"
    args = ("search", str(TITANIC), "--target", "survived", "--strategy", "random", "--folds", "2", "--ensemble-size",
            "0", "--include", "logistic_regression,gaussian_nb", "--json", "--db", db)
    first = run_cli(*args, "--trials", "2", "--sensitive", "sex", "--fairness", "demographic_parity")
    assert first.returncode == 0, first.stderr
    search_id = _json(first.stdout)["search_id"]
    request = {"sensitive": "sex", "constraint": "demographic_parity"}
    assert KnowledgeBase(db).search(search_id)["settings"]["fairness"] == request  # stored, as the API stores it
    other = run_cli(*args, "--continue", str(search_id), "--trials", "1", "--sensitive", "sex", "--fairness",
                "equalized_odds")
    assert other.returncode == 2 and "keeps its own fairness request" in other.stderr
    assert KnowledgeBase(db).search(search_id)["status"] == "succeeded"  # refused before it was reopened
    more = run_cli(*args, "--continue", str(search_id), "--trials", "1", "--output", str(model))
    assert more.returncode == 0, more.stderr
    result = _json(more.stdout)
    assert [t["trial"] for t in result["trials"]] == [1, 2, 3] and "made fair again for 'sex'" in more.stderr
    assert {k: result["fairness"][k] for k in request} == request  # figures of the new final model's mitigation
    bundle = ModelBundle.load(model)
    assert isinstance(bundle.model, FairClassifier) and bundle.metadata["fairness"]["sensitive"] == "sex"


def test_api_continue(open_server: SimpleNamespace) -> None:
    with Client(open_server.url, timeout=120) as client:
        dataset = client.upload_dataset(iris_frame(), target="target", name="iris")
        search = client.start_search(dataset["id"], n_trials=2, folds=2, ensemble_size=3,
                                     include=["logistic_regression", "gaussian_nb"])
        assert client.wait(search["id"], progress=False, timeout=300)["status"] == "succeeded"
        accepted = client.continue_search(search["id"], n_trials=2)
        assert accepted == {"id": search["id"], "status": "queued", "dataset_id": dataset["id"]}
        with pytest.raises(APIError) as busy:
            client.continue_search(search["id"], n_trials=1)  # queued or running: 409
        assert busy.value.status_code == 409
        final = client.wait(search["id"], progress=False, timeout=300)
        assert final["status"] == "succeeded" and final["trials_done"] == 4, final
        assert [t["trial"] for t in client.trials(search["id"])] == [1, 2, 3, 4]
        assert final["model_available"] and final["settings"]["continued"][0]["n_trials"] == 2
        with pytest.raises(APIError) as bad:
            client.continue_search(search["id"])
        assert bad.value.status_code == 422
        with pytest.raises(APIError) as missing:
            client.continue_search(9999, n_trials=1)
        assert missing.value.status_code == 404
