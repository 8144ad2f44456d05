"""Drift monitoring: the training profile in a model file, ``metalearn monitor`` and ``POST .../monitor``.

Data: ``tests/data/titanic_sex.csv`` (600 real rows, numeric and categorical columns with missing values). The
drifted copy moves ``age`` by 25 years, blanks a third of ``fare`` and gives a fifth of the rows an ``embarked``
port the training data never had.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from metalearn.datasets import load_file
from metalearn.drift import PROFILE_FORMAT, compare, profile_of, psi
from metalearn.errors import MetalearnError
from metalearn.model_io import ModelBundle

REPO = Path(__file__).resolve().parents[1]
TITANIC = REPO / "tests" / "data" / "titanic_sex.csv"


def _drifted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["age"] = out["age"] + 25
    out.loc[out.index % 3 == 0, "fare"] = np.nan
    out.loc[out.index % 5 == 0, "embarked"] = "X"
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drift")
    path = root / "model.joblib"
    proc = run_cli("search", str(TITANIC), "--target", "survived", "--trials", "2", "--strategy", "random",
                "--ensemble-size", "0", "--test-size", "0.25", "--db", str(root / "kb.sqlite"), "-o", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


def test_model_file_keeps_a_profile_of_its_training_rows(model: Path) -> None:
    bundle = ModelBundle.load(model)
    profile = bundle.profile
    assert profile["format"] == PROFILE_FORMAT and profile["n_rows"] == 450  # the test quarter is not training
    age, embarked = profile["columns"]["age"], profile["columns"]["embarked"]
    assert age["kind"] == "numeric" and 0.1 < age["missing_rate"] < 0.35 and len(age["sample"]) <= 1000
    assert abs(sum(age["fractions"]) - 1) < 1e-9 and len(age["fractions"]) == len(age["edges"]) + 1
    assert embarked["kind"] == "categorical" and set(embarked["frequencies"]) == {"S", "C", "Q"}
    assert len(profile["metafeatures"]) > 40  # the dataset's meta-feature vector from the knowledge base
    assert profile["reference"]["source"] == "held-out test split"
    assert 0.5 < profile["reference"]["score"] <= 1 and profile["reference"]["metric"] == "balanced_accuracy"


def test_monitor_cli_says_ok_for_the_same_data_and_retrain_for_drifted_data(model: Path, tmp_path: Path) -> None:
    same = run_cli("monitor", str(model), str(TITANIC), "--json")
    assert same.returncode == 0, same.stderr
    report = json.loads(same.stdout)
    assert report["verdict"] == "ok" and all(f["severity"] == "none" for f in report["features"])
    assert report["score"]["available"] and report["metafeature_distance"] == pytest.approx(0, abs=0.02)

    drifted = tmp_path / "drifted.csv"
    _drifted(pd.read_csv(TITANIC)).to_csv(drifted, index=False)
    proc = run_cli("monitor", str(model), str(drifted), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    by_column = {f["column"]: f for f in report["features"]}
    age, fare, embarked = by_column["age"], by_column["fare"], by_column["embarked"]
    assert age["severity"] == "major" and age["psi"] > 1 and age["test"] == "ks" and age["p_value"] < 1e-6
    assert fare["severity"] == "major" and fare["missing_change"] == pytest.approx(0.33, abs=0.02)
    assert embarked["unseen"] == ["X"] and embarked["unseen_fraction"] == pytest.approx(0.2)
    assert embarked["test"] == "chi2" and embarked["p_value"] < 1e-6
    assert by_column["sex"]["severity"] == "none" and by_column["pclass"]["severity"] == "none"
    assert report["verdict"] == "retrain" and any("3 of 7 columns drift" in r for r in report["reasons"])
    assert report["metafeature_distance"] > 0.02
    command = report["retrain"]["command"]
    assert report["retrain"]["recommended"] and command.startswith(f"metalearn search {drifted} --target survived")
    assert "--strategy warm" in command

    text = run_cli("monitor", str(model), str(drifted))  # the readable form
    assert text.returncode == 0 and text.stdout.startswith("verdict: retrain") and "retrain with: metalearn" in \
        text.stdout


def test_moderate_drift_without_target_is_watch_and_old_bundles_are_refused(model: Path, tmp_path: Path) -> None:
    bundle = ModelBundle.load(model)
    frame = pd.read_csv(TITANIC).drop(columns="survived")
    frame["fare"] = frame["fare"] * 1.6  # one column moves
    report = compare(bundle, frame)
    assert report["verdict"] == "watch"
    assert not report["score"]["available"] and "no target column 'survived'" in report["score"]["note"]
    assert report["metafeature_distance"] is None
    old = tmp_path / "old.joblib"
    ModelBundle(bundle.model, bundle.metadata).save(old)  # a model file written before profiles existed
    assert ModelBundle.load(old).profile is None
    proc = run_cli("monitor", str(old), str(TITANIC))
    assert proc.returncode == 2 and "no training-data profile" in proc.stderr


def test_profile_and_psi_on_their_own() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0)
    assert psi([0.5, 0.5], [0.9, 0.1]) > 0.25
    dataset = load_file(TITANIC, "survived")
    profile = profile_of(dataset.X, dataset.categorical)
    assert profile["columns"]["sex"]["frequencies"]["male"] == pytest.approx((dataset.X["sex"] == "male").mean())
    with pytest.raises(MetalearnError, match="no rows"):
        compare(ModelBundle(object(), {}, profile), dataset.X.head(0))


def test_monitor_endpoint_of_a_search(open_server: SimpleNamespace) -> None:
    frame = pd.read_csv(TITANIC)
    with httpx.Client(base_url=open_server.url, timeout=120) as http:
        upload = http.post("/v1/datasets", files={"file": ("titanic.csv", TITANIC.read_bytes())},
                           data={"target": "survived"})
        assert upload.status_code == 201, upload.text
        started = http.post("/v1/searches", json={"dataset_id": upload.json()["id"], "strategy": "random",
                                                  "n_trials": 2, "ensemble_size": 0, "folds": 3})
        assert started.status_code == 202, started.text
        search_id = started.json()["id"]
        for _ in range(300):
            status = http.get(f"/v1/searches/{search_id}").json()
            if status["status"] not in ("queued", "running"):
                break
            time.sleep(0.5)
        assert status["status"] == "succeeded", status

        rows = json.loads(_drifted(frame).to_json(orient="records"))
        drifted = http.post(f"/v1/searches/{search_id}/monitor", json={"rows": rows})
        assert drifted.status_code == 200, drifted.text
        report = drifted.json()
        assert report["search_id"] == search_id and report["verdict"] == "retrain"
        assert {f["column"]: f for f in report["features"]}["embarked"]["unseen"] == ["X"]
        assert report["score"]["available"] and "POST /v1/searches" in report["retrain"]["api"]
        assert report["profile_source"] in ("model file", "uploaded table")

        same = http.post(f"/v1/searches/{search_id}/monitor",
                         json={"rows": json.loads(frame.to_json(orient="records"))})
        assert same.status_code == 200 and same.json()["verdict"] == "ok", same.text
        assert http.post("/v1/searches/99999/monitor", json={"rows": rows[:2]}).status_code == 404
        assert http.post(f"/v1/searches/{search_id}/monitor", json={"rows": []}).status_code == 422
        assert "/v1/searches/{search_id}/monitor" in http.get("/openapi.json").json()["paths"]
