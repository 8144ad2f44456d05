"""Commands on one dataset: meta-features, recommendations, search, predict, report."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from metalearn.cli.common import (
    DbOption,
    JsonOption,
    MetricOption,
    NameOption,
    TargetOption,
    TaskOption,
    _kb,
    _load,
    _print_json,
    app,
    user_errors,
)
from metalearn.errors import MetalearnError
from metalearn.protocol import DEFAULTS, STRATEGIES


@app.command()
@user_errors
def metafeatures(file: Path, target: TargetOption, name: NameOption = None, task: TaskOption = None,
                 json_: JsonOption = False,
                 seed: int = 0) -> None:
    """Extract the meta-feature vector of a dataset."""
    from metalearn import service

    dataset = _load(file, target, name, task)
    mf = service.metafeatures(dataset, seed=seed)
    if json_:
        _print_json(mf.to_json())
        return
    from metalearn.console import print_metafeatures

    print_metafeatures(dataset, mf)


@app.command()
@user_errors
def recommend(file: Path, target: TargetOption, name: NameOption = None,
              top: Annotated[int, typer.Option(min=1, max=100)] = DEFAULTS.top,
              k: Annotated[int, typer.Option(min=1, max=100, help="Number of neighbours.")] = DEFAULTS.k,
              metric: MetricOption = None, task: TaskOption = None, db: DbOption = None,
              json_: JsonOption = False) -> None:
    """Recommend pipelines for a dataset, with the evidence behind each one."""
    from metalearn import service

    dataset = _load(file, target, name, task)
    report = service.recommend(_kb(db), dataset, top=top, k=k, metric=metric)
    if json_:
        _print_json(report.to_json())
        return
    from metalearn.console import print_recommendations

    print_recommendations(dataset, report)


@app.command()
@user_errors
def search(file: Path, target: TargetOption, name: NameOption = None,
           trials: Annotated[int | None, typer.Option("--trials", min=1, help="Number of trials.")]
           = DEFAULTS.n_trials,
           time_budget: Annotated[float | None, typer.Option(help="Wall-clock budget in seconds.")] = None,
           trial_time_limit: Annotated[float | None, typer.Option(help="Seconds allowed per trial.")]
           = DEFAULTS.trial_time_limit,
           strategy: Annotated[str, typer.Option(help=", ".join(STRATEGIES) + ".")] = DEFAULTS.strategy,
           metric: MetricOption = None, task: TaskOption = None, seed: int = DEFAULTS.seed,
           folds: int = DEFAULTS.folds,
           max_rows: Annotated[int, typer.Option(min=1, help="Row cap (stratified) for the trials.")]
           = DEFAULTS.max_rows,
           workers: Annotated[int, typer.Option(min=1, help="Parallel trials on a local Dask cluster.")] = 1,
           test_size: Annotated[float | None, typer.Option(help="Hold out this fraction for a final test score "
                                                                 "(and for `metalearn report`).")] = None,
           dask_scheduler: Annotated[str | None, typer.Option(help="Use this Dask scheduler (tcp://HOST:PORT).")]
           = None,
           ensemble_size: Annotated[int, typer.Option(min=0, help="Rounds of greedy ensemble selection over the "
                                                               "best trials (0: the single best pipeline).")]
           = DEFAULTS.ensemble_size,
           output: Annotated[Path | None, typer.Option("--output", "-o", help="Save the final model here.")] = None,
           db: DbOption = None, json_: JsonOption = False) -> None:
    """Run a (warm-started) search; every trial is stored in the knowledge base."""
    from metalearn import console, service
    from metalearn.warmstart.search import SearchSettings

    dataset = _load(file, target, name, task)
    settings = SearchSettings(strategy=strategy, n_trials=trials, time_budget=time_budget,
                              trial_time_limit=trial_time_limit, metric=metric, seed=seed, folds=folds,
                              max_rows=max_rows, workers=workers, dask_scheduler=dask_scheduler, test_size=test_size,
                              ensemble_size=ensemble_size)
    kb = _kb(db)
    with console.first_ctrl_c_stops() as stopped:
        if json_ or not sys.stderr.isatty():
            result = service.search(kb, dataset, settings, should_stop=stopped.is_set, output=output)
        else:
            result = console.search_with_progress(kb, dataset, settings, stopped, output)
    if stopped.is_set() and result.status == "cancelled":
        result.status = "interrupted"
    if json_:
        _print_json(result.to_json())
        return
    console.print_leaderboard(result, output if result.model is not None else None)


TrustOption = Annotated[bool, typer.Option("--trust-unsigned", help="Load a model file without a valid signature "
                                                                    "(an unsigned file from an older version, or one "
                                                                    "signed with another key). Loading a model runs "
                                                                    "code from it: only for files you trust.")]
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(frame: Any) -> Any:
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


@app.command()
@user_errors
def predict(model: Path, file: Path,
            output: Annotated[Path | None, typer.Option("--output", "-o", help="CSV to write.")] = None,
            trust_unsigned: TrustOption = False) -> None:
    """Apply a saved model to a table (CSV / parquet / ARFF); the target column, if present, is ignored.

    Text cells that a spreadsheet would read as a formula are written with a leading ' (CSV injection).
    """
    from metalearn import service

    predictions = _csv_safe(service.predict(model, file, trust_unsigned=trust_unsigned))
    if output is None:
        typer.echo(predictions.to_csv(index=False), nl=False)
    else:
        predictions.to_csv(output, index=False)
        typer.echo(f"wrote {len(predictions)} predictions to {output}")


@app.command()
@user_errors
def report(
    source: Annotated[str, typer.Argument(metavar="SEARCH_ID_OR_MODEL", help="A model file written by `search "
                                          "--output` (save_model), or the id of a search in the knowledge base.")],
    data: Annotated[Path | None, typer.Option("--data", help="Table (CSV / parquet / ARFF) with the model's "
                                                             "columns and the target (required).")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="Target column (default: the one recorded "
                                                                      "in the model file or knowledge base).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default report.html; "
                                                                       "with --json: standard output).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Write the report as JSON data instead of HTML.")] = False,
    sensitive: Annotated[list[str] | None, typer.Option(
        "--sensitive", help="Sensitive column for the fairness section (repeat, or separate with commas).")] = None,
    db: DbOption = None,
    sample_size: Annotated[int, typer.Option(min=10, help="Rows for permutation importance, partial dependence "
                                                          "and SHAP.")] = 500,
    shap_seconds: Annotated[float, typer.Option(min=0.1, help="Time budget of the SHAP step (fewer rows and "
                                                              "permutations are explained to fit it).")] = 20.0,
    seed: int = 0,
    trust_unsigned: TrustOption = False,
) -> None:
    """Model report: metrics, calibration, explanations (permutation, PDP, SHAP, surrogate), fairness, the search.

    SEARCH_ID_OR_MODEL: a saved model file, or a search id (its best configuration is refitted on --data).
    """
    from metalearn import service
    from metalearn.report import render_report

    if data is None:
        raise MetalearnError("give the data to evaluate on with --data FILE (the knowledge base and the model file "
                             "hold no raw data)")
    columns = [c.strip() for item in sensitive or [] for c in item.split(",") if c.strip()]
    result = service.report(source, data, target=target, db=db, sensitive=columns, sample_size=sample_size, seed=seed,
                            shap_seconds=shap_seconds, trust_unsigned=trust_unsigned)
    for message in result.warnings:
        typer.echo(f"warning: {message}", err=True)
    if json_ and output is None:
        typer.echo(render_report(result, "json"))
        return
    written = result.save(output or Path("report.html"), "json" if json_ else "html")
    typer.echo(f"wrote {written} ({len(result.sections)} sections, {result.data['meta']['seconds']:.1f} s)")
