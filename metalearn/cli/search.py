"""Commands on one dataset: meta-features, recommendations, search, predict, report.

Only their options are defined here (a command's ``--help`` loads this module): each command imports what it runs
from :mod:`metalearn.cli.searching` (the service, the console, the search stack) when it runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import psutil
import typer

from metalearn.cli.common import (
    DbOption,
    JsonOption,
    MetricOption,
    NameOption,
    TargetOption,
    TaskOption,
    TrustOption,
    _kb,
    _print_json,
    user_errors,
)
from metalearn.defaults import REPORT_SAMPLE_SIZE, REPORT_SHAP_SECONDS
from metalearn.errors import MetalearnError
from metalearn.protocol import DEFAULTS, STRATEGIES

commands = typer.Typer()


def _runner() -> ModuleType:
    """:mod:`metalearn.cli.searching`, what the commands run (the service, the console, the search stack): imported
    when a command runs, not for its ``--help``."""
    from metalearn.cli import searching

    return searching

#: when this process started (epoch seconds): ``--time-budget`` counts from here, the imports included
STARTED_AT = psutil.Process().create_time()


@commands.command()
@user_errors
def metafeatures(file: Path, target: TargetOption, name: NameOption = None, task: TaskOption = None,
                 json_: JsonOption = False,
                 seed: int = 0) -> None:
    """Extract the meta-feature vector of a dataset."""
    run = _runner()

    dataset = run.load(file, target, name, task)
    mf = run.service.metafeatures(dataset, seed=seed)
    if json_:
        _print_json(mf.to_json())
        return
    run.console.print_metafeatures(dataset, mf)


IncludeOption = Annotated[list[str] | None, typer.Option(
    "--include", help="Search only these estimator families / feature preprocessors (repeat, or separate with "
                      "commas), e.g. --include logistic_regression,random_forest.")]
ExcludeOption = Annotated[list[str] | None, typer.Option(
    "--exclude", help="Never use these estimator families / feature preprocessors (repeat, or commas).")]
InterpretableOption = Annotated[bool, typer.Option(
    "--interpretable", help="Only interpretable models: linear models, a decision tree of depth <= 5, naive Bayes, "
                            "on the original features (feature selection, no PCA / polynomial features).")]


@commands.command()
@user_errors
def recommend(file: Path, target: TargetOption, name: NameOption = None,
              top: Annotated[int, typer.Option(min=1, max=100)] = DEFAULTS.top,
              k: Annotated[int, typer.Option(min=1, max=100, help="Number of neighbours.")] = DEFAULTS.k,
              metric: MetricOption = None, task: TaskOption = None, include: IncludeOption = None,
              exclude: ExcludeOption = None, interpretable: InterpretableOption = False, db: DbOption = None,
              json_: JsonOption = False) -> None:
    """Recommend pipelines for a dataset, with the evidence behind each one."""
    run = _runner()

    dataset = run.load(file, target, name, task)
    report = run.service.recommend(_kb(db), dataset, top=top, k=k, metric=metric, include=include or [],
                                   exclude=exclude or [], interpretable=interpretable)
    if json_:
        _print_json(report.to_json())
        return
    run.console.print_recommendations(dataset, report)


@commands.command()
@user_errors
def search(file: Path, target: TargetOption, name: NameOption = None,
           trials: Annotated[int | None, typer.Option("--trials", min=1, help=f"Number of trials (default "
                                                                     f"{DEFAULTS.n_trials}; with --strategy grid, "
                                                                     "the whole grid).")] = None,
           time_budget: Annotated[float | None, typer.Option(help="Wall-clock budget in seconds of the whole "
                                                                   "command: start-up, meta-features, trials and "
                                                                   "the final model.")] = None,
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
           sensitive: Annotated[str | None, typer.Option(help="Sensitive column for --fairness (it stays a "
                                                             "feature).")] = None,
           fairness: Annotated[str | None, typer.Option(help="Make the final model fair for --sensitive: "
                                                            "demographic_parity or equalized_odds.")] = None,
           mlflow: Annotated[bool, typer.Option("--mlflow", help="Log the search to MLflow (METALEARN_MLFLOW_URI "
                                                                 "or MLflow's default; on when that is set).")]
           = False,
           mlflow_experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "metalearn",
           mlflow_register: Annotated[str | None, typer.Option(help="Register the final model in MLflow under "
                                                                    "this name (implies --mlflow).")] = None,
           include: IncludeOption = None, exclude: ExcludeOption = None,
           interpretable: InterpretableOption = False,
           grid: Annotated[Path | None, typer.Option(help="--strategy grid: JSON / YAML mapping hyperparameters "
                                                         "to value lists (default: the default grid).")] = None,
           max_grid_size: Annotated[int, typer.Option(min=1, help="Refuse a grid with more points.")]
           = DEFAULTS.max_grid_size,
           continue_: Annotated[int | None, typer.Option("--continue", metavar="SEARCH_ID", help="Add --trials / "
                                                        "--time-budget to this stored search (same data and "
                                                        "target; its own settings are used, its fairness "
                                                        "mitigation too).")] = None,
           db: DbOption = None, json_: JsonOption = False) -> None:
    """Run a (warm-started) search; every trial is stored in the knowledge base."""
    run = _runner()

    dataset = run.load(file, target, name, task)
    trials = trials if trials is not None or strategy == "grid" or continue_ is not None else DEFAULTS.n_trials
    settings = run.SearchSettings(strategy=strategy, n_trials=trials, time_budget=time_budget,
                                  trial_time_limit=trial_time_limit, metric=metric, seed=seed, folds=folds,
                                  max_rows=max_rows, workers=workers, dask_scheduler=dask_scheduler,
                                  test_size=test_size,
                                  ensemble_size=ensemble_size, include=include or [], exclude=exclude or [],
                                  interpretable=interpretable, grid=run.read_grid(grid), max_grid_size=max_grid_size)
    extras = run.mlops(sensitive, fairness, mlflow, mlflow_experiment, mlflow_register)
    kb = _kb(db)
    new_fairness = run.check_fairness(kb, dataset, continue_, extras)  # before a continued search is reopened
    settings = run.settings_to_run(kb, dataset, settings, continue_)
    with run.console.first_ctrl_c_stops() as stopped:
        if json_ or not sys.stderr.isatty() or any(extras.values()):
            result = run.service.search(kb, dataset, settings, should_stop=stopped.is_set, output=output,
                                        search_id=continue_, started_at=STARTED_AT, **extras)
        else:
            result = run.console.search_with_progress(kb, dataset, settings, stopped, output, search_id=continue_,
                                                      started_at=STARTED_AT)
    if new_fairness and result.search_id is not None:  # stored with the search: continuing it mitigates again
        run.record_fairness(kb, result.search_id, vars(extras["fairness"]))
    run.show_result(result, settings, output, json_, stopped=stopped.is_set())


@commands.command()
@user_errors
def predict(model: Path, file: Path,
            output: Annotated[Path | None, typer.Option("--output", "-o", help="CSV to write.")] = None,
            trust_unsigned: TrustOption = False) -> None:
    """Apply a saved model to a table (CSV / parquet / ARFF); the target column, if present, is ignored.

    Text cells that a spreadsheet would read as a formula are written with a leading ' (CSV injection).
    """
    run = _runner()

    predictions = run.csv_safe(run.service.predict(model, file, trust_unsigned=trust_unsigned))
    if output is None:
        typer.echo(predictions.to_csv(index=False), nl=False)
    else:
        predictions.to_csv(output, index=False)
        typer.echo(f"wrote {len(predictions)} predictions to {output}")


@commands.command()
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
                                                          "and SHAP.")] = REPORT_SAMPLE_SIZE,
    shap_seconds: Annotated[float, typer.Option(
        min=0.1, help="Time budget of the SHAP step (fewer rows and permutations are explained to fit it).")
    ] = REPORT_SHAP_SECONDS,
    seed: int = 0,
    trust_unsigned: TrustOption = False,
) -> None:
    """Model report: metrics, calibration, explanations (permutation, PDP, SHAP, surrogate), fairness, the search.

    SEARCH_ID_OR_MODEL: a saved model file, or a search id (its best configuration is refitted on --data).
    """
    run = _runner()

    if data is None:
        raise MetalearnError("give the data to evaluate on with --data FILE (the knowledge base and the model file "
                             "hold no raw data)")
    columns = run.split_names(sensitive)
    result = run.service.report(source, data, target=target, db=db, sensitive=columns, sample_size=sample_size,
                                seed=seed, shap_seconds=shap_seconds, trust_unsigned=trust_unsigned)
    for message in result.warnings:
        typer.echo(f"warning: {message}", err=True)
    if json_ and output is None:
        typer.echo(run.render_report(result, "json"))
        return
    written = result.save(output or Path("report.html"), "json" if json_ else "html")
    typer.echo(f"wrote {written} ({len(result.sections)} sections, {result.data['meta']['seconds']:.1f} s)")
