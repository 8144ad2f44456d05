"""What a search produced: :class:`Trial` and :class:`SearchResult`.

This module is THE definition of a search's trial numbering, incumbent and trajectory. The CLI,
the API, the report and the benchmark read trials back through :func:`trials_from_runs` and ask
:func:`incumbent` / :func:`ranked` / :func:`trajectory`, so they all name the same best trial.

* Trial numbers start at 1 in the order the trials finished (the order they were stored).
* The incumbent after ``n`` trials is the best successful trial among the first ``n`` at the highest
  budget evaluated so far; ties go to the earlier trial.
* The trajectory is the incumbent's score after each trial.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metalearn.datasets import FeatureSchema
from metalearn.errors import MetalearnError
from metalearn.model_io import ModelBundle
from metalearn.protocol import ENSEMBLE_ORIGIN, task_of, to_jsonable


@dataclass
class Trial:
    """One evaluated configuration of a search."""

    number: int
    configuration: dict[str, Any]
    algorithm: str
    origin: str
    status: str
    score: float | None
    std: float | None
    seconds: float
    elapsed: float
    run_id: int | None = None
    error: str | None = None
    budget: float = 1.0

    @property
    def ok(self) -> bool:
        return self.status == "success" and self.score is not None and bool(np.isfinite(self.score))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ranked(trials: Iterable[Trial]) -> list[Trial]:
    """The successful trials, best first: highest budget, then highest score, then the earlier trial."""
    return sorted((t for t in trials if t.ok), key=lambda t: (-t.budget, -t.score, t.number))


def incumbent(trials: Sequence[Trial], n_trials: int | None = None) -> Trial | None:
    """Best successful trial among the first ``n_trials`` (all by default), at the highest budget evaluated."""
    best = ranked(trials if n_trials is None else trials[:n_trials])
    return best[0] if best else None


def trajectory(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    """The incumbent's score after each trial, with the elapsed seconds and the incumbent's number."""
    rows = []
    for n, trial in enumerate(trials, start=1):
        best = incumbent(trials, n)
        rows.append({"trial": trial.number, "elapsed": trial.elapsed,
                     "best_so_far": None if best is None else float(best.score),
                     "incumbent": None if best is None else best.number})
    return rows


def _value(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT else value


def trials_from_runs(runs: pd.DataFrame, started: Any = None, run_key_prefix: str | None = None) -> list[Trial]:
    """A search's trials from its stored runs (``KnowledgeBase.runs_frame``), numbered in storing order.

    With ``run_key_prefix`` a run's number is the one encoded in its key (a resumed benchmark job).
    ``elapsed`` is measured from ``started`` (a timestamp) when given, else 0.
    """
    trials = []
    if "origin" in runs.columns:  # an ensemble run records the search's final model, not a trial
        runs = runs[runs["origin"] != ENSEMBLE_ORIGIN]
    for position, run in enumerate(runs.sort_values("id").itertuples(index=False), start=1):
        number = position
        key = _value(getattr(run, "run_key", None))
        if run_key_prefix is not None and isinstance(key, str) and key[len(run_key_prefix):].isdigit():
            number = int(key[len(run_key_prefix):])
        created = _value(getattr(run, "created_at", None))
        elapsed = (pd.Timestamp(created) - pd.Timestamp(started)).total_seconds() if (
            started is not None and created is not None) else 0.0
        score, std, error = _value(run.score), _value(run.score_std), _value(run.error)
        trials.append(Trial(number, json.loads(run.config_json), run.algorithm, run.origin, run.status,
                            None if score is None else float(score), None if std is None else float(std),
                            float(run.seconds), round(float(elapsed), 3), int(run.id),
                            None if error is None else str(error), float(_value(run.budget) or 1.0)))
    return sorted(trials, key=lambda t: t.number)


@dataclass
class WarmStartReport:
    """How many recommended configurations a warm search asked for, could use, and why not all."""

    requested: int = 0
    used: int = 0
    dropped: list[str] = field(default_factory=list)

    @property
    def ran_cold(self) -> bool:
        return self.requested > 0 and self.used == 0

    def to_json(self) -> dict[str, Any]:
        return {"requested": self.requested, "used": self.used, "dropped": list(self.dropped),
                "ran_cold": self.ran_cold}


@dataclass
class SearchResult:
    """What a search produced: trials, incumbent, trajectory and the refitted best pipeline."""

    search_id: int | None
    dataset: dict[str, Any]
    settings: Any
    trials: list[Trial]
    status: str
    model: Any = None
    recommendations: Any = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    schema: FeatureSchema | None = None
    warm_start: WarmStartReport | None = None
    #: the ensemble the search ended with (an ``EnsembleReport``), or None for the single best pipeline
    ensemble: Any = None

    @property
    def best(self) -> Trial | None:
        return incumbent(self.trials)

    @property
    def best_score(self) -> float | None:
        return self.best.score if self.best else None

    @property
    def best_config(self) -> dict[str, Any] | None:
        return self.best.configuration if self.best else None

    def incumbent_after(self, n_trials: int) -> Trial | None:
        """The incumbent after the first ``n_trials`` trials."""
        return incumbent(self.trials, n_trials)

    @property
    def leaderboard(self) -> pd.DataFrame:
        columns = ["trial", "algorithm", "score", "std", "status", "origin", "seconds", "budget"]
        frame = pd.DataFrame([{"trial": t.number, "algorithm": t.algorithm, "score": t.score, "std": t.std,
                               "status": t.status, "origin": t.origin, "seconds": t.seconds, "budget": t.budget}
                              for t in self.trials], columns=columns)
        return frame.sort_values(["budget", "score", "trial"], ascending=[False, False, True], na_position="last",
                                 ignore_index=True)

    @property
    def trajectory(self) -> pd.DataFrame:
        """Best score so far (the incumbent's) after each trial, with the wall-clock seconds elapsed."""
        return pd.DataFrame(trajectory(self.trials), columns=["trial", "elapsed", "best_so_far", "incumbent"])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.bundle().predict(X)

    def bundle(self) -> ModelBundle:
        """The refitted best pipeline as a :class:`ModelBundle` (with its metadata and feature schema)."""
        if self.model is None:
            raise MetalearnError("this search has no fitted model (no successful trial, or refit=False)")
        return ModelBundle(self.model, self.model_metadata())

    def model_metadata(self) -> dict[str, Any]:
        best = self.best
        schema = self.schema.to_json() if self.schema is not None else {
            "columns": self.extra.get("columns"), "categorical": self.extra.get("categorical")}
        metric = getattr(self.settings, "metric", None)
        return to_jsonable({"search_id": self.search_id, "dataset": self.dataset.get("name"), "metric": metric,
                            "task": task_of({"task": self.dataset.get("task"), "metric": metric}),
                            "cv_score": best.score if best else None,
                            "algorithm": best.algorithm if best else None, "trial": best.number if best else None,
                            "configuration": best.configuration if best else None,
                            "ensemble": self.ensemble, "target": self.dataset.get("target")} | schema)

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return to_jsonable({
            "search_id": self.search_id,
            "status": self.status,
            "strategy": self.settings.strategy,
            "dataset": self.dataset,
            "metric": self.settings.metric,
            "n_trials": len(self.trials),
            "seconds": self.seconds,
            "best": None if best is None else {"score": best.score, "algorithm": best.algorithm,
                                               "configuration": best.configuration, "trial": best.number,
                                               "budget": best.budget},
            "test_score": self.extra.get("test_score"),
            "warm_start": self.warm_start,
            "ensemble": self.ensemble,
            "trials": [{"trial": t.number, "score": t.score, "status": t.status, "seconds": t.seconds,
                        "origin": t.origin, "algorithm": t.algorithm, "budget": t.budget} for t in self.trials],
            "trajectory": trajectory(self.trials),
        })


def stored_ensemble(record: dict[str, Any] | None, trials: Sequence[Trial]) -> dict[str, Any] | None:
    """A stored ensemble (``KnowledgeBase.ensemble_of``) in the terms of the search's trials: its members
    with their trial numbers, algorithms and weights, and its out-of-fold score."""
    if record is None:
        return None
    by_run = {t.run_id: t for t in trials}
    members = []
    for member in record["members"]:
        trial = by_run.get(member["run_id"])
        members.append({"trial": None if trial is None else trial.number, "run_id": member["run_id"],
                        "algorithm": None if trial is None else trial.algorithm, "weight": member["weight"],
                        "cv_score": None if trial is None else trial.score})
    return to_jsonable({"run_id": record["run_id"], "oof_score": record["score"], "members": members})
