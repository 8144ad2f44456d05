"""``metalearn benchmark``: the offline trial study, or with ``--time-budgets`` the equal wall-clock comparison
with FLAML and AutoGluon (see benchmarks/README.md); classification or regression, one task per run.

The benchmark package is imported when the command runs, not for its ``--help`` (importing even
:mod:`metalearn.benchmark.config` runs the package's ``__init__``, which loads the whole search stack): the
defaults of its options are read from :mod:`metalearn.defaults`, which :class:`BenchmarkConfig` reads too."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from metalearn.cli.common import user_errors
from metalearn.defaults import (
    BENCHMARK_BUDGETS,
    BENCHMARK_FOLDS,
    BENCHMARK_FRACTIONS,
    BENCHMARK_MAX_ROWS,
    BENCHMARK_SEEDS,
    BENCHMARK_STRATEGIES,
    BENCHMARK_TRIAL_TIME_LIMIT,
)

commands = typer.Typer()


def _listed(values: Iterable[object]) -> str:
    """``values`` as the comma-separated text of an option's default."""
    return ",".join(map(str, values))


def _echo(text: str) -> None:
    """Progress and messages of a benchmark run, on standard error."""
    typer.echo(text, err=True)


@commands.command()
@user_errors
def benchmark(
    suite: Annotated[str, typer.Option("--suite", help="OpenML suite id or alias, or a directory holding a "
                                                       "manifest.json (e.g. ../shared/datasets, "
                                                       "../shared/datasets-regression).")],
    task: Annotated[str | None, typer.Option("--task", help="classification or regression: the datasets of that "
                                                           "task (default: the suite's one task; a suite mixing "
                                                           "tasks needs it).")] = None,
    strategies: Annotated[str, typer.Option(help="Comma-separated: warm, cold, random, hyperband, "
                                                 "successive-halving, flaml, flaml-zeroshot, "
                                                 "warm@<fraction>.")] = _listed(BENCHMARK_STRATEGIES),
    budgets: Annotated[str, typer.Option(help="Comma-separated budgets in trials.")] = _listed(BENCHMARK_BUDGETS),
    seeds: Annotated[int, typer.Option(min=1, help="Outer splits (and search seeds) per dataset.")] = BENCHMARK_SEEDS,
    jobs: Annotated[int, typer.Option(min=1, help="Datasets run in parallel (processes).")] = 1,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output directory (resumable; default "
                                                                     "benchmarks/results/warmstart, or "
                                                                     "benchmarks/results/equal-time with "
                                                                     "--time-budgets; -regression appended for "
                                                                     "regression).")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Knowledge base to benchmark against; it is copied, never "
                                                        "written (default: the shipped seed snapshot).")] = None,
    max_rows: Annotated[int, typer.Option(min=20, help="Stratified row cap of the train part.")] = BENCHMARK_MAX_ROWS,
    folds: Annotated[int, typer.Option(min=2, help="CV folds inside the train part.")] = BENCHMARK_FOLDS,
    kb_fractions: Annotated[str, typer.Option(help="Knowledge-base fractions for the size curve (warm@f); "
                                                   "empty for none.")] = _listed(BENCHMARK_FRACTIONS),
    kb_fraction_seeds: Annotated[int | None, typer.Option(min=1, help="Run the size curve on the first N seeds "
                                                                      "only (default: every seed).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N datasets.")] = None,
    shuffle: Annotated[bool, typer.Option(help="Fixed random dataset order, so --limit N is a random "
                                               "sample (growing N keeps the earlier ones).")] = False,
    trial_time_limit: Annotated[float, typer.Option(help="Seconds allowed per trial.")] = BENCHMARK_TRIAL_TIME_LIMIT,
    datasets: Annotated[str | None, typer.Option(help="Only the datasets named in this file (a JSON list, "
                                                   "{\"datasets\": [...]}, or one name per line).")] = None,
    ensemble_size: Annotated[int | None, typer.Option(min=0, help="Greedy ensemble rounds of each budget's model "
                                                             "(0: the single best pipeline; default: the "
                                                             "library default).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="OpenML cache directory.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    report_only: Annotated[bool, typer.Option(help="Run nothing: rewrite summary, report and plots from the "
                                                   "datasets already complete (partial results).")] = False,
    time_budgets: Annotated[str | None, typer.Option(help="Comma-separated whole-process wall-clock budgets in "
                                                          "seconds: run the equal-time comparison of --systems "
                                                          "instead of the trial study.")] = None,
    systems: Annotated[str, typer.Option(help="With --time-budgets: metalearn, metalearn-cold, flaml, hgb, "
                                              "autogluon, autogluon-balanced, autogluon-best (comma-separated; "
                                              "the balance_weight variants are skipped for regression).")]
    = "metalearn,metalearn-cold,flaml,hgb,autogluon,autogluon-balanced",
    cores: Annotated[int, typer.Option(min=1, help="With --time-budgets: cores (threads) of every run.")] = 1,
    peers_python: Annotated[str | None, typer.Option(help="With --time-budgets: the python of the peers venv "
                                                          "(benchmarks/peers/setup.sh).")] = None,
    pin_cpus: Annotated[bool, typer.Option("--pin-cpus", help="With --time-budgets: give every concurrent run its "
                                                              "own CPUs (taskset).")] = False,
) -> None:
    """Offline benchmark of warm vs cold vs random search (and FLAML); see benchmarks/README.md."""
    from metalearn.benchmark import (
        BenchmarkConfig,
        equal_time,
        parse_budgets,
        parse_fractions,
        parse_strategies,
        run_benchmark,
    )

    if time_budgets is not None:
        equal_time.run_equal_time(equal_time.EqualTimeConfig(
            suite=suite, systems=tuple(systems.split(",")), budgets=tuple(time_budgets.split(",")), seeds=seeds,
            cores=cores, jobs=jobs, output=str(output) if output else None, db=db, task=task,
            peers_python=peers_python, max_rows=max_rows, limit=limit, shuffle=shuffle, datasets=datasets,
            cache_dir=str(cache_dir) if cache_dir else None, pin_cpus=pin_cpus), echo=_echo, report_only=report_only)
        return
    config = BenchmarkConfig(
        suite=suite, strategies=parse_strategies(strategies), budgets=parse_budgets(budgets), seeds=seeds,
        jobs=jobs, output=str(output) if output else None, db=db, max_rows=max_rows, folds=folds,
        kb_fractions=parse_fractions(kb_fractions), limit=limit, shuffle=shuffle, trial_time_limit=trial_time_limit,
        cache_dir=str(cache_dir) if cache_dir else None, kb_fraction_seeds=kb_fraction_seeds, task=task,
        datasets=datasets, **({} if ensemble_size is None else {"ensemble_size": ensemble_size}))
    summary = run_benchmark(config, echo=_echo, progress=progress and sys.stderr.isatty(), report_only=report_only)
    typer.echo(f"report: {Path(summary['output']) / 'report.md'}")
    for target in summary["targets"].values():
        state = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        typer.echo(f"  {target['description']}: {state}")
