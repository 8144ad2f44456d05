"""Build a seed knowledge base: cold SMAC searches on many datasets, then cross-evaluation.

Protocol (defaults; ``metalearn kb seed --help`` shows them): per dataset, register it (with its
family and OpenML id), extract meta-features, then run a cold SMAC search of ``n_trials`` trials
(``folds``-fold stratified CV on at most ``max_rows`` rows drawn by stratified subsampling,
``trial_time_limit`` seconds per trial, seed ``seed``), storing every trial with the run key
``seed:<space version>:<content hash>:<seed>:<trial>``. Cross-evaluation then runs the ``cross_evaluate`` best
configurations of every dataset on every other dataset (keys ``xeval:<content hash>:<configuration hash>``;
both formats live in :mod:`metalearn.knowledge_base.run_keys`),
together with the library defaults of the strongest algorithms (``DEFAULT_POOL``), so the global
portfolio is built from a (nearly) full performance matrix and the defaults compete on evidence.

Both phases are resumable (keys make writes idempotent; a dataset's search replays its stored
trials and only evaluates the missing ones) and parallel over datasets (``jobs`` processes).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metalearn.datasets import (
    Dataset,
    load_openml_dataset,
    load_openml_task,
    openml_suite_tasks,
    read_manifest,
    stratified_subsample,
)
from metalearn.defaults import (
    SEED_CROSS_EVALUATE,
    SEED_FOLDS,
    SEED_MAX_ROWS,
    SEED_POOL_SIZE,
    SEED_TRIAL_TIME_LIMIT,
    SEED_TRIALS,
)
from metalearn.errors import MetalearnError
from metalearn.evaluation import evaluate_config
from metalearn.knowledge_base import KnowledgeBase, RunRecord
from metalearn.knowledge_base.run_keys import seed_prefix, xeval_key, xeval_prefix
from metalearn.protocol import CROSS_EVAL_ORIGIN, DEFAULT_TASK, metric_for
from metalearn.space import (
    ALGORITHMS,
    SPACE_VERSIONS,
    algorithm_of,
    algorithms,
    compatible_space_versions,
    default_configuration,
)
from metalearn.warmstart.search import SearchSettings, WarmStartSearch

#: classification algorithms whose library defaults join the cross-evaluation: every family of the space
DEFAULT_POOL: tuple[str, ...] = ALGORITHMS


@dataclass(frozen=True)
class SeedProtocol:
    n_trials: int = SEED_TRIALS
    folds: int = SEED_FOLDS
    max_rows: int = SEED_MAX_ROWS
    trial_time_limit: float = SEED_TRIAL_TIME_LIMIT
    seed: int = 0
    #: None: the task's default metric (balanced accuracy or R^2)
    metric: str | None = None
    cross_evaluate: int = SEED_CROSS_EVALUATE
    #: the pool grows past the top ``cross_evaluate`` of every dataset (next ranks, dataset by dataset) to this size
    pool_size: int = SEED_POOL_SIZE

    def metric_for(self, task: str) -> str:
        return metric_for(task, self.metric)


@dataclass(frozen=True)
class DatasetSource:
    """A named way to load one dataset (picklable, so worker processes can load it)."""

    key: str
    loader: Callable[[], Dataset]
    task: str = DEFAULT_TASK


def manifest_sources(path: str) -> list[DatasetSource]:
    return [DatasetSource(f"manifest:{e.name}", e.load, e.task) for e in read_manifest(path)]


def openml_dataset_sources(ids: Iterable[int], cache: str | None = None) -> list[DatasetSource]:
    return [DatasetSource(f"openml-dataset:{i}", partial(load_openml_dataset, int(i), cache=cache)) for i in ids]


def openml_suite_sources(suite: str, cache: str | None = None) -> list[DatasetSource]:
    suite_id: str | int = int(suite) if str(suite).isdigit() else suite
    return [DatasetSource(f"openml-task:{t}", partial(load_openml_task, t, cache=cache))
            for t in openml_suite_tasks(suite_id, cache)]


def seed_key(dataset: Dataset, protocol: SeedProtocol) -> str:
    """Prefix of the run keys of ``dataset``'s seed search in the current space of its task (plus trial number)."""
    return seed_prefix(SPACE_VERSIONS[dataset.task], dataset.content_hash, protocol.seed)


def _load(source: DatasetSource) -> tuple[Dataset | None, str | None]:
    """``(dataset, None)``, or ``(None, reason)`` when the dataset cannot be loaded."""
    try:
        return source.loader(), None
    except MetalearnError as exc:
        return None, str(exc)


@contextmanager
def _opened_kb(db: str) -> Iterator[KnowledgeBase]:
    """A knowledge base connection for one worker task, disposed afterwards."""
    kb = KnowledgeBase(db)
    try:
        yield kb
    finally:
        kb.dispose()


def seed_one(source: DatasetSource, db: str, protocol: SeedProtocol) -> dict[str, Any]:
    """Seed one dataset (resuming if some of its trials are stored); returns a summary."""
    start = time.perf_counter()
    dataset, error = _load(source)
    if dataset is None:
        return {"key": source.key, "status": "skipped", "error": error}
    with _opened_kb(db) as kb:
        settings = SearchSettings(strategy="cold", n_trials=protocol.n_trials, folds=protocol.folds,
                                  max_rows=protocol.max_rows, trial_time_limit=protocol.trial_time_limit,
                                  seed=protocol.seed, metric=protocol.metric_for(dataset.task), refit=False)
        prefix = seed_key(dataset, protocol)
        engine = WarmStartSearch(kb, settings)
        dataset_id = kb.register(dataset)
        before = len(kb.run_keys(prefix))
        if before >= protocol.n_trials:
            engine.prepare(dataset)
            result = None
        else:
            result = engine.run(dataset, run_key_prefix=prefix)
        best = kb.best_configurations(dataset_id, settings.metric, 1)
        return {"key": source.key, "dataset": dataset.name, "dataset_id": dataset_id, "status": "done",
                "new_trials": 0 if result is None else len(result.trials) - before,
                "trials": len(kb.run_keys(prefix)), "best_score": best[0].score if best else None,
                "best_algorithm": best[0].algorithm if best else None, "seconds": time.perf_counter() - start}


def cross_evaluate_one(source: DatasetSource, db: str, protocol: SeedProtocol, config_ids: list[int]) -> dict:
    """Evaluate the pooled top configurations on one dataset (skipping stored ones)."""
    start = time.perf_counter()
    dataset, error = _load(source)
    if dataset is None:
        return {"key": source.key, "status": "skipped", "error": error}
    metric = protocol.metric_for(dataset.task)
    with _opened_kb(db) as kb:
        dataset_id = kb.register(dataset)
        done = kb.run_keys(xeval_prefix(dataset.content_hash))
        already = set(kb.performance(metric).query("dataset_id == @dataset_id")["configuration_id"])
        configs, hashes = kb.configurations(config_ids), kb.configuration_hashes(config_ids)
        X, y = stratified_subsample(dataset.X, dataset.y, protocol.max_rows, protocol.seed, task=dataset.task)
        written = 0
        for config_id in config_ids:
            key = xeval_key(dataset.content_hash, hashes[config_id])
            if key in done or config_id in already:
                continue
            outcome = evaluate_config(configs[config_id], X, y, dataset.categorical, metric,
                                      protocol.folds, seed=protocol.seed, time_limit=protocol.trial_time_limit)
            kb.record_runs([RunRecord(dataset_id=dataset_id, config=configs[config_id],
                                      algorithm=algorithm_of(configs[config_id]), metric=metric,
                                      status=outcome.status, score=outcome.score, score_std=outcome.std,
                                      seconds=outcome.seconds, origin=CROSS_EVAL_ORIGIN, seed=protocol.seed,
                                      error=outcome.error, run_key=key)])
            written += 1
        return {"key": source.key, "dataset": dataset.name, "status": "done", "new_trials": written,
                "seconds": time.perf_counter() - start}


def library_defaults(kb: KnowledgeBase, task: str) -> dict[str, int]:
    """Configuration id of the library default of every family of ``task``'s space (registered if new): the
    defaults every cross-evaluation pool holds."""
    return {a: kb.register_configuration(default_configuration(a, task=task), a, SPACE_VERSIONS[task])
            for a in algorithms(task)}


def _pooled_top_configs(db: str, protocol: SeedProtocol, task: str) -> list[int]:
    """The ``cross_evaluate`` best configurations of every dataset of ``task``, plus the library defaults of every
    family of that task's space, then the next best of every dataset in turn until there are ``pool_size``.
    Ranked on the searches' own runs only, so that the pool does not change as
    cross-evaluation runs arrive (a resumed build evaluates the same configurations)."""
    versions = compatible_space_versions(task)
    kb = KnowledgeBase(db)
    try:
        ranked = kb.ranked_configurations(protocol.metric_for(task), versions, searched_only=True)
        if ranked.empty:
            return []
        defaults = list(library_defaults(kb, task).values())
    finally:
        kb.dispose()
    pool = set(int(c) for c in ranked.loc[ranked["rank"] < protocol.cross_evaluate, "configuration_id"]) | set(defaults)
    for config_id in ranked[ranked["rank"] >= protocol.cross_evaluate].sort_values(["rank", "dataset_id"])[
            "configuration_id"]:
        if len(pool) >= protocol.pool_size:
            break
        pool.add(int(config_id))
    return sorted(pool)


def _map(func: Callable[..., dict], sources: list[DatasetSource], jobs: int, desc: str,
         report: Callable[[dict], None]) -> list[dict]:
    results = []
    with Progress(TextColumn(desc), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as progress:
        task = progress.add_task(desc, total=len(sources))
        if jobs <= 1:
            for source in sources:
                results.append(func(source))
                report(results[-1])
                progress.advance(task)
        else:
            # spawned, not forked: a forked worker inherits the parent's open SQLite connections, and closing one
            # of them there (e.g. when garbage collection finalises it) drops the POSIX locks the worker's own
            # connections hold on the same file -- then two workers write at once and runs are lost
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(func, source): source for source in sources}
                for future in as_completed(futures):
                    try:
                        outcome = future.result()
                    except Exception as exc:  # a worker died: report it and go on with the rest
                        outcome = {"key": futures[future].key, "status": "failed", "error": repr(exc)}
                    results.append(outcome)
                    report(outcome)
                    progress.advance(task)
    return results


def seed(sources: list[DatasetSource], db: str, protocol: SeedProtocol, jobs: int = 1,
         report: Callable[[dict], None] = lambda _: None) -> dict[str, Any]:
    """Run both phases over ``sources``; returns the per-dataset summaries."""
    KnowledgeBase(db).dispose()  # create the schema once, before the workers start
    summaries = _map(partial(seed_one, db=db, protocol=protocol), sources, jobs, "seeding", report)
    cross: list[dict] = []
    for task in sorted({source.task for source in sources}) if protocol.cross_evaluate > 0 else []:
        config_ids = _pooled_top_configs(db, protocol, task)
        cross += _map(partial(cross_evaluate_one, db=db, protocol=protocol, config_ids=config_ids),
                      [source for source in sources if source.task == task], jobs, f"cross-evaluating ({task})", report)
    return {"protocol": asdict(protocol), "datasets": summaries, "cross_evaluation": cross}
