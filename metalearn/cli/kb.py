"""``metalearn kb ...``: create, inspect, upgrade, seed, export and import the knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metalearn.cli.common import DbOption, JsonOption, _kb, _print_json, _shown, kb_app, kb_errors, user_errors
from metalearn.errors import MetalearnError


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
    pool_size: Annotated[int, typer.Option(min=0, help="Grow the cross-evaluation pool with the datasets' next "
                                                        "best configurations to this many.")] = 0,
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
                                    trial_time_limit=trial_time_limit, seed=seed, cross_evaluate=cross_evaluate,
                                    pool_size=pool_size)
    kb = KnowledgeBase(db)  # creates the schema; closed before any worker starts (see seeding._map)
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
