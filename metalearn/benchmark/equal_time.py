"""Equal wall-clock benchmark (issue #22 §5): each system gets the same whole-process wall-clock per dataset.

    python -m metalearn.benchmark.equal_time --suite DIR --budgets 60,180 --seeds 1 --cores 1 \\
        --systems metalearn,metalearn-cold,flaml,hgb,autogluon --peers-python .venv-peers/bin/python

For every dataset, seed and time budget the parent writes the existing benchmark's outer split
(:func:`metalearn.benchmark.suite.outer_split`) as parquet with plain dtypes, then runs every system in
its own subprocess (:mod:`.systems`): same cores (thread pools pinned), same split, wall-clock measured
from the spawn to the moment the model is ready, a hard cap of ``cap_factor x budget + cap_extra``
seconds. One row per (dataset, seed, system, budget) goes to ``results.jsonl`` (resumable: done rows
are skipped); :mod:`.equal_time_report` writes ``summary.json``, ``report.md`` and the plots. One run is one
task (the suite's, or ``--task``): balanced accuracy, or for regression R^2 and the RMSE (negated).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metalearn.benchmark.checkpoint import append_jsonl, compute_clock, compute_hours, now, read_jsonl, save_state
from metalearn.benchmark.equal_time_config import DEFAULT_BUDGETS, DEFAULT_OUTPUT, EqualTimeConfig
from metalearn.benchmark.equal_time_report import finalize
from metalearn.benchmark.jobs import dummy_scores, score_predictions
from metalearn.benchmark.scratch import ReferenceDataset, prepare_knowledge_base
from metalearn.benchmark.suite import outer_split, resolve_suite, select_sources, suite_task
from metalearn.benchmark.systems import (
    SYSTEMS,
    Launcher,
    Outcome,
    clean_workdir,
    label_text,
    python_has,
    thread_env,
    worker_command,
)
from metalearn.datasets import Dataset, as_text
from metalearn.errors import MetalearnError
from metalearn.seeding import DatasetSource

__all__ = ["DEFAULT_BUDGETS", "DEFAULT_OUTPUT", "EqualTimeConfig", "Split", "Task", "config_from_args",
           "done_tasks", "main", "parser", "plain_frame", "result_row", "run_equal_time", "worker_args",
           "write_split"]

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Task:
    """One run: a system on one dataset's split, with one seed and one time budget."""

    key: str
    seed: int
    system: str
    budget: int


@dataclass
class Split:
    """A dataset's outer split for one seed, written as parquet for the workers."""

    key: str
    seed: int
    directory: Path
    meta: dict[str, Any]
    labels: list[Any]  # the test labels as text (:func:`label_text`), for regression the float targets


def slug(key: str) -> str:
    """A dataset key as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") or "dataset"


def plain_frame(dataset: Dataset) -> pd.DataFrame:
    """Features and target with plain numpy dtypes: float64 numbers, categoricals as Python strings (missing:
    NaN) in object columns, labels int64 or strings (a regression target float64); no pandas nullable or
    extension dtypes."""
    out = pd.DataFrame(index=range(dataset.n_rows))
    categorical = set(dataset.categorical)
    for column in dataset.X.columns:
        values = dataset.X[column].reset_index(drop=True)
        out[column] = as_text(values) if column in categorical else values.to_numpy(dtype=np.float64, na_value=np.nan)
    y = dataset.y.reset_index(drop=True)
    integer = pd.api.types.is_integer_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if dataset.task == "regression":
        out[dataset.target] = y.to_numpy(dtype=np.float64)
    else:
        out[dataset.target] = y.to_numpy(dtype=np.int64) if integer else np.array([str(v) for v in y], dtype=object)
    return out


def write_split(dataset: Dataset, key: str, seed: int, config: EqualTimeConfig, reference: list[ReferenceDataset],
                directory: Path) -> Split:
    """Write the outer split of ``dataset`` with ``seed`` (train with target, test without) and its facts."""
    train, test = outer_split(dataset, seed, config.test_size, config.max_rows, config.test_max_rows)
    directory.mkdir(parents=True, exist_ok=True)
    plain_frame(train).to_parquet(directory / "train.parquet", index=False)
    plain_frame(test).drop(columns=[dataset.target]).to_parquet(directory / "test.parquet", index=False)
    family = dataset.family or dataset.name
    excluded = sorted(r.id for r in reference if r.family == family or r.content_hash == dataset.content_hash)
    dummy = {f"dummy_{k.removeprefix('test_')}": v for k, v in dummy_scores(train, test).items()}
    meta = {"dataset": dataset.name, "family": family, "task": dataset.task, "target": dataset.target,
            "categorical": list(dataset.categorical), "n_train": train.n_rows, "n_test": test.n_rows,
            "n_classes": dataset.n_classes, **dummy, "exclude_ids": excluded,
            "restrict_to": [r.id for r in reference if r.id not in set(excluded)]}
    (directory / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    truth = test.y.astype(float).tolist() if dataset.task == "regression" else [label_text(v) for v in test.y]
    return Split(key, seed, directory, meta, truth)


def worker_args(task: Task, split: Split, config: EqualTimeConfig, kb_url: str) -> dict[str, Any]:
    """The JSON arguments of one run's worker (the launcher adds ``spawned_at``, ``deadline`` and paths)."""
    meta, system = split.meta, SYSTEMS[task.system]
    args = {"system": task.system, "task": meta.get("task", "classification"), "options": system.options,
            "budget": task.budget, "cores": config.cores, "seed": task.seed,
            "train": str(split.directory / "train.parquet"),
            "test": str(split.directory / "test.parquet"), "target": meta["target"],
            "categorical": meta["categorical"], "dataset": meta["dataset"], "family": meta["family"]}
    if system.kind == "metalearn":
        args.update(db=kb_url, exclude_ids=meta["exclude_ids"], exclude_families=[meta["family"]],
                    restrict_to=meta["restrict_to"], margin=config.margin, min_margin=config.min_margin)
    return args


def _scores(split: Split, predictions: list[Any]) -> dict[str, float]:
    """Test scores of a worker's predictions (:func:`metalearn.benchmark.jobs.score_predictions`); a ValueError for
    predictions that cannot be scored (wrong count, not finite)."""
    if len(predictions) != len(split.labels):
        raise ValueError(f"{len(predictions)} predictions for {len(split.labels)} test rows")
    task = split.meta.get("task", "classification")
    if task != "regression":
        return score_predictions(task, split.labels, [label_text(p) for p in predictions])
    values = np.asarray([np.nan if p is None else p for p in predictions], dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"{int((~np.isfinite(values)).sum())} predictions are not finite numbers")
    return score_predictions(task, split.labels, values)


def result_row(task: Task, split: Split, outcome: Outcome, config: EqualTimeConfig, python: str) -> dict[str, Any]:
    """The ``results.jsonl`` row of a finished run; a timeout or crash scores as the majority class (the
    training mean for regression; ``imputed``)."""
    result, status, error = outcome.result or {}, outcome.status, outcome.error
    scores: dict[str, float] | None = None
    if status == "ok":
        try:
            scores = _scores(split, list(result.get("predictions") or []))
        except (TypeError, ValueError) as exc:
            status, error = "crash", str(exc)
    meta = split.meta
    dummy = {k.replace("dummy_", "test_", 1): v for k, v in meta.items() if k.startswith("dummy_")}
    return {"dataset": meta["dataset"], "dataset_key": task.key, "family": meta["family"], "seed": task.seed,
            "system": task.system, "budget": task.budget, "status": status, **(dummy if scores is None else scores),
            "imputed": scores is None,
            "seconds": outcome.seconds, "process_seconds": outcome.process_seconds,
            "overrun": outcome.seconds - task.budget, "cap": config.cap(task.budget), "exit_code": outcome.exit_code,
            "error": None if error is None else str(error)[-2000:], "cores": config.cores,
            "n_train": meta["n_train"], "n_test": meta["n_test"], "n_classes": meta["n_classes"],
            "info": result.get("info") or {}, "versions": result.get("versions") or {},
            "python": "project" if python == sys.executable else "peers venv",  # which one, not the machine's path
            "created": now()}


# --------------------------------------------------------------------------- running


def done_tasks(records: Iterable[dict[str, Any]], retry_failed: bool = False) -> set[tuple[str, int, str, int]]:
    """(dataset key, seed, system, budget) of the recorded runs (with ``retry_failed``, of the ``ok`` ones)."""
    last = {(r["dataset_key"], int(r["seed"]), r["system"], int(r["budget"])): r for r in records}
    return {k for k, r in last.items() if not retry_failed or r.get("status") == "ok"}


def _cpu_slots(config: EqualTimeConfig) -> queue.Queue[list[int] | None]:
    """One CPU set per concurrent job (``--pin-cpus``), or ``None`` per job."""
    slots: queue.Queue[list[int] | None] = queue.Queue()
    cpus = sorted(os.sched_getaffinity(0)) if config.pin_cpus and hasattr(os, "sched_getaffinity") else []
    if config.pin_cpus and len(cpus) < config.jobs * config.cores:
        raise MetalearnError(f"--pin-cpus: {config.jobs} jobs x {config.cores} cores need "
                             f"{config.jobs * config.cores} CPUs, this process may use {len(cpus)}")
    for i in range(config.jobs):
        slots.put(cpus[i * config.cores:(i + 1) * config.cores] if config.pin_cpus else None)
    return slots


class Runner:
    """Runs tasks in ``jobs`` threads, one worker process each, and appends their rows to the checkpoint."""

    def __init__(self, config: EqualTimeConfig, output: Path, kb_url: str, echo: Echo) -> None:
        self.config, self.output, self.kb_url, self.echo = config, output, kb_url, echo
        self.launcher = Launcher()
        self.slots = _cpu_slots(config)
        self.pool = ThreadPoolExecutor(max_workers=config.jobs)
        self.pending: dict[Future[dict[str, Any]], tuple[Task, Split]] = {}
        self.left: dict[Path, int] = {}
        self.new_rows = 0

    def run_one(self, task: Task, split: Split) -> dict[str, Any]:
        """Run one task in a worker process; the row is appended to ``results.jsonl`` at once."""
        cpus = self.slots.get()
        try:
            python = self.config.python_for(task.system)
            system = SYSTEMS[task.system]
            command = worker_command(system, python, Path(self.config.peer_worker).absolute() if self.config.peer_worker
                                     else None, cpus)
            env = thread_env(self.config.cores, peers=python != sys.executable)
            args = worker_args(task, split, self.config, self.kb_url) | {"cpus": cpus}
            workdir = self.output / "runs" / f"{slug(task.key)}-s{task.seed}-{task.system}-{task.budget}"
            outcome = self.launcher.run(command, env, args, workdir, self.config.cap(task.budget))
        finally:
            self.slots.put(cpus)
        row = result_row(task, split, outcome, self.config, python)
        append_jsonl(self.output / "results.jsonl", [row])
        clean_workdir(workdir, keep_logs=row["status"] != "ok")
        return row

    def submit(self, tasks: list[Task], splits: dict[int, Split]) -> None:
        for task in tasks:
            split = splits[task.seed]
            self.left[split.directory] = self.left.get(split.directory, 0) + 1
            self.pending[self.pool.submit(self.run_one, task, split)] = (task, split)

    def drain(self, below: int) -> None:
        """Wait until fewer than ``below`` runs are pending, reporting the finished ones."""
        while self.pending and len(self.pending) >= below:
            finished, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
            for future in finished:
                task, split = self.pending.pop(future)
                row = future.result()
                self.new_rows += 1
                self.echo(f"{row['dataset']} seed {task.seed} {task.system} @{task.budget}s: {row['status']}, "
                          f"{self.config.metric} {row['test_score']:.3f}, {row['seconds']:.1f} s "
                          f"(overrun {row['overrun']:+.1f} s)")
                self.left[split.directory] -= 1
                if not self.left[split.directory] and not self.config.keep_splits:
                    shutil.rmtree(split.directory, ignore_errors=True)
                    with contextlib.suppress(OSError):  # the dataset's directory, once its last seed is done
                        split.directory.parent.rmdir()

    def stop(self) -> None:
        """Kill every running worker and drop what is queued (Ctrl-C / SIGTERM)."""
        self.launcher.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _splits(source: DatasetSource, seeds: set[int], config: EqualTimeConfig, reference: list[ReferenceDataset],
            output: Path) -> dict[int, Split]:
    dataset = source.loader()
    if dataset.task != config.task:
        raise MetalearnError(f"{dataset.name} is a {dataset.task} dataset; this benchmark run is {config.task}")
    return {seed: write_split(dataset, source.key, seed, config, reference,
                              output / "splits" / slug(source.key) / f"seed-{seed}") for seed in sorted(seeds)}


def _execute(config: EqualTimeConfig, sources: list[DatasetSource], todo: dict[str, list[Task]], output: Path,
             kb: tuple[str, list[ReferenceDataset]], echo: Echo) -> int:
    """Run the pending tasks dataset by dataset (the next dataset's split is written while runs go on)."""
    runner = Runner(config, output, kb[0], echo)
    try:
        for source in sources:
            tasks = todo.get(source.key)
            if not tasks:
                continue
            try:
                splits = _splits(source, {t.seed for t in tasks}, config, kb[1], output)
            except Exception as exc:  # a dataset that cannot be loaded is logged and skipped
                append_jsonl(output / "errors.jsonl", [{"dataset_key": source.key, "stage": "load",
                                                        "error": f"{type(exc).__name__}: {exc}", "created": now()}])
                echo(f"skipped {source.key}: {exc}")
                continue
            runner.submit(tasks, splits)
            runner.drain(below=config.jobs)
        runner.drain(below=1)
    except BaseException:
        runner.stop()
        raise
    runner.pool.shutdown(wait=True)
    return runner.new_rows


def _available(config: EqualTimeConfig, echo: Echo) -> EqualTimeConfig:
    """``config`` less the systems whose worker cannot run here (with a warning each)."""
    kept = []
    for name in config.systems:
        system, python = SYSTEMS[name], config.python_for(name)
        if system.peers_env_only and not config.peers_python:
            echo(f"warning: skipping {name}: it runs in the peers virtualenv only "
                 "(benchmarks/peers/setup.sh, then --peers-python .venv-peers/bin/python)")
            continue
        if system.module and not (find_spec(system.module.split(".")[0]) is not None if python == sys.executable
                                  else python_has(python, system.module)):
            echo(f"warning: skipping {name}: {system.module} is not importable by {python}")
            continue
        kept.append(name)
    if not kept:
        raise MetalearnError("no system left to run")
    return replace(config, systems=tuple(kept))


def _load_state(output: Path, config: EqualTimeConfig) -> dict[str, Any]:
    path = output / "state.json"
    if not path.is_file():
        return {"protocol": config.protocol(), "seconds": 0.0, "invocations": []}
    state = json.loads(path.read_text())
    if state.get("protocol") != config.protocol():
        changed = sorted(k for k, v in config.protocol().items() if state.get("protocol", {}).get(k) != v)
        raise MetalearnError(f"{output} holds an equal-time benchmark with a different protocol "
                             f"({', '.join(changed)}); use another --output or the same settings")
    return state


def _sources(config: EqualTimeConfig, echo: Echo) -> tuple[EqualTimeConfig, list[DatasetSource]]:
    """The suite's sources of the run's one task, and the configuration for that task, less the systems that make
    no sense for it (the balance_weight variants for regression: skipped with a warning each)."""
    task, sources = suite_task(resolve_suite(config.suite, config.cache_dir), config.task)
    sources = select_sources(sources, shuffle=config.shuffle, limit=config.limit, datasets=config.datasets)
    kept = tuple(s for s in config.systems if task in SYSTEMS[s].tasks)
    for name in config.systems:
        if name not in kept:
            echo(f"warning: skipping {name} ({SYSTEMS[name].description}): a {'/'.join(SYSTEMS[name].tasks)} "
                 f"system, and this run is {task}")
    if not kept:
        raise MetalearnError(f"no system left to run for {task}")
    return config.for_task(task, kept), sources


def _todo(config: EqualTimeConfig, sources: list[DatasetSource], output: Path) -> dict[str, list[Task]]:
    done = done_tasks(read_jsonl(output / "results.jsonl"), config.retry_failed)
    todo: dict[str, list[Task]] = {}
    for source in sources:  # interleaved: every system of a (seed, budget) before the next one
        tasks = [Task(source.key, seed, system, budget) for seed in range(config.seeds) for budget in config.budgets
                 for system in config.systems if (source.key, seed, system, budget) not in done]
        if tasks:
            todo[source.key] = tasks
    return todo


def runs_of(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The distinct commands that produced the rows (``state.json``'s invocations), in order of first use, each
    with how often it ran and its hours: the report's record of how the rows were made."""
    runs: dict[str, dict[str, Any]] = {}
    for item in state.get("invocations", []):
        run = runs.setdefault(item["command"], {"command": item["command"], "invocations": 0, "seconds": 0.0})
        run["invocations"] += 1
        run["seconds"] += float(item.get("seconds", 0.0))
    return [{"command": r["command"], "invocations": r["invocations"], "hours": round(r["seconds"] / 3600, 2)}
            for r in runs.values()]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_equal_time(config: EqualTimeConfig, *, echo: Echo = print, report_only: bool = False) -> dict[str, Any]:
    """Run (or resume) the equal wall-clock benchmark and write its outputs; returns the summary.
    ``report_only`` runs nothing and rewrites the summary, report and plots."""
    config = config.validate()
    if not report_only:
        config = _available(config, echo)
    config, sources = _sources(config, echo)
    output = Path(config.output_dir).absolute()  # workers run in their own folders: every path they get is absolute
    output.mkdir(parents=True, exist_ok=True)
    state = _load_state(output, config)
    kb = (prepare_knowledge_base(config.db, output, echo, config.task or "classification")  # kb.json: the rows' KB
          if not report_only and any(SYSTEMS[s].kind == "metalearn" for s in config.systems) else ("", []))
    todo = _todo(config, sources, output)
    total = len(sources) * config.seeds * len(config.budgets) * len(config.systems)
    done = total - sum(map(len, todo.values()))
    echo(f"equal-time benchmark {config.suite} ({config.task}, test {config.metric}): {len(sources)} datasets x "
         f"{config.seeds} seeds x {len(config.budgets)} budgets x {len(config.systems)} systems ({done}/{total} "
         f"done); output {config.output_dir}")
    new_rows = 0
    if not report_only and todo:
        previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() \
            else None
        try:
            with compute_clock(output, state, config.command()):
                new_rows = _execute(config, sources, todo, output, kb, echo)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    save_state(output, state)
    hours, estimated = compute_hours(state, read_jsonl(output / "results.jsonl"))
    extra = {"new_rows": new_rows, "hours": hours, "hours_estimated": estimated, "report_only": report_only,
             "runs": runs_of(state)}
    summary = finalize(output, config.setup(), [s.key for s in sources], extra=extra)
    echo(f"wrote {Path(config.output_dir) / 'summary.json'} and report.md ({summary['n_datasets']} complete datasets, "
         f"{new_rows} new rows)")
    return summary


# --------------------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    """The command line (``python -m metalearn.benchmark.equal_time --help``)."""
    p = argparse.ArgumentParser(prog="python -m metalearn.benchmark.equal_time", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = EqualTimeConfig("")
    p.add_argument("--suite", required=True, help="manifest directory, or an OpenML suite id / alias")
    p.add_argument("--task", choices=("classification", "regression"), default=None,
                   help="the datasets of this task (default: the suite's one task)")
    p.add_argument("--systems", default=",".join(d.systems), help=f"comma-separated; from {', '.join(SYSTEMS)}")
    p.add_argument("--budgets", "--time-budgets", default="60,180", help="whole-process wall-clock per run, seconds")
    p.add_argument("--seeds", type=int, default=d.seeds, help="outer splits (seeds 0..N-1)")
    p.add_argument("--cores", type=int, default=d.cores, help="cores (threads) of every run")
    p.add_argument("--jobs", type=int, default=d.jobs, help="runs at a time (keep jobs x cores <= free cores)")
    p.add_argument("--output", default=None, help="default: benchmarks/results/equal-time[-regression]")
    p.add_argument("--db", default=None, help="knowledge base to copy (default: the shipped seed snapshot)")
    p.add_argument("--peers-python", default=None, help="python of the peers venv (benchmarks/peers/setup.sh)")
    p.add_argument("--peer-worker", default=None, help="path of benchmarks/peers/peer_worker.py")
    p.add_argument("--max-rows", type=int, default=d.max_rows, help="train rows cap of the outer split (0: none)")
    p.add_argument("--limit", type=int, default=None, help="first N datasets")
    p.add_argument("--shuffle", action="store_true", help="a fixed random dataset order")
    p.add_argument("--datasets", default=None, help="only the datasets named in this file (JSON list, "
                   "{\"datasets\": [...]} or one per line)")
    p.add_argument("--cache-dir", default=None, help="OpenML cache")
    p.add_argument("--cap-factor", type=float, default=d.cap_factor, help="hard cap = factor x budget + extra")
    p.add_argument("--cap-extra", type=float, default=d.cap_extra, help="seconds added to the hard cap")
    p.add_argument("--margin", type=float, default=d.margin, help="metalearn's safety margin, fraction of budget")
    p.add_argument("--min-margin", type=float, default=d.min_margin, help="metalearn's safety margin, at least (s)")
    p.add_argument("--pin-cpus", action="store_true", help="give every concurrent run its own CPUs (taskset)")
    p.add_argument("--retry-failed", action="store_true", help="rerun timed-out and crashed runs")
    p.add_argument("--keep-splits", action="store_true", help="keep the split parquet files")
    p.add_argument("--report-only", action="store_true", help="run nothing; rewrite summary, report and plots")
    return p


def config_from_args(ns: argparse.Namespace) -> EqualTimeConfig:
    """The configuration of parsed command-line arguments."""
    values = {k: v for k, v in vars(ns).items() if k in EqualTimeConfig.__dataclass_fields__}
    values["max_rows"] = values["max_rows"] or None
    return EqualTimeConfig(**values)


def main(argv: list[str] | None = None) -> int:
    """``python -m metalearn.benchmark.equal_time``; exit code 2 on a bad setting."""
    ns = parser().parse_args(argv)
    try:
        run_equal_time(config_from_args(ns), report_only=ns.report_only)
    except MetalearnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished runs are in results.jsonl; the same command resumes", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
