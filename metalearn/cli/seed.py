"""``metalearn kb seed``: seed the knowledge base (its own module: it imports the whole search stack, which the
other ``kb`` commands do not need; when it runs, not for its ``--help``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metalearn.cli.common import DbOption, _shown, kb_errors, user_errors
from metalearn.defaults import (
    SEED_CROSS_EVALUATE,
    SEED_FOLDS,
    SEED_MAX_ROWS,
    SEED_POOL_SIZE,
    SEED_TRIAL_TIME_LIMIT,
    SEED_TRIALS,
)
from metalearn.errors import MetalearnError

commands = typer.Typer()


@commands.command("seed")
@user_errors
@kb_errors
def kb_seed(
    manifest: Annotated[Path | None, typer.Option(help="A manifest.json (or its directory).")] = None,
    openml_suite: Annotated[str | None, typer.Option(help="OpenML suite id or alias.")] = None,
    openml_datasets: Annotated[list[int] | None, typer.Option(help="OpenML dataset ids (repeat the option).")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Cold SMAC trials per dataset.")] = SEED_TRIALS,
    folds: Annotated[int, typer.Option(min=2)] = SEED_FOLDS,
    max_rows: Annotated[int, typer.Option(min=50, help="Stratified row cap for the trials.")] = SEED_MAX_ROWS,
    trial_time_limit: Annotated[float, typer.Option(help="Seconds allowed per trial.")] = SEED_TRIAL_TIME_LIMIT,
    seed: int = 0,
    cross_evaluate: Annotated[int, typer.Option(min=0, help="Top configurations per dataset to evaluate on "
                                                             "every other dataset.")] = SEED_CROSS_EVALUATE,
    pool_size: Annotated[int, typer.Option(min=0, help="Grow the cross-evaluation pool with the datasets' next "
                                                        "best configurations to this many.")] = SEED_POOL_SIZE,
    jobs: Annotated[int, typer.Option(min=1, help="Datasets seeded in parallel.")] = 1,
    cache_dir: Annotated[Path | None, typer.Option(help="OpenML cache directory.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N datasets.")] = None,
    db: DbOption = None,
) -> None:
    """Seed the knowledge base from OpenML or a manifest directory (resumable, parallel)."""
    from metalearn import knowledge_base, seeding

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
                                    trial_time_limit=trial_time_limit, seed=seed, cross_evaluate=cross_evaluate,
                                    pool_size=pool_size)
    kb = knowledge_base.KnowledgeBase(db)  # creates the schema; closed before any worker starts (see seeding._map)
    url = kb.url
    kb.dispose()

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
