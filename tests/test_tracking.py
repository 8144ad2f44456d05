"""MLflow tracking of a search (``--mlflow`` / ``METALEARN_MLFLOW_URI``) against a real local MLflow store.

The store is an SQLite file in the test's temporary folder: MLflow 3 keeps its plain-file store only in
maintenance mode (it refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is set), and names SQLite as the local store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import breast_cancer_frame
from servers import running_server

from metalearn.client import Client
from metalearn.errors import MetalearnError
from metalearn.settings import mlflow_uri
from metalearn.tracking import MlflowTracker, artifact_location

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

REPO = Path(__file__).resolve().parents[1]


def test_search_is_a_parent_run_with_one_nested_run_per_trial_and_a_registered_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "cancer.csv"
    frame = breast_cancer_frame(120)
    frame.to_csv(csv, index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # MLflow's own default would be ./mlflow.db in this process
    env = os.environ | {"METALEARN_MLFLOW_URI": uri}  # the store comes from the variable; --mlflow-register tracks
    proc = subprocess.run([sys.executable, "-m", "metalearn.cli", "search", str(csv), "--target", "target",
                           "--trials", "3", "--strategy", "random", "--ensemble-size", "0", "--db",
                           str(tmp_path / "kb.sqlite"), "--mlflow-register", "cancer-model", "--json"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    tracked = result["mlflow"]
    assert tracked["tracking_uri"] == uri and tracked["complete"] and tracked["experiment"] == "metalearn"

    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = client.get_run(tracked["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["status"] == "succeeded"
    assert parent.data.params["strategy"] == "random" and parent.data.params["target"] == "target"
    assert parent.data.metrics["best_score"] == pytest.approx(result["best"]["score"])
    assert parent.data.tags["search_id"] == str(result["search_id"])

    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 3
    by_trial = {int(run.data.tags["trial"]): run for run in children}
    for trial in result["trials"]:
        run = by_trial[trial["trial"]]
        assert run.data.tags["status"] == trial["status"] and run.data.tags["algorithm"] == trial["algorithm"]
        assert run.data.params["classifier"] == trial["algorithm"]  # the configuration as params
        assert run.data.metrics["seconds"] == pytest.approx(trial["seconds"])
        if trial["status"] == "success":
            assert run.data.metrics["score"] == pytest.approx(trial["score"])

    versions = client.search_model_versions("name = 'cancer-model'")
    assert len(versions) == 1 and str(versions[0].version) == "1"
    assert tracked["registered_model"] == {"name": "cancer-model", "version": 1}
    logged = client.get_logged_model(tracked["model_uri"].split("/")[-1])
    assert logged.artifact_location.startswith((tmp_path / "mlartifacts").as_uri())  # beside the store, not ./mlruns
    assert not (tmp_path / "mlruns").exists()  # the process's current directory
    model = mlflow.pyfunc.load_model(logged.artifact_location)
    inputs = model.metadata.get_input_schema().input_names()
    assert inputs == [c for c in frame.columns if c != "target"]  # the signature: the model's feature columns
    predictions = model.predict(frame.drop(columns="target").head(10))
    assert set(predictions) <= {"benign", "malignant"} and len(predictions) == 10


def test_tracking_settings_and_an_unusable_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mlflow_uri({"METALEARN_MLFLOW_URI": " sqlite:///x.db "}) == "sqlite:///x.db"
    assert mlflow_uri({}) is None
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # MLflow 3 refuses its plain-file store then
    with pytest.raises(MetalearnError, match="cannot use the MLflow tracking store file:"):
        MlflowTracker(f"file:{tmp_path / 'mlruns'}")
    store = tmp_path / "store"
    assert artifact_location(f"sqlite:///{store / 'mlflow.db'}") == (store / "mlartifacts").as_uri()
    assert artifact_location("sqlite://") is None and artifact_location("http://127.0.0.1:5000") is None
    assert artifact_location("postgresql://u@h/db") is None and artifact_location("databricks") is None


def test_api_searches_are_tracked_when_the_server_has_a_tracking_uri(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"METALEARN_DB": str(tmp_path / "kb.sqlite"), "METALEARN_DATA_DIR": str(tmp_path / "data"),
           "METALEARN_API_SEED": "0", "METALEARN_API_KEYS": "", "METALEARN_API_SEARCH_WORKERS": "1",
           "METALEARN_MLFLOW_URI": uri, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    csv = tmp_path / "cancer.csv"
    breast_cancer_frame(120).to_csv(csv, index=False)
    with running_server(tmp_path, env) as server, Client(server.url, timeout=300) as client:
        dataset = client.upload_dataset(csv, target="target")
        search = client.start_search(dataset["id"], strategy="random", n_trials=2, folds=2, ensemble_size=0)
        final = client.wait(search["id"], progress=False, timeout=600)
    assert final["status"] == "succeeded", final
    tracking = mlflow.MlflowClient(tracking_uri=uri)
    parents = tracking.search_runs([tracking.get_experiment_by_name("metalearn").experiment_id],
                                   filter_string=f"tags.search_id = '{search['id']}'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = tracking.search_runs([parents[0].info.experiment_id],
                                    filter_string=f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert len(children) == 2 and {run.data.tags["status"] for run in children} <= {"success", "crashed", "timeout"}
    # the final model's artifacts beside the store, not under the server's current directory
    experiment = tracking.get_experiment_by_name("metalearn")
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert any((tmp_path / "mlartifacts").rglob("MLmodel"))
