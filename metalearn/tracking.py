"""MLflow tracking of a search (optional extra ``mlflow``: ``pip install 'metalearn[mlflow]'``).

With ``metalearn search ... --mlflow`` (or ``METALEARN_MLFLOW_URI`` set, see :func:`metalearn.settings.mlflow_uri`)
a search is one MLflow run in experiment ``metalearn`` (``--mlflow-experiment``):

* the **parent run** (``search <id> on <dataset>``) has the search's settings and dataset as params, its best
  score, ensemble score and held-out test score as metrics, its final status as the ``status`` tag, and the
  final model, logged with :func:`mlflow.sklearn.log_model` with an input example (the first training rows,
  typed as the model reads them) and a signature inferred from them; ``--mlflow-register NAME`` registers it
  in the model registry under that name;
* **each trial** is a nested run (``trial <n>``) logged as it finishes (:meth:`MlflowTracker.on_trial` is a
  trial callback of the search): its configuration as params, ``score``, ``score_std``, ``seconds`` and
  ``budget`` as metrics, its ``status``, ``origin``, ``algorithm`` (and ``error``) as tags.

The model is serialised with cloudpickle: MLflow's default for scikit-learn, skops, refuses the types of
metalearn's pipelines (its own transformers, gradient-boosting libraries). Loading a pickle runs its code, as
with metalearn's own model files: load logged models only from a tracking store you trust.

The tracking URI is the one given, else ``METALEARN_MLFLOW_URI``, else MLflow's own (``MLFLOW_TRACKING_URI`` or its
default). With a local SQLite store, the experiment's artifacts go to ``mlartifacts`` beside the file
(:func:`artifact_location`), not to ``./mlruns`` under the process's current directory. A tracking server that fails
in the middle of a search does not stop the search: a warning is logged and tracking stops. The logged model needs
the ``metalearn`` package to be loaded (its pipelines use metalearn's classes); the run's ``metalearn_version`` tag
says which.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from metalearn import __version__
from metalearn.datasets import Dataset
from metalearn.errors import MetalearnError
from metalearn.settings import mlflow_uri
from metalearn.warmstart.result import SearchResult, Trial

log = logging.getLogger(__name__)

EXPERIMENT = "metalearn"
_BAD_KEY = re.compile(r"[^/\w.\- :]")
INPUT_EXAMPLE_ROWS = 5


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts (the logged models) when the store is a local SQLite file: the
    folder ``mlartifacts`` beside that file. MLflow's own default there is ``./mlruns`` under whatever the current
    directory of the process is (a server's working directory, a repository checkout). ``None`` for any other
    store: a tracking server or a database server decides. An existing experiment keeps its location."""
    try:
        url = make_url(uri)
    except ArgumentError:
        return None
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return (Path(url.database).expanduser().resolve().parent / "mlartifacts").as_uri()


def _key(name: Any) -> str:
    return _BAD_KEY.sub("_", str(name))[:250]


def _params(values: dict[str, Any]) -> dict[str, str]:
    return {_key(k): str(v)[:6000] for k, v in values.items() if v is not None}


def _finite(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name, value in values.items():
        if isinstance(value, int | float | np.floating | np.integer) and np.isfinite(value):
            out[_key(name)] = float(value)
    return out


class MlflowTracker:
    """Logs a search to MLflow: a parent run, one nested run per trial, the final model (see the module doc)."""

    def __init__(self, uri: str | None = None, experiment: str = EXPERIMENT, register: str | None = None) -> None:
        try:
            import mlflow
        except ImportError:
            raise MetalearnError("MLflow tracking needs the mlflow extra: pip install 'metalearn[mlflow]' "
                                 "(or pip install mlflow-skinny)") from None
        self.mlflow = mlflow
        self.uri = uri or mlflow_uri() or mlflow.get_tracking_uri()
        self.experiment, self.register = experiment, register
        self.parent_id: str | None = None
        self.failed = False
        self.info: dict[str, Any] = {}
        try:
            self.client = mlflow.MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(
                experiment, artifact_location=artifact_location(self.uri))
        except Exception as exc:  # a refused store is the user's configuration: say so before the search runs
            raise MetalearnError(f"cannot use the MLflow tracking store {self.uri or '(default)'}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None

    def _guard(self, what: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        if self.failed:
            return None
        try:
            return action(*args, **kwargs)
        except Exception as exc:
            self.failed = True
            log.warning("MLflow tracking stopped (%s failed: %s); the search goes on", what, exc)
            return None

    def start(self, dataset: Dataset, settings: Any) -> None:
        """Open the parent run with the search's settings and dataset as params."""
        def start() -> None:
            run = self.client.create_run(self.experiment_id, run_name=f"search on {dataset.name}",
                                         tags={"metalearn_version": __version__, "dataset": dataset.name,
                                               "task": dataset.task})
            self.parent_id = run.info.run_id
            described = {f"dataset.{k}": v for k, v in dataset.describe().items()}
            params = _params({"target": dataset.target, **described,
                              **{k: v for k, v in vars(settings).items() if not k.startswith("_")}})
            self._log(self.parent_id, params=params)

        self._guard("starting the run", start)

    def _log(self, run_id: str, params: dict[str, str] | None = None, metrics: dict[str, float] | None = None,
             tags: dict[str, str] | None = None) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(pd.Timestamp.now().timestamp() * 1000)
        items = [Param(k, v) for k, v in (params or {}).items()]
        for start in range(0, max(len(items), 1), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=items[start:start + 100],
                                  metrics=[Metric(k, v, now, 0) for k, v in (metrics or {}).items()] if not start
                                  else [],
                                  tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()] if not start else [])

    def on_trial(self, trial: Trial, result: SearchResult) -> None:
        """Trial callback: one nested run with the trial's configuration, scores and status."""
        if self.parent_id is None:
            return

        def log_trial() -> None:
            run = self.client.create_run(self.experiment_id, run_name=f"trial {trial.number}",
                                         tags={"mlflow.parentRunId": self.parent_id})
            tags = {"status": trial.status, "origin": trial.origin, "algorithm": trial.algorithm,
                    "trial": str(trial.number)}
            if trial.error:
                tags["error"] = trial.error[:5000]
            self._log(run.info.run_id, params=_params(trial.configuration),
                      metrics=_finite({"score": trial.score, "score_std": trial.std, "seconds": trial.seconds,
                                       "budget": trial.budget, "success": float(trial.ok)}), tags=tags)
            self.client.set_terminated(run.info.run_id, "FINISHED" if trial.status == "success" else "FAILED")
            if result.search_id is not None:
                self.client.set_tag(self.parent_id, "search_id", str(result.search_id))
                self.client.set_tag(self.parent_id, "mlflow.runName",
                                    f"search {result.search_id} on {result.dataset.get('name')}")

        self._guard(f"logging trial {trial.number}", log_trial)

    def finish(self, result: SearchResult, example: pd.DataFrame | None = None) -> dict[str, Any]:
        """Close the parent run: final metrics and status, the model with its signature (registered when asked)."""
        if self.parent_id is None:
            return self.summary()
        best = result.best
        metrics = _finite({"best_score": best.score if best else None, "n_trials": len(result.trials),
                           "seconds": result.seconds, "test_score": result.extra.get("test_score"),
                           "ensemble_oof_score": getattr(result.ensemble, "oof_score", None)})
        tags = {"status": result.status, "best_trial": str(best.number) if best else "",
                "best_algorithm": best.algorithm if best else ""}
        self._guard("logging the result", self._log, self.parent_id, metrics=metrics, tags=tags)
        if result.model is not None and example is not None:
            self._guard("logging the model", self._log_model, result.model, example)
        status = {"succeeded": "FINISHED", "cancelled": "KILLED", "interrupted": "KILLED"}.get(result.status, "FAILED")
        self._guard("closing the run", self.client.set_terminated, self.parent_id, status)
        return self.summary()

    def fail(self) -> None:
        """Close the parent run as failed (the search raised)."""
        if self.parent_id is not None:
            self._guard("closing the run", self.client.set_terminated, self.parent_id, "FAILED")

    def _log_model(self, model: Any, example: pd.DataFrame) -> None:
        import mlflow.sklearn
        from mlflow.models import infer_signature

        example = example.head(INPUT_EXAMPLE_ROWS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signature = infer_signature(example, model.predict(example))
            requirements = [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}",
                            f"numpy=={np.__version__}"]
            self.mlflow.set_tracking_uri(self.uri)
            with self.mlflow.start_run(run_id=self.parent_id, experiment_id=self.experiment_id):
                info = mlflow.sklearn.log_model(model, name="model", signature=signature, input_example=example,
                                                registered_model_name=self.register, pip_requirements=requirements,
                                                serialization_format="cloudpickle")
        self.info["model_uri"] = info.model_uri
        if self.register:
            self.info["registered_model"] = {"name": self.register,
                                             "version": getattr(info, "registered_model_version", None)}

    def summary(self) -> dict[str, Any]:
        """Where the search was logged (for ``search --json``)."""
        return {"tracking_uri": self.uri, "experiment": self.experiment, "run_id": self.parent_id,
                "complete": not self.failed, **self.info}
