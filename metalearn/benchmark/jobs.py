"""One benchmark job: a strategy's search on one dataset and seed, scored on the held-out test part.

``warm``, ``cold``, ``random`` (and ``warm@<fraction>``) run one :class:`WarmStartSearch` of
``max(budgets)`` trials; the incumbent after each budget (:func:`metalearn.warmstart.result.incumbent`)
is refit on train and scored on test (:func:`score_predictions`: balanced accuracy, or R^2 and the negated RMSE
for regression). With ensembles (``ensemble_size`` > 0, the default) each budget's model is what a search of that
many trials ends with: the ensemble built by :func:`metalearn.warmstart.ensemble.build_ensemble` from the
out-of-fold predictions of its trials, members refit on train; the row's ``test_*`` columns score it and
``single_test_*`` the incumbent. Leave-one-family-out: the query's family (and its content hash) is excluded
from the neighbours and the portfolio; what was actually used is recorded.
"""

from __future__ import annotations

import tempfile
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import balanced_accuracy_score

from metalearn.benchmark.checkpoint import Done, now
from metalearn.benchmark.config import EXTRA_TEST_METRICS, BenchmarkConfig, strategy_fraction
from metalearn.benchmark.scratch import ReferenceDataset
from metalearn.datasets import Dataset
from metalearn.errors import MetalearnError
from metalearn.evaluation import score_proba
from metalearn.knowledge_base import KnowledgeBase
from metalearn.protocol import DEFAULT_METRICS, MULTI_FIDELITY
from metalearn.seeding import DatasetSource
from metalearn.space import canonical_json
from metalearn.warmstart.ensemble import CandidatePool, build_ensemble
from metalearn.warmstart.recommend import Recommender
from metalearn.warmstart.result import SearchResult, Trial, incumbent
from metalearn.warmstart.search import SearchSettings, WarmStartSearch

DUMMY = "__dummy__"


@dataclass
class DatasetJob:
    """What a worker needs for one dataset (picklable)."""

    source: DatasetSource
    config: BenchmarkConfig
    kb_url: str
    reference: list[ReferenceDataset]
    output: str
    strategies: tuple[str, ...]
    done: Done = field(default_factory=set)
    warm_seconds: dict[int, float] = field(default_factory=dict)


@dataclass
class Split:
    """One seed's outer split of a dataset, with the test scores (:func:`score_predictions`) of its refits so far."""

    dataset: Dataset
    train: Dataset
    test: Dataset
    seed: int
    refits: dict[str, dict[str, float]] = field(default_factory=dict)


def balanced_accuracy(y_true: Any, y_pred: Any) -> float:
    """Balanced accuracy, warnings silenced (a class missing from the predictions)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(y_true, y_pred))


def score_predictions(task: str, y_true: Any, y_pred: Any) -> dict[str, float]:
    """The test columns of a row: ``test_score`` (balanced accuracy, or R^2 for regression) and, for regression,
    ``test_rmse`` (negated, higher is better, as every error metric: :data:`metalearn.protocol.NEGATED_METRICS`)."""
    if task != "regression":
        return {"test_score": balanced_accuracy(y_true, y_pred)}
    y, predicted = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float).reshape(-1)
    return {"test_score": score_proba(DEFAULT_METRICS[task], y, predicted, None),
            **{f"test_{m}": score_proba(m, y, predicted, None) for m in EXTRA_TEST_METRICS[task]}}


def dummy_scores(train: Dataset, test: Dataset) -> dict[str, float]:
    """Test scores of a majority-class model (the training mean for regression): what a strategy without a
    successful trial delivers."""
    if train.task == "regression":
        model: Any = DummyRegressor(strategy="mean").fit(train.X, train.y)
    else:
        model = DummyClassifier(strategy="most_frequent").fit(train.X, train.y)
    return score_predictions(train.task, test.y, model.predict(test.X))


def run_order(strategies: Sequence[str]) -> list[str]:
    """warm first (it pays for the meta-features and sets flaml's time budget), then the rest, flaml last."""
    rank = {"warm": 0, "cold": 2, "random": 3, "flaml-zeroshot": 4, "flaml": 5}
    return sorted(strategies, key=lambda s: (rank.get(s, 1), s))


def base_row(job: DatasetJob, split: Split, strategy: str) -> dict[str, Any]:
    """A result row's fields common to every strategy (the strategy-specific ones empty)."""
    dataset = split.dataset
    return {"dataset": dataset.name, "dataset_key": job.source.key, "family": dataset.family or dataset.name,
            "task": dataset.task, "seed": split.seed, "strategy": strategy, "test_rmse": None,
            "n_train": split.train.n_rows, "n_test": split.test.n_rows, "n_classes": dataset.n_classes,
            "content_hash": dataset.content_hash, "kb_fraction": None, "kb_datasets": None, "neighbors": [],
            "neighbor_families": [], "time_budget": None, "incumbent_trial": None, "algorithm": None,
            "cv_score": None, "single_test_score": None, "single_test_rmse": None, "ensemble_members": None,
            "ensemble_oof_score": None}


def fraction_subset(candidates: list[int], fraction: float, seed: int, key: str) -> list[int]:
    """A seeded random ``fraction`` of the candidate dataset ids (all of them at 1)."""
    if fraction >= 1.0 or not candidates:
        return sorted(candidates)
    size = max(1, int(round(fraction * len(candidates))))
    rng = np.random.default_rng([seed, int(round(fraction * 10_000)), zlib.crc32(key.encode())])
    return sorted(int(i) for i in rng.choice(sorted(candidates), size=size, replace=False))


class KeepingSearch(WarmStartSearch):
    """A search whose candidate pool keeps every successful trial's out-of-fold predictions, and which keeps
    them (with the labels they predict) instead of building a final model: the benchmark builds the ensemble
    of the first ``b`` trials itself, at every budget ``b``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.oof: dict[int, np.ndarray] = {}
        self.oof_y: pd.Series | None = None

    def _final_model(self, result: SearchResult, dataset: Dataset, dataset_id: int | None, pool: CandidatePool,
                     y: pd.Series) -> None:
        self.oof, self.oof_y = dict(pool.best_first()), y


@dataclass
class _Search:
    """A finished search of one job, with what its warm start was allowed to read."""

    strategy: str
    engine: WarmStartSearch
    result: SearchResult
    family: str
    excluded: set[int]
    fraction: float | None
    used: list[int]


def _search(job: DatasetJob, kb: KnowledgeBase, strategy: str, split: Split) -> _Search:
    config, dataset = job.config, split.dataset
    family = dataset.family or dataset.name
    excluded = {r.id for r in job.reference if r.family == family or r.content_hash == dataset.content_hash}
    fraction = strategy_fraction(strategy)
    base = "warm" if fraction is not None else strategy
    ensembles = config.ensemble_size > 0  # then the pool keeps every trial: each budget picks its best candidates
    settings = SearchSettings(strategy=base, n_trials=config.max_budget, trial_time_limit=config.trial_time_limit,
                              metric=config.metric, folds=config.folds, seed=split.seed, max_rows=config.max_rows,
                              n_warm=config.n_warm, k=config.k, refit=ensembles, ensemble_size=config.ensemble_size,
                              ensemble_candidates=max(config.max_budget, config.ensemble_candidates))
    recommender = None
    used: list[int] = []
    if fraction is not None or base in MULTI_FIDELITY:  # warm-started: read only the reference datasets
        candidates = [r.id for r in job.reference if r.id not in excluded]
        used = fraction_subset(candidates, fraction or 1.0, split.seed, job.source.key)
        recommender = Recommender(kb, config.metric, restrict_to=used)
    engine = (KeepingSearch if ensembles else WarmStartSearch)(
        kb, settings, recommender=recommender, exclude_ids=excluded, exclude_families={family})
    result = engine.run(split.train)
    if result.status in ("interrupted", "cancelled"):  # stopped by Ctrl-C or a signal: rerun on resume
        raise MetalearnError(f"{strategy} search on {dataset.name} ended {result.status} after "
                             f"{len(result.trials)} trials")
    return _Search(strategy, engine, result, family, excluded, fraction, used)


def _family(names: dict[int, ReferenceDataset], dataset_id: int, fallback: str | None) -> str | None:
    return names[dataset_id].family if dataset_id in names else fallback


def _leak_record(job: DatasetJob, split: Split, search: _Search) -> dict[str, Any]:
    """What the warm start read: neighbours, portfolio and evidence datasets, with their families."""
    report = search.result.recommendations
    names = {r.id: r for r in job.reference}
    neighbors = list(report.neighbors) if report is not None else []
    recommendations = list(report.recommendations) if report is not None else []
    rec = search.engine.recommender
    dropped = rec.excluded_ids(search.excluded, {search.family},
                               {split.train.content_hash, split.dataset.content_hash})
    portfolio_ids = sorted(set(int(i) for i in rec.performance["dataset_id"]) - dropped)
    evidence = sorted({(e.dataset_id, e.dataset) for r in recommendations for e in r.evidence})
    return {
        "dataset": split.dataset.name, "dataset_key": job.source.key, "family": search.family, "seed": split.seed,
        "strategy": search.strategy, "kb_fraction": search.fraction, "kb_datasets": len(search.used),
        "excluded_ids": sorted(search.excluded),
        "neighbors": [{"id": n.dataset_id, "name": n.name, "family": _family(names, n.dataset_id, n.family),
                       "distance": n.distance} for n in neighbors],
        "portfolio_datasets": [{"id": i, "name": names[i].name if i in names else None,
                                "family": _family(names, i, None)} for i in portfolio_ids],
        "evidence_datasets": [{"id": i, "name": n, "family": _family(names, i, None)} for i, n in evidence],
        "recommended": [{"configuration_id": r.configuration_id, "algorithm": r.algorithm, "source": r.source}
                        for r in recommendations],
        "far": bool(report.far) if report is not None else None, "created": now(),
    }


def _test_scores(search: _Search, split: Split, configuration: dict[str, Any] | None) -> dict[str, float]:
    """Test scores of ``configuration`` refit on train (the dummy model for None), computed once per split."""
    key = DUMMY if configuration is None else canonical_json(configuration)
    if key not in split.refits:
        if configuration is None:
            split.refits[key] = dummy_scores(split.train, split.test)
        else:
            model = search.engine.refit(configuration, split.train)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                split.refits[key] = score_predictions(split.test.task, split.test.y, model.predict(split.test.X))
    return split.refits[key]


def budget_incumbents(result: SearchResult, budgets: Sequence[int]) -> list[dict[str, Any]]:
    """The benchmark's reader of a search: per budget, the incumbent after that many trials (or None),
    the trials counted and the seconds they took."""
    trials, out = result.trials, []
    for budget in budgets:
        n = min(budget, len(trials))
        out.append({"budget": budget, "incumbent": incumbent(trials, budget), "trials": n,
                    "seconds": float(trials[n - 1].elapsed if n else result.seconds)})
    return out


def budget_ensemble(job: DatasetJob, split: Split, search: _Search, n_trials: int, models: dict[int, Any]
                    ) -> tuple[dict[str, float], dict[str, Any]] | None:
    """Test scores of the ensemble a search of its first ``n_trials`` trials ends with (its best
    ``ensemble_candidates``, greedy selection, members refit on train), and its size and out-of-fold score;
    None without a candidate. ``models`` caches the refits across budgets (trial number -> pipeline; only the
    members of this ensemble are kept)."""
    engine, config = search.engine, job.config
    if not isinstance(engine, KeepingSearch) or engine.oof_y is None:
        return None
    trials = search.result.trials[:n_trials]
    by_number = {t.number: t for t in trials}

    def refit(trial: Trial) -> Any:
        if trial.number not in models:
            models[trial.number] = engine.refit(trial.configuration, split.train)
        return models[trial.number]

    with tempfile.TemporaryDirectory(prefix="metalearn-bench-") as folder:
        pool = CandidatePool(Path(folder), config.ensemble_candidates)
        for trial in trials:
            pool.offer(trial, engine.oof.get(trial.number))
        built = build_ensemble(pool, trials, engine.oof_y, config.metric, config.ensemble_size, refit)
    if built is None:
        return None
    model, report = built
    members = {m["trial"] for m in report.members}
    for number in set(models) - members:
        del models[number]
    if len(members) == 1:  # the member's own pipeline: the refit (and score) of the single path
        scores = _test_scores(search, split, by_number[next(iter(members))].configuration)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = score_predictions(split.test.task, split.test.y, model.predict(split.test.X))
    return scores, {"ensemble_members": len(members), "ensemble_oof_score": float(report.oof_score)}


def _budget_rows(job: DatasetJob, split: Split, search: _Search) -> list[dict[str, Any]]:
    """One row per budget: the incumbent after that many trials (with ensembles: the ensemble of those trials,
    and the incumbent's ``single_*`` scores), its test score and the seconds used."""
    names = {r.id: r for r in job.reference}
    report = search.result.recommendations
    neighbors = list(report.neighbors) if search.fraction is not None and report is not None else []
    rows: list[dict[str, Any]] = []
    models: dict[int, Any] = {}
    for cell in budget_incumbents(search.result, job.config.budgets):
        trial = cell["incumbent"]
        row = base_row(job, split, search.strategy)
        if trial is not None:
            row.update(incumbent_trial=trial.number, algorithm=trial.algorithm, cv_score=trial.score)
        scores = _test_scores(search, split, None if trial is None else trial.configuration)
        if job.config.ensemble_size > 0:
            row.update({f"single_{k}": v for k, v in scores.items()})
            built = budget_ensemble(job, split, search, cell["trials"], models) if trial is not None else None
            if built is not None:
                scores = built[0]
                row.update(built[1])
        row.update(scores, budget=cell["budget"], seconds=cell["seconds"], trials=cell["trials"])
        if search.fraction is not None:
            row.update(kb_fraction=search.fraction, kb_datasets=len(search.used),
                       neighbors=[x.name for x in neighbors],
                       neighbor_families=[_family(names, x.dataset_id, x.family) for x in neighbors])
        rows.append(row)
    return rows


def run_search(job: DatasetJob, kb: KnowledgeBase, strategy: str, split: Split
               ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Result rows of one search strategy (one per budget), and its leak record (warm-started ones only)."""
    search = _search(job, kb, strategy, split)
    leak = _leak_record(job, split, search) if search.fraction is not None else None
    return _budget_rows(job, split, search), leak
