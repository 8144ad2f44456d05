"""What the commands of :mod:`metalearn.cli.search` run: the search stack and their helpers.

:mod:`metalearn.cli.search` holds the commands' options only; each command imports what it uses from here when
it runs, so ``metalearn search --help`` loads none of the service, the console, scikit-learn or SMAC.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from metalearn import console, service
from metalearn.cli.common import _print_json
from metalearn.datasets import detect_task
from metalearn.errors import MetalearnError
from metalearn.mitigation import FairnessRequest, check_request
from metalearn.report import render_report
from metalearn.restriction import split_names
from metalearn.settings import mlflow_uri
from metalearn.tracking import MlflowTracker
from metalearn.warmstart.continued import record_fairness, stored_fairness
from metalearn.warmstart.grid import load_grid
from metalearn.warmstart.search import SearchSettings

__all__ = ["SearchSettings", "check_fairness", "console", "csv_safe", "load", "mlops", "read_grid", "record_fairness",
           "render_report", "service", "settings_to_run", "show_result", "split_names"]


def load(file: Path, target: str, name: str | None, task: str | None = None) -> Any:
    """The dataset of ``file``, its task (and why) printed on standard error."""
    dataset = service.load_dataset(file, target, name, task=task)
    reason = "forced with --task" if task else detect_task(dataset.y)[1]
    typer.echo(f"task: {dataset.task} ({reason})", err=True)  # standard error: --json output stays clean
    return dataset


def failure(result: Any, settings: Any) -> str:
    """Why a search ended without a model, and what to change."""
    if not result.trials:
        if settings.time_budget:
            return (f"no trial finished within the time budget of {settings.time_budget:g} s (it counts start-up "
                    "and meta-features too): give a larger --time-budget")
        return "no trial finished"
    kinds = sorted({t.status for t in result.trials})
    return (f"all {len(result.trials)} trials failed ({', '.join(kinds)}); the errors are in the trials "
            "(--json) and the knowledge base")


def show_result(result: Any, settings: Any, output: Path | None, json_: bool, stopped: bool) -> None:
    """A search's result (``interrupted`` when the first Ctrl-C stopped it): JSON, or the leaderboard with the
    fairness and MLflow lines; without a model, why (and exit code 1)."""
    if stopped and result.status == "cancelled":
        result.status = "interrupted"
    if json_:
        _print_json(result.to_json() | {k: result.extra[k] for k in ("fairness", "mlflow") if k in result.extra})
    else:
        console.print_leaderboard(result, output if result.model is not None else None)
        print_mlops(result.extra)
    if result.status == "failed":  # no model: say why, and exit non-zero
        typer.echo(f"error: {failure(result, settings)}", err=True)
        raise typer.Exit(1)


def read_grid(path: Path | None) -> dict[str, list[Any]] | None:
    """The grid of ``--grid`` (None: the default grid)."""
    return None if path is None else load_grid(path)


def settings_to_run(kb: Any, dataset: Any, settings: Any, continue_: int | None) -> Any:
    """The settings to run: a continued search's own (reopened), or these, with a grid's size printed first."""
    if continue_ is not None:
        settings = service.continuation(kb, continue_, dataset, n_trials=settings.n_trials,
                                        time_budget=settings.time_budget)
        typer.echo(f"continuing search {continue_} ({settings.strategy}, {settings.metric})", err=True)
    elif settings.strategy == "grid":
        plan = service.plan_grid(kb, dataset, settings)
        dropped = f", {plan.dropped} invalid combinations dropped" if plan.dropped else ""
        runs = "" if settings.n_trials is None or settings.n_trials >= plan.size else \
            f"; the first {settings.n_trials} run (--trials)"
        typer.echo(f"grid: {plan.size} configurations ({plan.source}{dropped}){runs}", err=True)
    return settings


def check_fairness(kb: Any, dataset: Any, continue_: int | None, extras: dict[str, Any]) -> bool:
    """Check the fairness request of ``extras``; a continued search's stored request goes into ``extras`` (its
    new final model is made fair again; a different request on the command line is an error). Returns whether
    the request is new, to be stored with the search once it exists (``search --continue`` and the API's
    continue then mitigate again)."""
    given = extras["fairness"]
    stored = stored_fairness(kb.search(continue_)["settings"]) if continue_ is not None else None
    if stored is not None:
        request = FairnessRequest(**stored)
        if given is not None and given != request:
            raise MetalearnError(f"search {continue_} is made fair for {request.sensitive!r} ({request.constraint}); "
                                 "a continued search keeps its own fairness request: leave out --sensitive and "
                                 "--fairness")
        extras["fairness"] = request
        typer.echo(f"its final model is made fair again for {request.sensitive!r} ({request.constraint})", err=True)
    if extras["fairness"] is not None:
        check_request(extras["fairness"], dataset)  # a bad request fails before a continued search is reopened
    return given is not None and stored is None


def mlops(sensitive: str | None, fairness: str | None, mlflow: bool, experiment: str,
           register: str | None) -> dict[str, Any]:
    """The fairness request and MLflow tracker of ``search`` (None when not asked for)."""
    if (sensitive is None) != (fairness is None):
        raise MetalearnError("fairness mitigation needs both --sensitive COLUMN and --fairness "
                             "demographic_parity|equalized_odds")
    tracker = None
    if mlflow or register or mlflow_uri():
        tracker = MlflowTracker(experiment=experiment, register=register)
    request = FairnessRequest(sensitive, fairness) if sensitive is not None and fairness is not None else None
    return {"fairness": request, "tracker": tracker}


def print_mlops(extra: dict[str, Any]) -> None:
    """The fairness figures before / after mitigation and where MLflow has the search."""
    fair = extra.get("fairness")
    if fair:
        typer.echo(f"fairness ({fair['constraint']} on {fair['sensitive']!r}, {fair['evaluated_on']}):")
        for side in ("before", "after"):
            f = fair[side]
            groups = ", ".join(f"{g['group']} {g.get('selection_rate', float('nan')):.2f}" for g in f["groups"])
            typer.echo(f"  {side:6} balanced accuracy {f['balanced_accuracy']:.3f}, demographic parity difference "
                       f"{f['demographic_parity_difference']:.3f}, equalized odds difference "
                       f"{f['equalized_odds_difference']:.3f}; selection rate by group: {groups}")
    tracked = extra.get("mlflow")
    if tracked:
        typer.echo(f"mlflow: run {tracked['run_id']} in experiment {tracked['experiment']!r} at "
                   f"{tracked['tracking_uri']}" + (f", model {tracked['model_uri']}" if tracked.get("model_uri")
                                                   else ""))


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: Any) -> Any:
    """``frame`` with text cells a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first)
    prefixed with ``'`` (OWASP CSV injection); numbers, and text that is a plain number such as ``-1.5``, stay."""
    def cell(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
            return "'" + value
        return value

    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype.kind not in "biufcmM":  # text, object or categorical
            safe[column] = safe[column].map(cell)
    return safe
