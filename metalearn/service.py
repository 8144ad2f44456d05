"""The use cases every front end shares: prepare -> recommend -> search -> predict -> report.

The CLI, the HTTP API and the seeding/benchmark jobs call these functions instead of wiring the
knowledge base, the search and the model files themselves, so each use case has one implementation.
Defaults come from :data:`metalearn.protocol.DEFAULTS`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from metalearn.datasets import Dataset, load_file, read_table
from metalearn.drift import profile_of
from metalearn.errors import MetalearnError, NotFound
from metalearn.evaluation import score_model
from metalearn.knowledge_base import KnowledgeBase
from metalearn.metafeatures import EXTRACTOR_VERSIONS, MetaFeatures, extract_metafeatures
from metalearn.mitigation import FairnessRequest, check_request, mitigate
from metalearn.model_io import ModelBundle
from metalearn.protocol import DEFAULTS
from metalearn.report import ModelReport, report_for_model, report_for_search
from metalearn.tracking import MlflowTracker
from metalearn.warmstart.grid import GridPlan
from metalearn.warmstart.recommendation import RecommendationReport
from metalearn.warmstart.result import SearchResult, Trial, trials_from_runs
from metalearn.warmstart.search import SearchSettings, TrialCallback, WarmStartSearch

log = logging.getLogger(__name__)


def load_dataset(path: str | Path, target: str, name: str | None = None, task: str | None = None) -> Dataset:
    """A validated dataset from a CSV / parquet / ARFF file (its task detected from the target unless given)."""
    return load_file(path, target, name, task=task)


def metafeatures(dataset: Dataset, seed: int = DEFAULTS.seed) -> MetaFeatures:
    """The dataset's meta-feature vector (not stored)."""
    return extract_metafeatures(dataset.X, dataset.y, dataset.categorical, seed=seed, task=dataset.task)


def recommend(kb: KnowledgeBase, dataset: Dataset, *, top: int = DEFAULTS.top, k: int = DEFAULTS.k,
              metric: str | None = None, include: Sequence[str] = (), exclude: Sequence[str] = (),
              interpretable: bool = False) -> RecommendationReport:
    """Register the dataset with its meta-features and recommend pipelines with their evidence (only those
    ``include`` / ``exclude`` / ``interpretable`` allow; the report counts the others as ``filtered``)."""
    engine = WarmStartSearch(kb, SearchSettings(metric=metric, k=k, include=list(include), exclude=list(exclude),
                                                interpretable=interpretable))
    _, features = engine.prepare(dataset)
    return engine.recommend(dataset, features, top)


def search(kb: KnowledgeBase, dataset: Dataset, settings: SearchSettings, *, callback: TrialCallback | None = None,
           should_stop: Callable[[], bool] | None = None, output: str | Path | None = None,
           fairness: FairnessRequest | None = None, tracker: MlflowTracker | None = None,
           search_id: int | None = None, started_at: float | None = None) -> SearchResult:
    """Run a search (every trial stored), and save its model bundle to ``output`` when given.

    A ``time_budget`` counts from ``started_at`` (epoch seconds of the job's start; default now).

    ``fairness`` post-processes the final model for a fairness constraint (:mod:`metalearn.mitigation`; checked
    before the search starts, figures in ``result.extra["fairness"]``); ``tracker`` logs the search to MLflow
    (:mod:`metalearn.tracking`; where, in ``result.extra["mlflow"]``).
    """
    if fairness is not None:
        check_request(fairness, dataset)
    callbacks = [c for c in (callback, tracker.on_trial if tracker is not None else None) if c is not None]

    def on_trial(trial: Trial, result: SearchResult) -> None:
        for call in callbacks:
            call(trial, result)

    if tracker is not None:
        tracker.start(dataset, settings)
    try:
        result = WarmStartSearch(kb, settings).run(dataset, callback=on_trial if callbacks else None,
                                                   should_stop=should_stop, search_id=search_id,
                                                   started_at=started_at)
        train = training_rows(dataset, result)
        if fairness is not None and result.model is not None:
            apply_fairness(result, train, fairness)
        if output is not None and result.model is not None:
            search_bundle(result, train, kb).save(output)
        if tracker is not None:
            finish_tracking(tracker, result, train)
    except BaseException:
        if tracker is not None:
            tracker.fail()
        raise
    return result


def finish_tracking(tracker: MlflowTracker, result: SearchResult, train: Dataset) -> None:
    """Close the search's MLflow run, logging its final model with an input example (``result.extra["mlflow"]``)."""
    example = search_bundle(result, train, None, profile=False).features(train.X.head(5)) \
        if result.model is not None else None
    result.extra["mlflow"] = tracker.finish(result, example)


def training_rows(dataset: Dataset, result: SearchResult) -> Dataset:
    """The rows the search's final model was fitted on: ``dataset`` without the test split it kept."""
    s = result.settings
    return dataset.split(s.test_size, s.seed)[0] if getattr(s, "test_size", None) else dataset


def apply_fairness(result: SearchResult, train: Dataset, fairness: FairnessRequest) -> None:
    """Replace the final model by its fairness-mitigated form; before/after figures in ``extra["fairness"]``."""
    test = result.extra.get("test")
    result.model, result.extra["fairness"] = mitigate(result.model, train, fairness, test=test,
                                                      seed=result.settings.seed)
    if test is not None:
        result.extra["test_score_unmitigated"] = result.extra.get("test_score")
        result.extra["test_score"] = score_model(result.model, test.X, test.y, result.settings.metric)


def _reference_score(result: SearchResult) -> dict[str, Any]:
    """What the final model scored in training, for the drift monitor's score drop."""
    metric, fairness = result.settings.metric, result.extra.get("fairness")
    if result.extra.get("test_score") is not None:
        return {"metric": metric, "score": result.extra["test_score"], "source": "held-out test split"}
    if fairness is not None and metric in ("balanced_accuracy", "accuracy"):
        return {"metric": metric, "score": fairness["after"][metric], "source": fairness["evaluated_on"]}
    if result.ensemble is not None:
        return {"metric": metric, "score": result.ensemble.oof_score, "source": "ensemble out-of-fold"}
    best = result.best
    return {"metric": metric, "score": best.score if best else None, "source": "cross-validation of the best trial"}


def search_bundle(result: SearchResult, train: Dataset, kb: KnowledgeBase | None, *,
                  profile: bool = True) -> ModelBundle:
    """The model file of a search: its bundle, the fairness figures, and the training rows' drift profile."""
    bundle = result.bundle()
    if result.extra.get("fairness") is not None:
        bundle.metadata["fairness"] = result.extra["fairness"]
    if profile:
        dataset_id = result.dataset.get("id")
        features = (kb.metafeatures(dataset_id, EXTRACTOR_VERSIONS[train.task])
                    if kb is not None and dataset_id is not None else None)
        bundle.profile = profile_of(train.X, train.categorical, metafeatures=features,
                                    reference=_reference_score(result), seed=result.settings.seed)
    return bundle


def save_search_model(result: SearchResult, dataset: Dataset, path: str | Path,
                      kb: KnowledgeBase | None = None) -> Path:
    """Save a finished search's model file (with its drift profile) to ``path``."""
    return search_bundle(result, training_rows(dataset, result), kb).save(path)


def plan_grid(kb: KnowledgeBase, dataset: Dataset, settings: SearchSettings) -> GridPlan:
    """The points a grid search with ``settings`` would run on ``dataset`` (refused above ``max_grid_size``)."""
    engine = WarmStartSearch(kb, settings)
    engine.for_task(dataset)
    return engine.plan_grid(dataset.task)


def continuation(kb: KnowledgeBase, search_id: int, dataset: Dataset | None, *, n_trials: int | None = None,
                 time_budget: float | None = None, status: str = "running") -> SearchSettings:
    """Reopen a finished search to add ``n_trials`` trials and/or ``time_budget`` seconds to it (``status``:
    ``running``, or ``queued`` for an API worker); returns the settings to run it with (its own, new budget).

    :class:`NotFound` for no such search, :class:`Conflict` while it is queued or running, and a
    :class:`MetalearnError` when ``dataset`` is not the data it ran on (same content hash) or there is no budget.
    """
    row = stored_search(kb, search_id).row
    if n_trials is None and time_budget is None:
        raise MetalearnError("give the budget to add: a number of trials (--trials), a time budget, or both")
    if dataset is not None:
        info = kb.dataset(row["dataset_id"])
        if dataset.content_hash != info.content_hash:
            raise MetalearnError(f"this is not the data search {search_id} ran on (dataset {info.id}, {info.name!r}, "
                                 f"{info.n_rows} rows): give the same table and target to continue it")
    settings = replace(SearchSettings.from_dict(row["settings"] or {}), n_trials=n_trials,
                       time_budget=time_budget).validate()
    kb.reopen_search(search_id, status, {"n_trials": n_trials, "time_budget": time_budget})
    return settings


def continue_search(kb: KnowledgeBase, search_id: int, dataset: Dataset, *, n_trials: int | None = None,
                    time_budget: float | None = None, **options: Any) -> SearchResult:
    """Add trials to a finished (or interrupted) search: its trials are told to SMAC first, the new ones are
    numbered on and stored in the same search, and the final model is rebuilt from all of them. ``options`` as
    for :func:`search` (``callback``, ``should_stop``, ``output``, ...)."""
    settings = continuation(kb, search_id, dataset, n_trials=n_trials, time_budget=time_budget)
    return search(kb, dataset, settings, search_id=search_id, **options)


@dataclass
class StoredSearch:
    """A search as the knowledge base holds it: its row and its trials (numbered as SearchResult numbers them)."""

    row: dict[str, Any]
    trials: list[Trial]


def stored_search(kb: KnowledgeBase, search_id: int) -> StoredSearch:
    """The stored row and trials of a search; :class:`NotFound` when there is none."""
    try:
        row = kb.search(search_id)
    except MetalearnError:
        raise NotFound(f"no search with id {search_id}") from None
    return StoredSearch(row, trials_from_runs(kb.runs_frame(search_id=search_id), started=row["started_at"]))


def predict(model: str | Path | ModelBundle, frame: pd.DataFrame | str | Path, *,
            trust_unsigned: bool = False) -> pd.DataFrame:
    """Predictions of a saved model for a table (a frame or a file); columns it does not use are ignored.

    A model file must carry a valid signature unless ``trust_unsigned`` (see :meth:`ModelBundle.load`).
    """
    bundle = model if isinstance(model, ModelBundle) else ModelBundle.load(model, trust_unsigned=trust_unsigned)
    table = frame if isinstance(frame, pd.DataFrame) else read_table(frame)
    return pd.DataFrame({"prediction": bundle.predict(table)})


def report(source: str, data: str | Path, *, target: str | None = None, db: str | None = None,
           sensitive: Sequence[str] = (), trust_unsigned: bool = False, **options: Any) -> ModelReport:
    """Model report of a saved model file (signed, unless ``trust_unsigned``) or of a search in the knowledge
    base, evaluated on ``data``."""
    frame, path = read_table(data), Path(source)
    options = {"sensitive": list(sensitive) or None, **options}
    if path.is_file():
        bundle = ModelBundle.load(path, trust_unsigned=trust_unsigned)
        kb = KnowledgeBase(db) if db is not None and bundle.metadata.get("search_id") is not None else None
        mitigation = bundle.metadata.get("fairness")
        options["sensitive"] = report_sensitive(sensitive, mitigation)
        result = report_for_model(bundle.model, bundle.metadata, frame, target=target, kb=kb, name=Path(data).stem,
                                  **options)
        attach_mitigation(result, mitigation)
        return result
    if source.isdigit():
        return report_for_search(KnowledgeBase(db), int(source), frame, target=target, name=Path(data).stem,
                                 **options)
    raise MetalearnError(f"{source!r} is neither a model file nor a search id")


def report_sensitive(sensitive: Sequence[str], mitigation: Mapping[str, Any] | None) -> list[str] | None:
    """The sensitive columns of a report: those given (duplicates dropped), else the column a mitigated model
    was made fair for (``mitigation``: its ``metadata["fairness"]``, or a search's fairness request)."""
    columns = list(dict.fromkeys(sensitive))
    if not columns and mitigation:  # a mitigated model's report shows its sensitive column
        columns = [mitigation["sensitive"]]
    return columns or None


def attach_mitigation(report: ModelReport, mitigation: Mapping[str, Any] | None) -> None:
    """Add a mitigated model's before / after figures (from its search) to the report's fairness section."""
    section = report.data["sections"].get("fairness")
    if mitigation and isinstance(section, dict):
        section["mitigation"] = mitigation


STOPPED_RUNNING = "the server stopped while the search was running; its finished trials are kept"
STOPPED_QUEUED = "the server stopped before the search started"


def recover_searches(kb: KnowledgeBase) -> int:
    """Mark the queued or running searches whose process is gone (a stopped server, a killed CLI search)
    ``interrupted``; their finished trials stay, and a search another live process runs is left alone."""
    return kb.interrupt_orphaned_searches()
