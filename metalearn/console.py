"""Terminal rendering of the CLI (rich): tables of meta-features, recommendations, leaderboards and progress.

Imported only when a CLI command runs, so ``metalearn --help`` stays fast; it turns the service's results
into text, and stops a search at once on SIGINT / SIGTERM (:func:`first_ctrl_c_stops`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metalearn import service
from metalearn.datasets import Dataset
from metalearn.evaluation import cancel_running_trials
from metalearn.knowledge_base import KnowledgeBase
from metalearn.metafeatures import MetaFeatures
from metalearn.warmstart.recommendation import RecommendationReport
from metalearn.warmstart.result import SearchResult
from metalearn.warmstart.search import SearchSettings


def _number(value: Any, digits: int = 4) -> str:
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def print_metafeatures(dataset: Dataset, mf: MetaFeatures) -> None:
    table = Table(title=f"{dataset.name}: {len(mf.features)} meta-features ({mf.extractor}, {mf.seconds:.2f} s)")
    table.add_column("meta-feature")
    table.add_column("value", justify="right")
    for key, value in mf.features.items():
        table.add_row(key, "—" if value is None else f"{value:.6g}")
    Console().print(table)


def print_recommendations(dataset: Dataset, report: RecommendationReport) -> None:
    console = Console()
    target = f"{dataset.n_classes} classes" if dataset.task == "classification" else "numeric target (regression)"
    console.print(f"[bold]{dataset.name}[/]: {dataset.n_rows} rows, {dataset.n_features} features, {target}")
    console.print("nearest datasets: " + ", ".join(f"{n.name} ({n.distance:.3f})" for n in report.neighbors))
    if report.far:
        console.print("[yellow]the knowledge base holds nothing close: the global portfolio leads[/]")
    if report.filtered:
        console.print(f"{report.filtered} candidates left out by --include / --exclude / --interpretable "
                      "(replaced by the next ones)")
    table = Table()
    for col in ("rank", "algorithm", "expected", "range", "source", "evidence"):
        table.add_column(col)
    for r in report.recommendations:
        span = f"{r.expected_range[0]:.3f}–{r.expected_range[1]:.3f}" if r.expected_range else "—"
        evidence = ", ".join(f"{e.dataset}={e.score:.3f}" for e in r.evidence[:3])
        table.add_row(str(r.rank), r.algorithm, _number(r.expected_score, 3), span, r.source, evidence)
    console.print(table)


class StopRequest(threading.Event):
    """Set by the first SIGINT or SIGTERM. ``is_set()`` then returns ``"interrupted"``, which the search
    records as its final status; ``exit_code`` is the status the command exits with (130 or 143)."""

    signum: int | None = None

    def is_set(self) -> Any:
        return "interrupted" if super().is_set() else False

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum


@contextlib.contextmanager
def first_ctrl_c_stops() -> Iterator[StopRequest]:
    """SIGINT (Ctrl-C) or SIGTERM stops the search at once: the running trial is killed and stored ``cancelled``,
    the finished ones stay, the search is stored ``interrupted`` and the command then exits with 130 (SIGINT)
    or 143 (SIGTERM). A second signal raises ``KeyboardInterrupt``, cutting short what is left to do."""
    stop = StopRequest()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()
        cancel_running_trials()  # may raise TrialCancelled into a trial running right here

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, on_signal) for signum in signals}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if stop.exit_code is not None:
            gc.freeze()  # the process ends now: spare its exit a collection of every object (seconds after a search)
            _exit_after_command(stop.exit_code)


def _exit_after_command(code: int) -> None:
    """Make the running CLI command exit with ``code`` once it has printed its result (outside one: nothing)."""
    try:  # typer's (vendored click) context of the running command
        context = typer._click.globals.get_current_context(silent=True)
    except AttributeError:
        context = None
    if context is not None:
        context.call_on_close(functools.partial(_exit, code))


def _exit(code: int) -> None:
    raise typer.Exit(code)


def search_with_progress(kb: KnowledgeBase, dataset: Dataset, settings: SearchSettings, stopped: StopRequest,
                         output: Path | None, search_id: int | None = None,
                         started_at: float | None = None) -> SearchResult:
    """``service.search`` with a progress bar of trials and the best score so far (``search_id``: continue it)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), transient=True) as progress:
        task = progress.add_task(f"{settings.strategy} search on {dataset.name}", total=settings.n_trials, best="—")
        prior = len(service.stored_search(kb, search_id).trials) if search_id is not None else 0

        def on_trial(trial: Any, result: SearchResult) -> None:
            progress.update(task, completed=len(result.trials) - prior, best=_number(result.best_score))

        return service.search(kb, dataset, settings, callback=on_trial, should_stop=stopped.is_set, output=output,
                              search_id=search_id, started_at=started_at)


def pipeline_of(configuration: dict[str, Any], algorithm: str) -> str:
    """A short description of a trial's pipeline: its estimator, and its feature preprocessing unless none."""
    step = configuration.get("feature_preprocessing")
    return algorithm if step in (None, "none") else f"{algorithm} + {step}"


def print_leaderboard(result: SearchResult, output: Path | None, console: Console | None = None) -> None:
    """The best 10 trials. Readable at 80 columns and in logs: the numbers, statuses and headers never shrink,
    the pipeline column folds onto more lines instead."""
    console = console or Console()
    table = Table(title=f"search {result.search_id} on {result.dataset['name']} ({result.settings.strategy}, "
                        f"{len(result.trials)} trials, {result.seconds:.1f} s, {result.settings.metric})",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("trial", justify="right", no_wrap=True, min_width=5)
    table.add_column("pipeline", overflow="fold", ratio=1, min_width=8)
    for col in ("score", "std", "status", "origin", "seconds"):
        table.add_column(col, justify="left" if col in ("status", "origin") else "right", no_wrap=True,
                         min_width=len(col))
    trials = {t.number: t for t in result.trials}
    for row in result.leaderboard.head(10).itertuples():
        table.add_row(str(row.trial), pipeline_of(trials[row.trial].configuration, row.algorithm), _number(row.score),
                      _number(row.std), row.status, row.origin, f"{row.seconds:.2f}")
    console.print(table)
    if result.extra.get("grid"):
        grid = result.extra["grid"]
        console.print(f"grid: {grid['size']} configurations ({grid['source']})")
    best = result.best
    if best is None:
        console.print("[red]no trial succeeded[/]")
        return
    console.print(f"best: trial {best.number}, {best.algorithm}, CV {result.settings.metric} {best.score:.4f}")
    if result.ensemble is not None:
        members = ", ".join(f"{m['trial']} {m['algorithm']} {m['weight']:.2f}" for m in result.ensemble.members)
        console.print(f"ensemble of {len(result.ensemble.members)}: out-of-fold {result.settings.metric} "
                      f"{result.ensemble.oof_score:.4f} (best single trial {result.ensemble.best_single_oof_score:.4f})"
                      f"; members (trial, algorithm, weight): {members}")
    if result.extra.get("test_score") is not None:
        console.print(f"held-out test {result.settings.metric}: {result.extra['test_score']:.4f}")
    if output is not None:
        console.print(f"model saved to {output}")
