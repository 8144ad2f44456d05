"""The warm-started search: one facade that wires dataset, knowledge base, recommender and SMAC.

Data flows one way: dataset -> meta-features -> neighbours -> initial design -> SMAC -> runs ->
knowledge base. All strategies share one code path (SMAC's ask/tell loop over the same space,
the same evaluation and the same bookkeeping), so comparisons between them are fair:

* ``warm``   -- :class:`smac.HyperparameterOptimizationFacade` whose initial design is the
  recommended configurations (best first) plus ``n_smac_initial`` Sobol configurations;
* ``cold``   -- the same facade with SMAC's default (Sobol) initial design;
* ``random`` -- :class:`smac.RandomFacade` (the default configuration, then random samples);
* ``hyperband`` / ``successive-halving`` -- :class:`smac.MultiFidelityFacade` with that intensifier,
  the budget being the fraction of training rows (``min_budget`` .. 1); warm-started like ``warm``,
  the recommended configurations entering at the first rung. Lower-budget runs are stored with
  their budget; recommendations and neighbours only use full-budget runs.

Trials run one at a time in this process, or ``workers`` at a time on a local Dask cluster (or
the cluster at ``dask_scheduler``); only this process writes to the knowledge base.

Every finished trial (crashes and timeouts included) is written to the knowledge base at once,
so an interrupted search keeps all the trials it finished.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from metalearn.knowledge_base import KnowledgeBase, RunRecord, canonical_json
from metalearn.warmstart.executors import make_executor
from metalearn.warmstart.recommend import RecommendationReport, Recommender

from metalearn.datasets import Dataset, stratified_subsample
from metalearn.errors import MetalearnError
from metalearn.evaluation import DEFAULT_METRIC, TrialResult, check_metric, evaluate_config, worst_score
from metalearn.space import algorithm_of, build_space, canonical_config

STRATEGIES = ("warm", "cold", "random", "hyperband", "successive-halving")
MULTI_FIDELITY = ("hyperband", "successive-halving")
ORIGINS = ("warm_start", "smac_initial", "smac", "random")

log = logging.getLogger(__name__)


@dataclass
class SearchSettings:
    """Budget and protocol of one search."""

    strategy: str = "warm"
    n_trials: int | None = 50
    time_budget: float | None = None
    trial_time_limit: float | None = None
    metric: str = DEFAULT_METRIC
    folds: int = 5
    seed: int = 0
    max_rows: int | None = 5000
    n_warm: int = 10
    n_smac_initial: int = 2
    k: int = 5
    refit: bool = True
    workers: int = 1
    dask_scheduler: str | None = None
    test_size: float | None = None
    min_budget: float = 0.1
    eta: int = 3

    def validate(self) -> SearchSettings:
        if self.strategy not in STRATEGIES:
            raise MetalearnError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        check_metric(self.metric)
        if self.n_trials is None and self.time_budget is None:
            raise MetalearnError("give a budget: a number of trials, a time budget in seconds, or both")
        if self.n_trials is not None and self.n_trials < 1:
            raise MetalearnError(f"n_trials must be at least 1, got {self.n_trials}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise MetalearnError(f"time_budget must be positive, got {self.time_budget}")
        if self.trial_time_limit is not None and self.trial_time_limit <= 0:
            raise MetalearnError(f"trial_time_limit must be positive, got {self.trial_time_limit}")
        if self.workers < 1:
            raise MetalearnError(f"workers must be at least 1, got {self.workers}")
        if self.test_size is not None and not 0 < self.test_size < 1:
            raise MetalearnError(f"test_size must be between 0 and 1, got {self.test_size}")
        if not 0 < self.min_budget <= 1:
            raise MetalearnError(f"min_budget must be in (0, 1], got {self.min_budget}")
        if self.folds < 2:
            raise MetalearnError(f"folds must be at least 2, got {self.folds}")
        return self


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    """What a search produced: trials, incumbent, trajectory and the refitted best pipeline."""

    search_id: int | None
    dataset: dict[str, Any]
    settings: SearchSettings
    trials: list[Trial]
    status: str
    model: Any = None
    recommendations: RecommendationReport | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Trial | None:
        return self.incumbent_after(len(self.trials))

    @property
    def best_score(self) -> float | None:
        return self.best.score if self.best else None

    @property
    def best_config(self) -> dict[str, Any] | None:
        return self.best.configuration if self.best else None

    @property
    def leaderboard(self) -> pd.DataFrame:
        frame = pd.DataFrame([{"trial": t.number, "algorithm": t.algorithm, "score": t.score, "std": t.std,
                               "status": t.status, "origin": t.origin, "seconds": t.seconds} for t in self.trials],
                             columns=["trial", "algorithm", "score", "std", "status", "origin", "seconds"])
        return frame.sort_values(["score", "trial"], ascending=[False, True], na_position="last",
                                 ignore_index=True)

    @property
    def trajectory(self) -> pd.DataFrame:
        """Best score so far after each trial, with the wall-clock seconds elapsed."""
        best = -np.inf
        rows = []
        for t in self.trials:
            if t.status == "success" and t.score is not None and t.budget >= 1.0 and t.score > best:
                best = t.score
            rows.append({"trial": t.number, "elapsed": t.elapsed,
                         "best_so_far": None if not np.isfinite(best) else float(best)})
        return pd.DataFrame(rows, columns=["trial", "elapsed", "best_so_far"])

    def incumbent_after(self, n_trials: int) -> Trial | None:
        """Best successful trial among the first ``n_trials``, at the highest budget evaluated."""
        ok = [t for t in self.trials[:n_trials] if t.status == "success" and t.score is not None]
        if not ok:
            return None
        top = max(t.budget for t in ok)
        return max((t for t in ok if t.budget == top), key=lambda t: (t.score, -t.number))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.model is None:
            raise MetalearnError("this search has no fitted model (no successful trial, or refit=False)")
        return self.model.predict(X)

    def save_model(self, path: str | Path) -> Path:
        from metalearn.model_io import save_model

        if self.model is None:
            raise MetalearnError("this search has no fitted model to save")
        return save_model(self.model, path, metadata=self.model_metadata())

    def report(self, dataset: Dataset, **kw: Any) -> Any:
        """A :class:`metalearn.report.ModelReport` of the best pipeline on ``dataset`` with this search's section.

        Keyword arguments go to :func:`metalearn.report.build_report` (``test=``, ``sensitive=``, options).
        """
        from metalearn.report import build_report

        model = self.model if self.model is not None else self.best_config
        if model is None:
            raise MetalearnError("this search has no successful trial to report on")
        return build_report(model, dataset, search=self, **kw)

    def model_metadata(self) -> dict[str, Any]:
        best = self.best
        return {"search_id": self.search_id, "dataset": self.dataset.get("name"),
                "metric": self.settings.metric, "cv_score": best.score if best else None,
                "algorithm": best.algorithm if best else None,
                "configuration": best.configuration if best else None,
                "columns": self.extra.get("columns"), "target": self.dataset.get("target")}

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "search_id": self.search_id,
            "status": self.status,
            "strategy": self.settings.strategy,
            "dataset": self.dataset,
            "metric": self.settings.metric,
            "n_trials": len(self.trials),
            "seconds": self.seconds,
            "best": None if best is None else {"score": best.score, "algorithm": best.algorithm,
                                               "configuration": best.configuration, "trial": best.number},
            "test_score": self.extra.get("test_score"),
            "trials": [{"trial": t.number, "score": t.score, "status": t.status, "seconds": t.seconds,
                        "origin": t.origin, "algorithm": t.algorithm} for t in self.trials],
            "trajectory": self.trajectory.to_dict(orient="records"),
        }


TrialCallback = Callable[[Trial, "SearchResult"], None]


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

    @property
    def recommender(self) -> Recommender:
        if self._recommender is None:
            self._recommender = Recommender(self.kb, self.settings.metric)
        return self._recommender

    # ------------------------------------------------------------------ steps

    def prepare(self, dataset: Dataset) -> tuple[int, dict[str, float | None]]:
        """Register the dataset and its meta-features (extracted once per extractor version)."""
        from metalearn.metafeatures import EXTRACTOR_VERSION, extract_metafeatures

        dataset_id = self.kb.register(dataset)
        features = self.kb.metafeatures(dataset_id, EXTRACTOR_VERSION)
        if features is None:
            mf = extract_metafeatures(dataset.X, dataset.y, dataset.categorical, seed=0)
            self.kb.store_metafeatures(dataset_id, mf.extractor, mf.features, mf.seconds)
            features = mf.features
        return dataset_id, features

    def recommend(self, dataset: Dataset, features: dict[str, float | None], top: int) -> RecommendationReport:
        return self.recommender.recommend(
            features, top=top, k=self.settings.k, dataset=dataset.describe(),
            exclude_ids=self.exclude_ids, exclude_families=self.exclude_families,
            exclude_hashes={dataset.content_hash},
        )

    def _facade(self, space: Any, initial: list[Any], outdir: Path) -> Any:
        from smac import HyperparameterOptimizationFacade, MultiFidelityFacade, RandomFacade, Scenario
        from smac.initial_design import SobolInitialDesign
        from smac.intensifier import Hyperband, SuccessiveHalving

        s = self.settings
        # we stop the ask/tell loop ourselves; the scenario's n_trials only sizes SMAC's designs
        nominal = max(s.n_trials or 200, len(initial) + s.n_smac_initial + 1)
        fidelity = {"min_budget": s.min_budget, "max_budget": 1.0} if s.strategy in MULTI_FIDELITY else {}
        scenario = Scenario(space, deterministic=True, n_trials=nominal, seed=s.seed, output_directory=outdir,
                            walltime_limit=s.time_budget or np.inf, **fidelity)
        if s.strategy == "random":
            return RandomFacade(scenario, None, overwrite=True, logging_level=40)
        if s.strategy == "cold":
            design = HyperparameterOptimizationFacade.get_initial_design(scenario)
        else:  # warm-started: recommendations first (at the first rung for multi-fidelity), then Sobol points
            own = (SobolInitialDesign(scenario, n_configs=s.n_smac_initial, max_ratio=1.0).select_configurations()
                   if s.n_smac_initial else [])
            design = SobolInitialDesign(scenario, n_configs=0, additional_configs=initial + own)
        if s.strategy in MULTI_FIDELITY:
            kind = Hyperband if s.strategy == "hyperband" else SuccessiveHalving
            intensifier = kind(scenario, eta=s.eta, incumbent_selection="highest_budget")
            return MultiFidelityFacade(scenario, None, initial_design=design, intensifier=intensifier,
                                       overwrite=True, logging_level=40)
        intensifier = HyperparameterOptimizationFacade.get_intensifier(scenario, max_config_calls=1)
        return HyperparameterOptimizationFacade(scenario, None, initial_design=design, intensifier=intensifier,
                                                overwrite=True, logging_level=40)

    def _initial_configs(self, space: Any, report: RecommendationReport | None) -> list[Any]:
        from metalearn.space import config_from_dict

        configs = []
        for rec in report.recommendations if report else []:
            try:
                config = config_from_dict(rec.configuration, space)
            except MetalearnError:
                continue  # from another space version
            config.origin = "warm_start"
            configs.append(config)
        return configs

    # ------------------------------------------------------------------ run

    def _previous_trials(self, dataset_id: int, prefix: str) -> list[Trial]:
        """Trials stored earlier under ``prefix`` (a resumed job continues after them)."""
        runs = self.kb.runs_frame(dataset_id, run_key_prefix=prefix)
        trials = []
        for run in runs.itertuples():
            number = int(run.run_key[len(prefix):]) if run.run_key[len(prefix):].isdigit() else len(trials) + 1
            score = None if pd.isna(run.score) else float(run.score)
            std = None if pd.isna(run.score_std) else float(run.score_std)
            trials.append(Trial(number, json.loads(run.config_json), run.algorithm, run.origin, run.status, score,
                                std, float(run.seconds), 0.0, int(run.id), run.error, float(run.budget)))
        return sorted(trials, key=lambda t: t.number)

    def run(self, dataset: Dataset, *, callback: TrialCallback | None = None,
            should_stop: Callable[[], bool] | None = None, search_id: int | None = None,
            run_key_prefix: str | None = None) -> SearchResult:
        """Run the search on ``dataset`` and return its result (Ctrl-C stops it and keeps the trials).

        With ``run_key_prefix`` every stored run gets the key ``f"{prefix}{trial number}"`` and a
        search with the same prefix resumes: stored trials are replayed to SMAC instead of being run
        again, and only the missing trials are evaluated.
        """
        import signal
        import threading
        import warnings

        interrupted = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            def on_sigint(signum: int, frame: Any) -> None:
                if interrupted.is_set():  # a second Ctrl-C: stop at once, inside the running trial
                    raise KeyboardInterrupt
                interrupted.set()  # the first: finish (and store) the running trial, then stop

            previous = signal.signal(signal.SIGINT, on_sigint)

        def stop() -> bool:
            return interrupted.is_set() or (should_stop is not None and should_stop())

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = self._run(dataset, callback, stop, search_id, run_key_prefix)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if interrupted.is_set() and result.status == "cancelled":
            result.status = "interrupted"
        return result

    def _run(self, dataset: Dataset, callback: TrialCallback | None, should_stop: Callable[[], bool] | None,
             search_id: int | None, run_key_prefix: str | None) -> SearchResult:
        s = self.settings
        start = time.perf_counter()
        dataset_id, features = self.prepare(dataset) if self.record else (None, None)
        if features is None:
            from metalearn.metafeatures import extract_metafeatures

            features = extract_metafeatures(dataset.X, dataset.y, dataset.categorical).features
        warm = s.strategy == "warm" or s.strategy in MULTI_FIDELITY
        report = self.recommend(dataset, features, s.n_warm) if warm else None
        if self.record and search_id is None:
            search_id = self.kb.start_search(dataset_id, s.strategy, asdict(s))
        info = dataset.describe() | {"id": dataset_id, "target": dataset.target}
        result = SearchResult(search_id, info, s, [], "running", recommendations=report,
                              extra={"columns": list(dataset.X.columns), "categorical": list(dataset.categorical)})
        if run_key_prefix is not None and self.record:
            result.trials = self._previous_trials(dataset_id, run_key_prefix)
        if s.test_size:  # keep a test split aside: trials and the refit only see the rest
            dataset, result.extra["test"] = dataset.split(s.test_size, s.seed)
        known = {(canonical_json(t.configuration), round(t.budget, 6)): t for t in result.trials}
        X, y = stratified_subsample(dataset.X, dataset.y, s.max_rows, s.seed)
        space = build_space(seed=s.seed)
        outdir = Path(tempfile.mkdtemp(prefix="metalearn-smac-"))
        executor = make_executor(s.workers, s.dask_scheduler)
        pending: dict[Any, tuple[Any, dict[str, Any], tuple[str, float]]] = {}
        repeats = 0
        try:
            smac = self._facade(space, self._initial_configs(space, report), outdir)
            data = (executor.scatter(X), executor.scatter(y))
            while True:
                stop = self._budget_spent(result, len(pending), start) or repeats > 200
                if not stop and should_stop is not None and should_stop():
                    result.status, stop = "cancelled", True
                while not stop and len(pending) < executor.workers:
                    trial_info = smac.ask()
                    values = canonical_config(trial_info.config)
                    budget = float(trial_info.budget) if trial_info.budget is not None else 1.0
                    key = (canonical_json(values), round(budget, 6))
                    seen = known.get(key)
                    if seen is not None:  # evaluated before (a resumed job, or SMAC repeating itself)
                        smac.tell(trial_info, self._trial_value(seen.status, seen.score, seen.seconds))
                        repeats += 1
                        stop = repeats > 200
                        continue
                    future = executor.submit(evaluate_config, dict(trial_info.config), data[0], data[1],
                                             dataset.categorical, s.metric, s.folds, seed=s.seed,
                                             time_limit=self._trial_limit(start), budget=budget)
                    pending[future] = (trial_info, values, key)
                    stop = self._budget_spent(result, len(pending), start)
                if not pending:
                    break
                for future in executor.wait_any(list(pending)):
                    trial_info, values, key = pending.pop(future)
                    outcome = future.result()
                    trial = Trial(len(result.trials) + 1, values, algorithm_of(values),
                                  self._origin(trial_info.config), outcome.status, outcome.score, outcome.std,
                                  outcome.seconds, time.perf_counter() - start, error=outcome.error,
                                  budget=key[1])
                    if self.record:
                        run_key = f"{run_key_prefix}{trial.number}" if run_key_prefix is not None else None
                        trial.run_id = self._store(dataset_id, search_id, trial, outcome, run_key)
                    result.trials.append(trial)
                    known[key] = trial
                    smac.tell(trial_info, self._trial_value(outcome.status, outcome.score, outcome.seconds))
                    if callback is not None:
                        callback(trial, result)
                if result.status == "cancelled":
                    executor.cancel(list(pending))
                    break
            if result.status == "running":
                result.status = "succeeded" if result.best else "failed"
        except KeyboardInterrupt:
            result.status = "interrupted"
        finally:
            executor.cancel(list(pending))
            executor.close()
            shutil.rmtree(outdir, ignore_errors=True)
            if self.record and search_id is not None:
                final = {"interrupted": "cancelled", "running": "failed"}.get(result.status, result.status)
                best = result.best
                self.kb.finish_search(search_id, final, best.run_id if best else None,
                                      None if best else "no successful trial")
        if s.refit and result.best is not None:
            result.model = self.refit(result.best.configuration, dataset)
            test = result.extra.get("test")
            if test is not None:
                from sklearn.metrics import get_scorer

                from metalearn.evaluation import METRICS

                result.extra["test_score"] = float(get_scorer(METRICS[s.metric])(result.model, test.X, test.y))
        result.seconds = time.perf_counter() - start
        return result

    def _budget_spent(self, result: SearchResult, in_flight: int, start: float) -> bool:
        s = self.settings
        if s.n_trials is not None and len(result.trials) + in_flight >= s.n_trials:
            return True
        return s.time_budget is not None and time.perf_counter() - start >= s.time_budget

    def _trial_limit(self, start: float) -> float | None:
        """Per-trial limit, shortened so a trial cannot run past the search's time budget."""
        s = self.settings
        limit = s.trial_time_limit
        if s.time_budget is not None:
            remaining = max(1.0, s.time_budget - (time.perf_counter() - start))
            limit = min(limit, remaining) if limit else remaining
        return limit

    def refit(self, configuration: dict[str, Any], dataset: Dataset) -> Any:
        """The pipeline of ``configuration`` fitted on all rows of ``dataset``."""
        import warnings

        from metalearn.space import build_pipeline

        pipeline = build_pipeline(configuration, dataset.numeric, dataset.categorical,
                                  n_features=dataset.n_features, random_state=self.settings.seed)
        from threadpoolctl import threadpool_limits

        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            pipeline.fit(dataset.X, dataset.y)
        return pipeline

    def _trial_value(self, status: str, score: float | None, seconds: float) -> Any:
        from smac.runhistory import StatusType, TrialValue

        kind = {"success": StatusType.SUCCESS, "timeout": StatusType.TIMEOUT}.get(status, StatusType.CRASHED)
        cost = -(score if status == "success" and score is not None else worst_score(self.settings.metric))
        return TrialValue(cost=cost, time=seconds, status=kind)

    def _origin(self, config: Any) -> str:
        if self.settings.strategy == "random":
            return "random"
        origin = (getattr(config, "origin", None) or "").lower()
        if origin == "warm_start":
            return "warm_start"
        if "initial" in origin:
            return "smac_initial"
        return "smac"

    def _store(self, dataset_id: int, search_id: int | None, trial: Trial, outcome: TrialResult,
               run_key: str | None = None) -> int | None:
        run = RunRecord(dataset_id=dataset_id, config=trial.configuration, algorithm=trial.algorithm,
                        metric=self.settings.metric, status=outcome.status, score=outcome.score,
                        score_std=outcome.std, seconds=outcome.seconds, origin=trial.origin, search_id=search_id,
                        seed=self.settings.seed, error=outcome.error, run_key=run_key, budget=trial.budget)
        ids = self.kb.record_runs([run])
        return ids[0] if ids else None
