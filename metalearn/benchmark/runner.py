"""Running (or resuming) a benchmark: one job per dataset, serially or in worker processes.

Results are appended to ``results.jsonl`` per (dataset, seed, strategy) as they finish, and finished
combinations are skipped on restart; errors go to ``errors.jsonl`` and the run goes on. At the end
(or with ``report_only``) :func:`metalearn.benchmark.report.finalize` writes the summary, report and plots.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from queue import Empty
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from metalearn.benchmark.analysis import machine_info
from metalearn.benchmark.checkpoint import (
    append_jsonl,
    compute_clock,
    compute_hours,
    done_combinations,
    is_done,
    load_state,
    now,
    read_jsonl,
    save_state,
    stored_protocol,
)
from metalearn.benchmark.config import PEER_STRATEGIES, BenchmarkConfig
from metalearn.benchmark.jobs import DatasetJob, Split, run_order, run_search
from metalearn.benchmark.peers import flaml_available, run_flaml, run_flaml_zeroshot
from metalearn.benchmark.report import finalize
from metalearn.benchmark.scratch import ReferenceDataset, prepare_knowledge_base
from metalearn.benchmark.suite import outer_split, resolve_suite, select_sources, suite_task
from metalearn.errors import MetalearnError
from metalearn.knowledge_base import KnowledgeBase
from metalearn.seeding import DatasetSource

Echo = Callable[[str], None]
Event = dict[str, Any]


# --------------------------------------------------------------------------- one dataset


def _run_strategy(job: DatasetJob, kb: KnowledgeBase, strategy: str, split: Split
                  ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    if strategy == "flaml":
        budget = job.warm_seconds.get(split.seed)
        if budget is None:
            raise MetalearnError("no warm result for this seed to set flaml's time budget")
        return run_flaml(job, split, budget), None
    if strategy == "flaml-zeroshot":
        return run_flaml_zeroshot(job, split), None
    return run_search(job, kb, strategy, split)


def _record(job: DatasetJob, seed: int, strategy: str, rows: list[dict[str, Any]], leak: dict[str, Any] | None
            ) -> None:
    """Append a finished strategy's rows (and leak record) to the checkpoint."""
    output = Path(job.output)
    if strategy == "warm":
        job.warm_seconds[seed] = next(r["seconds"] for r in rows if r["budget"] == job.config.max_budget)
    created = now()
    for row in rows:
        row["created"] = created
    if leak is not None:
        append_jsonl(output / "neighbors.jsonl", [leak])
    append_jsonl(output / "results.jsonl", rows)


def _run_seed(job: DatasetJob, kb: KnowledgeBase, split: Split, pending: list[str],
              tell: Callable[[Event], None]) -> tuple[int, int]:
    """Run the pending strategies of one seed; returns (new rows, errors)."""
    new_rows = errors = 0
    for strategy in pending:
        try:
            rows, leak = _run_strategy(job, kb, strategy, split)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # record it and go on with the other strategies
            errors += 1
            append_jsonl(Path(job.output) / "errors.jsonl", [{
                "dataset_key": job.source.key, "dataset": split.dataset.name, "seed": split.seed,
                "strategy": strategy, "stage": "run", "error": f"{type(exc).__name__}: {exc}"[-2000:],
                "created": now()}])
            tell({"key": job.source.key, "status": "error", "strategy": strategy})
            continue
        _record(job, split.seed, strategy, rows, leak)
        new_rows += len(rows)
        tell({"key": job.source.key, "status": "done", "strategy": strategy, "dataset": split.dataset.name})
    return new_rows, errors


def run_dataset(job: DatasetJob, notify: Any = None) -> dict[str, Any]:
    """All seeds and strategies of one dataset; rows are appended to the checkpoint as they finish.

    ``notify`` (a callable or a queue) is told of every finished, failed or skipped strategy.
    """
    def tell(event: Event) -> None:
        if notify is not None:
            notify.put(event) if hasattr(notify, "put") else notify(event)

    config, key = job.config, job.source.key
    seeds = range(config.seeds)
    todo = {(s, st) for s in seeds for st in job.strategies
            if st in config.strategies_for(s) and not is_done(job.done, key, s, st, config)}
    if not todo:
        return {"key": key, "status": "done", "new_rows": 0}
    start = time.perf_counter()
    try:
        dataset = job.source.loader()
        if dataset.task != config.task:  # an OpenML suite's task is only known once loaded
            raise MetalearnError(f"{dataset.name} is a {dataset.task} dataset; this benchmark run is {config.task}")
    except Exception as exc:  # a dataset that cannot be loaded is skipped, not fatal
        append_jsonl(Path(job.output) / "errors.jsonl", [{"dataset_key": key, "stage": "load", "error": str(exc),
                                                          "created": now()}])
        for _ in todo:
            tell({"key": key, "status": "skipped"})
        return {"key": key, "status": "skipped", "error": str(exc), "new_rows": 0}
    kb = KnowledgeBase(job.kb_url)
    new_rows = errors = 0
    try:
        for seed in seeds:
            pending = [st for st in run_order(job.strategies) if (seed, st) in todo]
            if not pending:
                continue
            train, test = outer_split(dataset, seed, config.test_size, config.max_rows, config.test_max_rows)
            rows, failed = _run_seed(job, kb, Split(dataset, train, test, seed), pending, tell)
            new_rows, errors = new_rows + rows, errors + failed
    finally:
        kb.dispose()
    return {"key": key, "dataset": dataset.name, "status": "done" if not errors else "errors", "new_rows": new_rows,
            "errors": errors, "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------- all datasets


def _on_progress(show: bool, total: int, already: int) -> tuple[Progress, Callable[[Event], None]]:
    columns = (TextColumn("benchmark"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
               TimeElapsedColumn())
    bar = Progress(*columns, disable=not show)
    task = bar.add_task("benchmark", total=total, completed=already, last="")

    def on_event(event: Event) -> None:
        bar.update(task, advance=1, last=f"{event.get('dataset', event['key'])} {event.get('strategy', '')} "
                                         f"{event['status']}")

    return bar, on_event


def _in_workers(jobs: list[DatasetJob], workers: int, on_event: Callable[[Event], None]) -> list[dict[str, Any]]:
    """Run the jobs in ``workers`` processes, relaying their events; Ctrl-C kills the workers at once."""
    outcomes: list[dict[str, Any]] = []
    spawn = multiprocessing.get_context("spawn")  # no inherited SQLite connection (see metalearn.seeding._map)
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        queue = manager.Queue()
        pending = {pool.submit(run_dataset, job, queue): job for job in jobs}
        try:
            while pending:
                finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        on_event(queue.get_nowait())
                    except Empty:
                        break
                for future in finished:
                    job = pending.pop(future)
                    try:
                        outcomes.append(future.result())
                    except Exception as exc:  # a worker died: its finished rows are in the checkpoint
                        outcomes.append({"key": job.source.key, "status": "failed", "error": repr(exc)})
        except KeyboardInterrupt:
            # stop at once: a worker's unfinished strategy has written nothing, so it reruns on resume
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return outcomes


def execute(jobs: list[DatasetJob], workers: int, total: int, already: int, show: bool) -> list[dict[str, Any]]:
    """Run every job (in ``workers`` processes when more than one) under a progress bar."""
    bar, on_event = _on_progress(show, total, already)
    with bar:
        if workers <= 1:
            return [run_dataset(job, on_event) for job in jobs]
        return _in_workers(jobs, workers, on_event)


def _stop_on_sigterm() -> Any:
    """Make SIGTERM (``kill PID`` of a background run) stop the run like Ctrl-C; returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


# --------------------------------------------------------------------------- driver


def _without_missing_peers(config: BenchmarkConfig, echo: Echo) -> BenchmarkConfig:
    """``config`` less the FLAML peers when FLAML is not importable (with a warning)."""
    if not any(s in PEER_STRATEGIES for s in config.all_strategies) or flaml_available():
        return config
    echo("warning: flaml is not importable (pip install -e '.[bench]'); skipping flaml and flaml-zeroshot")
    kept = tuple(s for s in config.strategies if s not in PEER_STRATEGIES)
    if not kept:
        raise MetalearnError("no strategy left to run: flaml is not importable")
    return replace(config, strategies=kept)


def _sources(config: BenchmarkConfig) -> tuple[BenchmarkConfig, list[DatasetSource]]:
    """The suite's sources of the run's one task, one per dataset key (a manifest may list a dataset twice),
    and the configuration resolved for that task."""
    task, sources = suite_task(resolve_suite(config.suite, config.cache_dir), config.task)
    return config.for_task(task), select_sources(sources, shuffle=config.shuffle, limit=config.limit,
                                                 datasets=config.datasets)


def _jobs(config: BenchmarkConfig, sources: list[DatasetSource], output: Path, kb_url: str,
          reference: list[ReferenceDataset]) -> list[DatasetJob]:
    """One job per dataset, with what the checkpoint already holds of it."""
    records = read_jsonl(output / "results.jsonl")
    done = done_combinations(records)
    warm_seconds: dict[str, dict[int, float]] = {}
    for r in records:
        if r["strategy"] == "warm" and int(r["budget"]) == config.max_budget:
            warm_seconds.setdefault(r["dataset_key"], {})[int(r["seed"])] = float(r["seconds"])
    return [DatasetJob(source, config, kb_url, reference, str(output), config.all_strategies,
                       {d for d in done if d[0] == source.key}, warm_seconds.get(source.key, {}))
            for source in sources]


def _run_all(config: BenchmarkConfig, jobs: list[DatasetJob], state: dict[str, Any], output: Path,
             counts: tuple[int, int], progress: bool) -> list[dict[str, Any]]:
    """Run the jobs, keeping the compute spent and the invocation in ``state.json`` however they end."""
    previous = _stop_on_sigterm()
    try:
        with compute_clock(output, state, config.command()):
            return execute(jobs, config.jobs, counts[0], counts[1], progress)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _report_only(config: BenchmarkConfig, sources: list[DatasetSource], output: Path, state: dict[str, Any],
                 echo: Echo) -> dict[str, Any]:
    """Summary, report and plots of the datasets whose every strategy and seed has finished, with how many
    have started but not finished and how many of the suite have no result; runs nothing and reads no
    knowledge base (``kb.json`` and ``state.json`` stay as the run left them)."""
    records = read_jsonl(output / "results.jsonl")
    done = done_combinations(records)
    runs = {(s, st) for s in range(config.seeds) for st in config.strategies_for(s)}
    started = {key for key, seed, strategy, _ in done if (seed, strategy) in runs}
    keys = [s.key for s in sources]
    complete = [k for k in keys if all(is_done(done, k, s, st, config) for s, st in runs)]
    unfinished = [k for k in keys if k in started - set(complete)]
    invocations = state.get("invocations") or []
    extra = {"report_only": True, "complete_datasets": len(complete), "unfinished_datasets": len(unfinished),
             "datasets_without_results": len(keys) - len(complete) - len(unfinished),
             "datasets_in_suite": len(keys), "new_rows": 0}
    if invocations:  # the command that made the rows, not this one
        extra["command"] = invocations[-1]["command"]
    previous = output / "summary.json"
    if previous.is_file():  # and the machine it ran on
        extra["machine"] = json.loads(previous.read_text()).get("machine") or machine_info(config.jobs)
    hours, extra["hours_estimated"] = compute_hours(state, records)
    summary = finalize(output, config, complete, hours=hours, extra=extra)
    echo(f"wrote summary.json, report.md and plots from the {len(complete)} complete datasets "
         f"({len(unfinished)} unfinished, {extra['datasets_without_results']} without results)")
    return summary


def run_benchmark(config: BenchmarkConfig, *, echo: Echo = print, progress: bool = True,
                  report_only: bool = False) -> dict[str, Any]:
    """Run (or resume) the benchmark and write its outputs; returns the summary.

    ``report_only`` runs nothing: it rewrites the summary, report and plots from the datasets whose
    every strategy and seed is already done (the state of an interrupted run, for partial results), with the
    ensemble settings the rows were made with (``state.json``).
    """
    config, sources = _sources(_without_missing_peers(config.validate(), echo))
    strategies = config.all_strategies
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    stored = stored_protocol(output)
    if report_only and stored is not None:  # the rows were made with the stored ensemble settings
        config = replace(config, ensemble_size=stored["ensemble_size"],
                         ensemble_candidates=stored["ensemble_candidates"] or config.ensemble_candidates)
    state = load_state(output, config)
    if report_only:
        return _report_only(config, sources, output, state, echo)
    kb_url, reference = prepare_knowledge_base(config.db, output, echo, config.task or "classification")
    save_state(output, state)
    jobs = _jobs(config, sources, output, kb_url, reference)
    total = len(sources) * sum(len(config.strategies_for(s)) for s in range(config.seeds))
    already = sum(1 for j in jobs for s in range(config.seeds) for st in config.strategies_for(s)
                  if is_done(j.done, j.source.key, s, st, config))
    echo(f"benchmark {config.suite} ({config.task}, test {config.metric}): {len(sources)} datasets x "
         f"{config.seeds} seeds x {len(strategies)} strategies ({already}/{total} done); output {output}")
    outcomes = _run_all(config, jobs, state, output, (total, already), progress)
    keys = {s.key for s in sources}
    errors = [e for e in read_jsonl(output / "errors.jsonl") if e.get("dataset_key") in keys]
    skipped = [o for o in outcomes if o.get("status") == "skipped"]
    hours, estimated = compute_hours(state, read_jsonl(output / "results.jsonl"))
    summary = finalize(output, config, [s.key for s in sources], hours=hours,
                       extra={"errors": errors[-200:], "skipped": skipped, "hours_estimated": estimated,
                              "new_rows": int(sum(o.get("new_rows", 0) for o in outcomes))})
    echo(f"wrote {output / 'results.parquet'}, summary.json, report.md and plots "
         f"({summary['n_datasets']} datasets, {summary['n_rows']} rows, {summary['new_rows']} new)")
    return summary
