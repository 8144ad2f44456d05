"""The ``metalearn`` command line (typer). Errors in the user's input print one line and exit 2."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from metalearn.errors import KnowledgeBaseError, MetalearnError
from metalearn.protocol import DEFAULTS, STRATEGIES

app = typer.Typer(help="Meta-learning AutoML for tabular classification.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
kb_app = typer.Typer(help="Manage the knowledge base (METALEARN_DB).", no_args_is_help=True)
app.add_typer(kb_app, name="kb")

F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[str | None, typer.Option("--db", help="Knowledge base path or SQLAlchemy URL "
                                                             "(default: METALEARN_DB).")]
TargetOption = Annotated[str, typer.Option("--target", "-t", help="Name of the target column.")]
NameOption = Annotated[str | None, typer.Option("--name", help="Dataset name (default: the file's stem).")]
TaskOption = Annotated[str | None, typer.Option("--task", help="classification or regression (default: detected "
                                                                "from the target, and the reason printed).")]
MetricOption = Annotated[str | None, typer.Option("--metric", help="balanced_accuracy, accuracy, f1_macro, roc_auc, "
                                                                    "log_loss; r2, rmse, mae, mape (errors are "
                                                                    "reported negated: higher is better). Default: "
                                                                    "balanced_accuracy or r2.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def user_errors(func: F) -> F:
    """Turn :class:`MetalearnError` into ``error: ...`` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MetalearnError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def kb_errors(func: F) -> F:
    """For the ``kb`` commands: a database error is one ``error:`` line (under :func:`user_errors`), never a
    traceback; the knowledge base's own errors already hide the URL's password."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return func(*args, **kwargs)
        except SQLAlchemyError as exc:
            lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise KnowledgeBaseError(f"knowledge base error: {lines[0] if lines else type(exc).__name__}") from None

    return wrapper  # type: ignore[return-value]


def _shown(url: str) -> str:
    """A database URL as printed: the password hidden."""
    from metalearn.settings import redact_url

    return redact_url(url)


def _print_json(data: Any) -> None:
    from metalearn.protocol import to_jsonable

    typer.echo(json.dumps(to_jsonable(data), indent=2, allow_nan=False))


def _kb(db: str | None) -> Any:
    from metalearn.service import open_kb

    return open_kb(db)


def _load(file: Path, target: str, name: str | None, task: str | None = None) -> Any:
    from metalearn.datasets import detect_task
    from metalearn.service import load_dataset

    dataset = load_dataset(file, target, name, task=task)
    reason = "forced with --task" if task else detect_task(dataset.y)[1]
    typer.echo(f"task: {dataset.task} ({reason})", err=True)  # standard error: --json output stays clean
    return dataset


# ---------------------------------------------------------------------------------------------- commands


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


@app.command()
@user_errors
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
          workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes (uvicorn workers).")] = 1,
          db: DbOption = None,
          log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "info") -> None:
    """Run the HTTP API with uvicorn (docs at /docs); settings from METALEARN_DB and METALEARN_API_*."""
    import os

    import uvicorn

    from metalearn.api.app import create_app
    from metalearn.settings import ServerSettings, database_url, model_key, model_key_path, redact_url

    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise MetalearnError(f"unknown log level {log_level!r}; use critical, error, warning, info or debug")
    settings = ServerSettings.from_env(db_url=database_url(db))  # bad settings: one line and exit 2, before uvicorn
    if not os.environ.get("METALEARN_MODEL_KEY", "").strip():
        # the key follows the environment, not --db: pin it for the worker processes (METALEARN_DB may change below)
        os.environ["METALEARN_MODEL_KEY_FILE"] = str(model_key_path())
    key = model_key()  # generated now if missing; a bad key is one line and exit 2
    typer.echo(f"metalearn API on http://{host}:{port} (docs at /docs), knowledge base {redact_url(settings.db_url)}, "
               f"data in {settings.data_dir}, models signed with the key in {key.source}", err=True)
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)
        return
    # several processes: uvicorn imports the app factory in each; seed and recover once here, and hand the
    # knowledge base to the workers through the one variable they read it from
    from metalearn import service

    kb = service.open_kb(settings.db_url, seed=settings.seed_kb)
    if settings.recover:
        service.recover_searches(kb)
    kb.dispose()
    os.environ.update(METALEARN_DB=settings.db_url, METALEARN_API_SEED="0", METALEARN_API_RECOVER="0")
    uvicorn.run("metalearn.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


@app.command()
@user_errors
def benchmark(
    suite: Annotated[str, typer.Option("--suite", help="OpenML suite id or alias, or a directory holding a "
                                                       "manifest.json (e.g. ../shared/datasets).")],
    strategies: Annotated[str, typer.Option(help="Comma-separated: warm, cold, random, hyperband, "
                                                 "successive-halving, flaml, flaml-zeroshot, "
                                                 "warm@<fraction>.")] = "warm,cold,random,flaml,flaml-zeroshot",
    budgets: Annotated[str, typer.Option(help="Comma-separated budgets in trials.")] = "1,2,5,10,20,50",
    seeds: Annotated[int, typer.Option(min=1, help="Outer splits (and search seeds) per dataset.")] = 3,
    jobs: Annotated[int, typer.Option(min=1, help="Datasets run in parallel (processes).")] = 1,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory (resumable).")] = Path(
        "benchmarks/results/warmstart"),
    db: Annotated[str | None, typer.Option("--db", help="Knowledge base to benchmark against; it is copied, never "
                                                        "written (default: the shipped seed snapshot).")] = None,
    max_rows: Annotated[int, typer.Option(min=20, help="Stratified row cap of the train part.")] = 2000,
    folds: Annotated[int, typer.Option(min=2, help="CV folds inside the train part.")] = 3,
    kb_fractions: Annotated[str, typer.Option(help="Knowledge-base fractions for the size curve (warm@f); "
                                                   "empty for none.")] = "0.1,0.25,0.5,1.0",
    kb_fraction_seeds: Annotated[int | None, typer.Option(min=1, help="Run the size curve on the first N seeds "
                                                                      "only (default: every seed).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N datasets.")] = None,
    shuffle: Annotated[bool, typer.Option(help="Fixed random dataset order, so --limit N is a random "
                                               "sample (growing N keeps the earlier ones).")] = False,
    trial_time_limit: Annotated[float, typer.Option(help="Seconds allowed per trial.")] = 60.0,
    cache_dir: Annotated[Path | None, typer.Option(help="OpenML cache directory.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    report_only: Annotated[bool, typer.Option(help="Run nothing: rewrite summary, report and plots from the "
                                                   "datasets already complete (partial results).")] = False,
) -> None:
    """Offline benchmark of warm vs cold vs random search (and FLAML); see benchmarks/README.md."""
    from metalearn.benchmark import BenchmarkConfig, parse_budgets, parse_fractions, parse_strategies, run_benchmark

    config = BenchmarkConfig(
        suite=suite, strategies=parse_strategies(strategies), budgets=parse_budgets(budgets), seeds=seeds,
        jobs=jobs, output=str(output), db=db, max_rows=max_rows, folds=folds,
        kb_fractions=parse_fractions(kb_fractions), limit=limit, shuffle=shuffle, trial_time_limit=trial_time_limit,
        cache_dir=str(cache_dir) if cache_dir else None, kb_fraction_seeds=kb_fraction_seeds)
    summary = run_benchmark(config, echo=lambda text: typer.echo(text, err=True),
                            progress=progress and sys.stderr.isatty(), report_only=report_only)
    typer.echo(f"report: {Path(config.output) / 'report.md'}")
    for target in summary["targets"].values():
        state = {True: "met", False: "NOT met", None: "n/a"}[target["met"]]
        typer.echo(f"  {target['description']}: {state}")


# ---------------------------------------------------------------------------------------------- kb


@kb_app.command("init")
@user_errors
@kb_errors
def kb_init(db: DbOption = None,
            seed: Annotated[bool, typer.Option(help="Load the shipped seed knowledge base.")] = True) -> None:
    """Create the knowledge base (and load the shipped seed into it when it is empty)."""
    from metalearn.knowledge_base import KnowledgeBase
    from metalearn.knowledge_base.snapshot import ensure_seeded

    kb = KnowledgeBase(db)
    loaded = ensure_seeded(kb) if seed else None
    stats = kb.stats()
    typer.echo(f"knowledge base at {_shown(kb.url)}: {stats['datasets']} datasets, {stats['runs']} runs"
               + (f" (loaded seed {loaded})" if loaded else ""))


@kb_app.command("stats")
@user_errors
@kb_errors
def kb_stats(db: DbOption = None, json_: JsonOption = False) -> None:
    """Counts of datasets, runs and configurations, by source."""
    stats = _kb(db).stats()
    if json_:
        _print_json(stats)
        return
    typer.echo(f"datasets: {stats['datasets']} ({stats['datasets_with_metafeatures']} with meta-features, "
               f"{stats['datasets_linked_to_openml']} linked to OpenML)")
    typer.echo(f"runs: {stats['runs']}  configurations: {stats['configurations']}  searches: {stats['searches']}")
    for source, counts in sorted(stats["by_source"].items()):
        typer.echo(f"  {source}: {counts['datasets']} datasets, {counts['runs']} runs")


@kb_app.command("upgrade")
@user_errors
@kb_errors
def kb_upgrade(db: DbOption = None) -> None:
    """Apply pending schema migrations (Alembic) to the knowledge base, keeping its data."""
    from metalearn.knowledge_base import KnowledgeBase

    kb = KnowledgeBase(db, create=False)
    before, after = kb.upgrade()
    typer.echo(f"knowledge base at {_shown(kb.url)}: schema {before or 'empty'} -> {after}")


@kb_app.command("seed")
@user_errors
@kb_errors
def kb_seed(
    manifest: Annotated[Path | None, typer.Option(help="A manifest.json (or its directory).")] = None,
    openml_suite: Annotated[str | None, typer.Option(help="OpenML suite id or alias.")] = None,
    openml_datasets: Annotated[list[int] | None, typer.Option(help="OpenML dataset ids (repeat the option).")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Cold SMAC trials per dataset.")] = 60,
    folds: Annotated[int, typer.Option(min=2)] = 3,
    max_rows: Annotated[int, typer.Option(min=50, help="Stratified row cap for the trials.")] = 2000,
    trial_time_limit: Annotated[float, typer.Option(help="Seconds allowed per trial.")] = 60.0,
    seed: int = 0,
    cross_evaluate: Annotated[int, typer.Option(min=0, help="Top configurations per dataset to evaluate on "
                                                             "every other dataset.")] = 0,
    jobs: Annotated[int, typer.Option(min=1, help="Datasets seeded in parallel.")] = 1,
    cache_dir: Annotated[Path | None, typer.Option(help="OpenML cache directory.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N datasets.")] = None,
    db: DbOption = None,
) -> None:
    """Seed the knowledge base from OpenML or a manifest directory (resumable, parallel)."""
    from metalearn import seeding
    from metalearn.knowledge_base import KnowledgeBase

    sources: list[seeding.DatasetSource] = []
    cache = str(cache_dir) if cache_dir else None
    if manifest is not None:
        sources += seeding.manifest_sources(str(manifest))
    if openml_suite is not None:
        sources += seeding.openml_suite_sources(openml_suite, cache)
    if openml_datasets:
        sources += seeding.openml_dataset_sources(openml_datasets, cache)
    if not sources:
        raise MetalearnError("nothing to seed: give --manifest, --openml-suite or --openml-datasets")
    sources = sources[:limit] if limit else sources
    protocol = seeding.SeedProtocol(n_trials=trials, folds=folds, max_rows=max_rows,
                                    trial_time_limit=trial_time_limit, seed=seed, cross_evaluate=cross_evaluate)
    url = KnowledgeBase(db).url

    def report(summary: dict) -> None:
        if summary.get("status") != "done":
            typer.echo(f"{summary['key']}: {summary['status']} ({summary.get('error')})")
        elif "trials" in summary:
            best = summary.get("best_score")
            typer.echo(f"{summary['dataset']}: {summary['trials']} trials (+{summary['new_trials']}), best "
                       f"{best if best is None else round(best, 4)} {summary.get('best_algorithm')}, "
                       f"{summary['seconds']:.0f} s")
        else:
            typer.echo(f"{summary['dataset']}: cross-evaluated +{summary['new_trials']}, {summary['seconds']:.0f} s")

    outcome = seeding.seed(sources, url, protocol, jobs=jobs, report=report)
    done = sum(1 for s in outcome["datasets"] if s.get("status") == "done")
    typer.echo(f"seeded {done}/{len(sources)} datasets into {_shown(url)}")


@kb_app.command("export")
@user_errors
@kb_errors
def kb_export(output: Path, db: DbOption = None) -> None:
    """Write a portable snapshot (meta-features, configurations, runs; no raw data)."""
    from metalearn.knowledge_base import KnowledgeBase
    from metalearn.knowledge_base.snapshot import export_snapshot

    counts = export_snapshot(KnowledgeBase(db), output)
    typer.echo(f"wrote {output}: {counts['datasets']} datasets, {counts['configurations']} configurations, "
               f"{counts['runs']} runs, {counts['bytes'] / 2**20:.2f} MiB")


@kb_app.command("import")
@user_errors
@kb_errors
def kb_import(snapshot: Path, db: DbOption = None) -> None:
    """Merge a snapshot into the knowledge base (idempotent)."""
    from metalearn.knowledge_base import KnowledgeBase
    from metalearn.knowledge_base.snapshot import import_snapshot

    counts = import_snapshot(KnowledgeBase(db), snapshot)
    typer.echo(f"imported {counts['runs']} new runs from {snapshot}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
