"""The warm-started search: one facade that wires dataset, knowledge base, recommender and SMAC.

Data flows one way: dataset -> meta-features -> neighbours -> initial design -> SMAC -> runs ->
knowledge base. Every strategy is a row of :data:`STRATEGY_TABLE` (which SMAC facade, whether the
recommendations seed the initial design, which intensifier) and shares one ask/tell loop
(:class:`~metalearn.warmstart.loop.TrialLoop`), the same evaluation and the same bookkeeping:

* ``warm``   -- :class:`smac.HyperparameterOptimizationFacade` whose initial design is the
  recommended configurations (best first) plus ``n_smac_initial`` Sobol configurations;
* ``cold``   -- the same facade with SMAC's default (Sobol) initial design;
* ``random`` -- :class:`smac.RandomFacade` (the default configuration, then random samples);
* ``grid`` -- an exhaustive grid (:mod:`metalearn.warmstart.grid`) behind the same ``ask`` / ``tell``;
* ``hyperband`` / ``successive-halving`` -- :class:`smac.MultiFidelityFacade` with that intensifier,
  the budget being the fraction of training rows (``min_budget`` .. 1), warm-started like ``warm``.

``include`` / ``exclude`` / ``interpretable`` restrict the space and the recommendations
(:mod:`metalearn.restriction`). Running with the ``search_id`` of a stored search continues it: its trials are
loaded, numbered on, and told to the optimiser first (they seed the initial design instead of the
recommendations), the budget counts the new trials only, and the final model is rebuilt from all trials.

Trials run one at a time in this process, or ``workers`` at a time on a local Dask cluster (or
the cluster at ``dask_scheduler``); only this process writes to the knowledge base, every finished
trial at once, so an interrupted search keeps all the trials it finished.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from smac import HyperparameterOptimizationFacade, MultiFidelityFacade, RandomFacade, Scenario
from smac.initial_design import SobolInitialDesign
from smac.intensifier import Hyperband, SuccessiveHalving
from threadpoolctl import threadpool_limits

from metalearn.datasets import Dataset, FeatureSchema, stratified_subsample
from metalearn.errors import MetalearnError
from metalearn.evaluation import TrialResult, check_metric, evaluate_config, score_model
from metalearn.knowledge_base import KnowledgeBase, RunRecord
from metalearn.metafeatures import EXTRACTOR_VERSIONS, extract_metafeatures
from metalearn.pipeline import build_pipeline
from metalearn.protocol import (
    DEFAULT_METRIC,
    DEFAULTS,
    MULTI_FIDELITY,
    STRATEGIES,
    WARM_STRATEGIES,
    check_choice,
    metric_for,
    task_of_metric,
)
from metalearn.restriction import Restriction, restriction, split_names
from metalearn.space import allows, build_space, config_from_dict
from metalearn.warmstart.budget import JobBudget, JobClock
from metalearn.warmstart.continued import prior_configs, replay_candidates
from metalearn.warmstart.cost import affordable
from metalearn.warmstart.ensemble import CandidatePool, build_ensemble
from metalearn.warmstart.executors import make_executor
from metalearn.warmstart.grid import GRID_VERSION, GridOptimizer, GridPlan, grid_plan
from metalearn.warmstart.loop import MAX_REPEATS, TrialLoop
from metalearn.warmstart.recommend import Recommender
from metalearn.warmstart.recommendation import RecommendationReport
from metalearn.warmstart.result import SearchResult, Trial, WarmStartReport, trials_from_runs

__all__ = ["MULTI_FIDELITY", "STRATEGIES", "STRATEGY_TABLE", "SearchResult", "SearchSettings", "Trial",
           "WarmStartSearch"]

log = logging.getLogger(__name__)

#: how many of the best trials' refits the time budget keeps time for when the search ends with an ensemble
RESERVED_MEMBERS = 5


@dataclass(frozen=True)
class Strategy:
    """How a strategy maps onto SMAC: its facade, whether it is warm-started, its intensifier."""

    facade: type
    warm: bool
    intensifier: type | None = None


STRATEGY_TABLE: dict[str, Strategy] = {
    "warm": Strategy(HyperparameterOptimizationFacade, warm=True),
    "cold": Strategy(HyperparameterOptimizationFacade, warm=False),
    "random": Strategy(RandomFacade, warm=False),
    "grid": Strategy(GridOptimizer, warm=False),
    "hyperband": Strategy(MultiFidelityFacade, warm=True, intensifier=Hyperband),
    "successive-halving": Strategy(MultiFidelityFacade, warm=True, intensifier=SuccessiveHalving),
}
assert tuple(STRATEGY_TABLE) == STRATEGIES and all(STRATEGY_TABLE[s].warm for s in WARM_STRATEGIES)


@dataclass
class SearchSettings:
    """Budget and protocol of one search (defaults: :data:`metalearn.protocol.DEFAULTS`)."""

    strategy: str = DEFAULTS.strategy
    n_trials: int | None = DEFAULTS.n_trials
    time_budget: float | None = None
    trial_time_limit: float | None = None
    #: None: the task's default (balanced_accuracy for classification, r2 for regression)
    metric: str | None = None
    folds: int = DEFAULTS.folds
    seed: int = DEFAULTS.seed
    max_rows: int | None = DEFAULTS.max_rows
    n_warm: int = DEFAULTS.n_warm
    n_smac_initial: int = DEFAULTS.n_smac_initial
    k: int = DEFAULTS.k
    refit: bool = True
    workers: int = 1
    dask_scheduler: str | None = None
    test_size: float | None = None
    min_budget: float = DEFAULTS.min_budget
    eta: int = DEFAULTS.eta
    ensemble_size: int = DEFAULTS.ensemble_size
    ensemble_candidates: int = DEFAULTS.ensemble_candidates
    #: estimator families and feature preprocessors to keep / leave out, and the interpretable preset
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    interpretable: bool = False
    #: ``strategy="grid"``: hyperparameter -> values (None: the default grid, of version ``grid_version``)
    grid: dict[str, list[Any]] | None = None
    grid_version: str | None = None
    max_grid_size: int = DEFAULTS.max_grid_size

    def validate(self) -> SearchSettings:
        check_choice("strategy", self.strategy, STRATEGIES)
        if self.metric is not None:
            check_metric(self.metric)
        self.include, self.exclude = split_names(self.include), split_names(self.exclude)
        if self.n_trials is None and self.time_budget is None and self.strategy != "grid":
            raise MetalearnError("give a budget: a number of trials, a time budget in seconds, or both")
        if self.grid is not None and self.strategy != "grid":
            raise MetalearnError("a grid is only used by --strategy grid")
        if self.max_grid_size < 1:
            raise MetalearnError(f"max_grid_size must be at least 1, got {self.max_grid_size}")
        checks = [(self.n_trials is not None and self.n_trials < 1,
                   f"n_trials must be at least 1, got {self.n_trials}"),
                  (self.time_budget is not None and self.time_budget <= 0,
                   f"time_budget must be positive, got {self.time_budget}"),
                  (self.trial_time_limit is not None and self.trial_time_limit <= 0,
                   f"trial_time_limit must be positive, got {self.trial_time_limit}"),
                  (self.workers < 1, f"workers must be at least 1, got {self.workers}"),
                  (self.test_size is not None and not 0 < self.test_size < 1,
                   f"test_size must be between 0 and 1, got {self.test_size}"),
                  (not 0 < self.min_budget <= 1, f"min_budget must be in (0, 1], got {self.min_budget}"),
                  (self.folds < 2, f"folds must be at least 2, got {self.folds}"),
                  (self.max_rows is not None and self.max_rows < 1,
                   f"max_rows must be at least 1, got {self.max_rows}"),
                  (self.ensemble_size < 0, f"ensemble_size must be 0 or more, got {self.ensemble_size}"),
                  (self.ensemble_candidates < 1,
                   f"ensemble_candidates must be at least 1, got {self.ensemble_candidates}")]
        for failed, message in checks:
            if failed:
                raise MetalearnError(message)
        return self

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchSettings:
        """Settings from a stored dict (unknown keys, e.g. ``submitted_at``, are ignored)."""
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


TrialCallback = Callable[[Trial, SearchResult], None]


class WarmStartSearch:
    """Facade: register the dataset, recommend, run SMAC, store every trial, refit the best.

    ``kb`` is a :class:`KnowledgeBase`, a path/URL, or ``None`` for ``METALEARN_DB``.
    ``exclude_ids`` / ``exclude_families`` keep datasets out of the warm start (benchmarks).
    """

    def __init__(self, kb: KnowledgeBase | str | None = None, settings: SearchSettings | None = None, *,
                 recommender: Recommender | None = None, exclude_ids: Collection[int] = (),
                 exclude_families: Collection[str] = (), record: bool = True) -> None:
        self.kb = kb if isinstance(kb, KnowledgeBase) else KnowledgeBase(kb)
        self.settings = (settings or SearchSettings()).validate()
        self._recommender = recommender
        self.exclude_ids, self.exclude_families = set(exclude_ids), set(exclude_families)
        self.record = record
        self.budget = JobBudget(JobClock.started(self.settings.time_budget), self.settings.folds)  # run() sets it
        self.restriction: Restriction | None = None
        self.grid: GridPlan | None = None
        self.prior = 0  # trials of a continued search loaded before this run

    @property
    def recommender(self) -> Recommender:
        if self._recommender is None or self._recommender.metric != self.settings.metric:
            self._recommender = Recommender(self.kb, self.settings.metric or DEFAULT_METRIC)
        return self._recommender

    def for_task(self, dataset: Dataset) -> SearchSettings:
        """The settings with the metric resolved for the dataset's task (its default when none was given);
        a metric of the other task is a :class:`MetalearnError`, and so are names ``include`` / ``exclude``
        do not know."""
        return self.control(dataset.task)

    def control(self, task: str) -> SearchSettings:
        """:meth:`for_task` by the task's name (checks a request before its dataset is loaded)."""
        s = self.settings = replace(self.settings, metric=metric_for(task, self.settings.metric))
        if s.include or s.exclude or s.interpretable:
            self.restriction = restriction(task, s.include, s.exclude, "interpretable" if s.interpretable else None)
        return self.settings

    def space(self, task: str) -> Any:
        """The search space of ``task``, restricted as the settings say."""
        return build_space(seed=self.settings.seed, task=task, restriction=self.restriction)

    def plan_grid(self, task: str) -> GridPlan:
        """The points of a grid search (a :class:`MetalearnError` when there are more than ``max_grid_size``)."""
        s = self.settings
        plan = grid_plan(self.space(task), task, s.grid)
        if plan.size > s.max_grid_size:
            raise MetalearnError(f"the grid has {plan.size} points, more than the limit of {s.max_grid_size} "
                                 "(--max-grid-size); give a smaller grid (--grid FILE, --include/--exclude)")
        self.settings = replace(s, grid_version=GRID_VERSION if s.grid is None else None)
        return plan

    # ------------------------------------------------------------------ steps

    def prepare(self, dataset: Dataset) -> tuple[int, dict[str, float | None]]:
        """Register the dataset and its meta-features (extracted once per extractor version)."""
        self.for_task(dataset)
        dataset_id = self.kb.register(dataset)
        features = self.kb.metafeatures(dataset_id, EXTRACTOR_VERSIONS[dataset.task])
        if features is None:
            mf = extract_metafeatures(dataset.X, dataset.y, dataset.categorical, seed=0, task=dataset.task)
            self.kb.store_metafeatures(dataset_id, mf.extractor, mf.features, mf.seconds)
            features = mf.features
        return dataset_id, features

    def recommend(self, dataset: Dataset, features: dict[str, float | None], top: int) -> RecommendationReport:
        return self.recommender.recommend(
            features, top=top, k=self.settings.k, dataset=dataset.describe(),
            exclude_ids=self.exclude_ids, exclude_families=self.exclude_families,
            exclude_hashes={dataset.content_hash},
            allowed=(lambda config: allows(self.restriction, config)) if self.restriction is not None else None,
        )

    def facade(self, space: Any, initial: list[Any], outdir: Path) -> Any:
        """The SMAC facade of the strategy, its initial design starting with ``initial`` when warm (or when it
        holds a continued search's trials); the grid's optimiser for ``grid``."""
        s, strategy = self.settings, STRATEGY_TABLE[self.settings.strategy]
        if strategy.facade is GridOptimizer:
            return GridOptimizer(self.grid.configurations if self.grid else [])
        # the loop stops itself; the scenario's n_trials only sizes SMAC's designs
        nominal = max(s.n_trials or 200, len(initial) + s.n_smac_initial + 1)
        fidelity = {"min_budget": s.min_budget, "max_budget": 1.0} if strategy.intensifier else {}
        scenario = Scenario(space, deterministic=True, n_trials=nominal, seed=s.seed, output_directory=outdir,
                            walltime_limit=s.time_budget or np.inf, **fidelity)
        if strategy.facade is RandomFacade:
            return RandomFacade(scenario, None, overwrite=True, logging_level=40)
        if strategy.warm or (self.prior and initial):  # recommendations (or the trials so far) first (at the
            # first rung for multi-fidelity), then Sobol points
            own = (SobolInitialDesign(scenario, n_configs=s.n_smac_initial, max_ratio=1.0).select_configurations()
                   if s.n_smac_initial else [])
            design = SobolInitialDesign(scenario, n_configs=0, additional_configs=initial + own)
        else:
            design = HyperparameterOptimizationFacade.get_initial_design(scenario)
        if strategy.intensifier is not None:
            intensifier = strategy.intensifier(scenario, eta=s.eta, incumbent_selection="highest_budget")
        else:
            intensifier = HyperparameterOptimizationFacade.get_intensifier(scenario, max_config_calls=1)
        return strategy.facade(scenario, None, initial_design=design, intensifier=intensifier, overwrite=True,
                               logging_level=40)

    def initial_configs(self, space: Any, report: RecommendationReport | None,
                        n_rows: int | None = None) -> tuple[list[Any], WarmStartReport]:
        """The recommendations as configurations of ``space``, and a note of those that could not be used (with a
        time budget and ``n_rows``, also those too slow for it: :func:`~metalearn.warmstart.cost.affordable`)."""
        s, recommendations = self.settings, list(report.recommendations) if report else []
        configs, note = [], WarmStartReport(requested=len(recommendations))
        if report is not None and s.time_budget is not None and n_rows:
            recommendations, slow = affordable(recommendations, report.neighbors, self.recommender.recorded_seconds(),
                                               lambda d: self.kb.dataset(d).n_rows, n_rows, s.folds, s.max_rows,
                                               s.time_budget)
            note.dropped.extend(slow)
        for rec in recommendations:
            try:
                config = config_from_dict(rec.configuration, space)
            except MetalearnError as exc:
                note.dropped.append(f"recommendation {rec.rank} ({rec.algorithm}): {exc}")
                continue
            config.origin = "warm_start"
            configs.append(config)
        note.used = len(configs)
        if note.dropped:
            log.warning("%d of %d recommended configurations cannot be used in this search (space or time "
                        "budget)%s", len(note.dropped), note.requested, "; it runs cold" if note.ran_cold else "")
        return configs, note

    def refit(self, configuration: dict[str, Any], dataset: Dataset, max_rows: int | None = None) -> Any:
        """The pipeline of ``configuration`` fitted on all rows of ``dataset`` (a sample of ``max_rows``)."""
        pipeline = build_pipeline(configuration, dataset.numeric, dataset.categorical,
                                  n_features=dataset.n_features, random_state=self.settings.seed)
        X, y = (stratified_subsample(dataset.X, dataset.y, max_rows, self.settings.seed, task=dataset.task)
                if max_rows else (dataset.X, dataset.y))
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            pipeline.fit(X, y)
        return pipeline

    # ------------------------------------------------------------------ run

    def run(self, dataset: Dataset, *, callback: TrialCallback | None = None,
            should_stop: Callable[[], Any] | None = None, search_id: int | None = None,
            run_key_prefix: str | None = None, finish: bool = True, started_at: float | None = None) -> SearchResult:
        """Run the search on ``dataset`` and return its result.

        ``should_stop()`` is asked between trials: a truthy value stops the search (``cancelled``; the word
        ``"interrupted"`` for a signal), and ``KeyboardInterrupt`` stops it too (``interrupted``). Finished
        trials are kept either way, a trial killed in flight is stored ``cancelled``, and an interrupted
        search skips its final model. While it runs, the search row is owned by this process and gets a
        heartbeat. With ``run_key_prefix`` every stored run gets the key ``f"{prefix}{trial number}"`` and a
        search with the same prefix resumes. With ``finish=False`` the search row is left active: the caller
        sets its final status. ``time_budget`` counts from ``started_at`` (epoch seconds; default now) until
        the final model is ready (:mod:`metalearn.warmstart.budget`).
        """
        s = self.settings
        members = min(s.ensemble_candidates, RESERVED_MEMBERS) if self.ensembles else 1
        self.budget = JobBudget(JobClock.started(s.time_budget, started_at), s.folds, s.refit, members)
        start = self.budget.clock.start
        self.for_task(dataset)
        if self.settings.strategy == "grid":  # refused above its size before anything is stored
            self.grid = self.plan_grid(dataset.task)
        result, dataset_id = self._start(dataset, search_id, run_key_prefix)
        with self.kb.keep_alive(result.search_id if self.record else None):
            self._run(dataset, dataset_id, result, start, should_stop, callback, run_key_prefix, finish)
        result.seconds = time.perf_counter() - start
        return result

    def _run(self, dataset: Dataset, dataset_id: int | None, result: SearchResult, start: float,
             should_stop: Callable[[], Any] | None, callback: TrialCallback | None, run_key_prefix: str | None,
             finish: bool) -> None:
        """The trials, the final status (when ``finish``), then the final model."""
        s = self.settings
        if s.test_size:  # keep a test split aside: trials and the refit only see the rest
            dataset, result.extra["test"] = dataset.split(s.test_size, s.seed)
        outdir = Path(tempfile.mkdtemp(prefix="metalearn-smac-"))
        X, y = stratified_subsample(dataset.X, dataset.y, s.max_rows, s.seed, task=dataset.task)
        self.budget.scale = len(dataset.X) / max(len(X), 1)  # all rows / trial rows: what a refit costs more
        pool = CandidatePool(outdir / "predictions", s.ensemble_candidates if self.ensembles else 0)
        executor = None
        try:
            try:
                executor = make_executor(s.workers, s.dask_scheduler)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._loop(X, y, dataset.categorical, dataset_id, result, executor, outdir, start,
                               should_stop, callback, run_key_prefix, pool).run()
                if result.status == "running":
                    result.status = "succeeded" if result.best else "failed"
            except KeyboardInterrupt:
                result.status = "interrupted"
            finally:
                if executor is not None:
                    executor.close()
                if result.status == "running":
                    result.status = "failed"
                if finish and self.record and result.search_id is not None:
                    self.finish(result)
            if result.status != "interrupted":
                if self.prior and pool.size:
                    stored = self.kb.ensemble_of(result.search_id) if self.record and result.search_id else None
                    replay_candidates(pool, result.trials[:self.prior], stored, X, y, dataset.categorical, s)
                self._final_model(result, dataset, dataset_id, pool, y)
        finally:
            shutil.rmtree(outdir, ignore_errors=True)

    @property
    def ensembles(self) -> bool:
        """Whether this search ends with an ensemble (it refits, and the ensemble size is not 0)."""
        return self.settings.refit and self.settings.ensemble_size > 0

    def finish(self, result: SearchResult, error: str | None = None) -> bool:
        """Write the search's final status and best run (a search already finished keeps its status)."""
        best = result.best
        if error is None and result.status == "interrupted":
            error = "interrupted by a signal; its finished trials are kept"
        return self.kb.finish_search(result.search_id, result.status, best.run_id if best else None,
                                     error or (None if best else "no successful trial"))

    def _start(self, dataset: Dataset, search_id: int | None,
               run_key_prefix: str | None) -> tuple[SearchResult, int | None]:
        """Register the dataset, recommend (warm strategies), open the search row and the result."""
        s = self.settings
        if self.record:
            dataset_id, features = self.prepare(dataset)
        else:
            dataset_id = None
            features = extract_metafeatures(dataset.X, dataset.y, dataset.categorical, task=dataset.task).features
        prior = (trials_from_runs(self.kb.runs_frame(search_id=search_id))
                 if self.record and search_id is not None else [])
        self.prior = len(prior)
        warm = STRATEGY_TABLE[s.strategy].warm and not prior  # a continued search starts from its own trials
        report = self.recommend(dataset, features, s.n_warm) if warm else None
        if self.record and search_id is None:
            search_id = self.kb.start_search(dataset_id, s.strategy, asdict(s))
        info = dataset.describe() | {"id": dataset_id, "target": dataset.target}
        result = SearchResult(search_id, info, s, status="running", recommendations=report,
                              extra={"columns": list(dataset.X.columns), "categorical": list(dataset.categorical)},
                              schema=FeatureSchema.of(dataset), trials=prior)
        if self.grid is not None:
            result.extra["grid"] = self.grid.to_json()
        if run_key_prefix is not None and self.record:
            result.trials = trials_from_runs(self.kb.runs_frame(dataset_id, run_key_prefix=run_key_prefix),
                                             run_key_prefix=run_key_prefix)
        return result, dataset_id

    def _loop(self, X: pd.DataFrame, y: pd.Series, categorical: list[str], dataset_id: int | None,
              result: SearchResult, executor: Any, outdir: Path, start: float, should_stop: Callable[[], Any] | None,
              callback: TrialCallback | None, run_key_prefix: str | None, pool: CandidatePool) -> TrialLoop:
        s = self.settings
        space = self.space(task_of_metric(s.metric))
        initial, result.warm_start = self.initial_configs(space, result.recommendations, result.dataset.get("n_rows"))
        if not STRATEGY_TABLE[s.strategy].warm or self.prior:
            result.warm_start = None
        if self.prior:  # a continued search: SMAC is told its trials first (the loop knows their results)
            initial = prior_configs(space, result.trials)
        data = (executor.scatter(X), executor.scatter(y))

        def evaluate(config: dict[str, Any], budget: float, time_limit: float | None) -> Any:
            return executor.submit(evaluate_config, config, data[0], data[1], categorical, s.metric, s.folds,
                                   seed=s.seed, time_limit=time_limit, budget=budget, keep_predictions=pool.size > 0)

        def record(trial: Trial, outcome: TrialResult) -> int | None:
            pool.offer(trial, outcome.predictions)
            if not self.record:
                return None
            # a cancelled trial gets no key: a resumed search evaluates it again
            key = f"{run_key_prefix}{trial.number}" if run_key_prefix is not None and trial.status != "cancelled" \
                else None
            return self._store(dataset_id, result.search_id, trial, outcome, key)

        return TrialLoop(self.facade(space, initial, outdir), executor, result, evaluate, record,
                         lambda in_flight: self._budget_spent(result, in_flight),
                         lambda: self.budget.trial_limit(s.trial_time_limit, result.trials), start, should_stop,
                         callback,
                         max_repeats=MAX_REPEATS + len(result.trials))

    def _final_model(self, result: SearchResult, dataset: Dataset, dataset_id: int | None, pool: CandidatePool,
                     y: pd.Series) -> None:
        """Refit the best pipeline, or build the ensemble of the best trials; score the kept test split.

        The hook a subclass overrides to end a search differently (as ``BaseSearchCV._run_search``): the trial
        study's ``KeepingSearch`` (``metalearn.benchmark.jobs``) keeps the out-of-fold predictions instead."""
        s = self.settings
        if not s.refit or result.best is None:
            return
        def refit(trial: Trial) -> Any:
            return self.refit(trial.configuration, dataset, self.budget.refit_rows(trial, len(dataset.X)))

        built = (build_ensemble(pool, result.trials, y, s.metric, s.ensemble_size, refit,
                                deadline=self.budget.clock.deadline, estimate=self.budget.refit_estimate)
                 if self.ensembles else None)
        if built is None:
            result.model = refit(result.best)
        else:
            result.model, result.ensemble = built
            if self.record and dataset_id is not None:
                members = [(m["run_id"], m["weight"]) for m in result.ensemble.members if m["run_id"] is not None]
                result.ensemble.run_id = self.kb.record_ensemble(
                    dataset_id, result.search_id, s.metric, result.ensemble.oof_score, 0.0, members, s.seed)
        test = result.extra.get("test")
        if test is not None:
            result.extra["test_score"] = score_model(result.model, test.X, test.y, s.metric)

    def _budget_spent(self, result: SearchResult, in_flight: int) -> bool:
        s = self.settings
        if s.n_trials is not None and len(result.trials) - self.prior + in_flight >= s.n_trials:
            return True
        return self.budget.spent(result.trials)

    def _store(self, dataset_id: int | None, search_id: int | None, trial: Trial, outcome: TrialResult,
               run_key: str | None = None) -> int | None:
        run = RunRecord(dataset_id=dataset_id, config=trial.configuration, algorithm=trial.algorithm,
                        metric=self.settings.metric, status=outcome.status, score=outcome.score,
                        score_std=outcome.std, seconds=outcome.seconds, origin=trial.origin, search_id=search_id,
                        seed=self.settings.seed, error=outcome.error, run_key=run_key, budget=trial.budget)
        ids = self.kb.record_runs([run])
        return ids[0] if ids else None
