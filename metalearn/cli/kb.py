"""``metalearn kb ...``: create, inspect, upgrade, export and import the knowledge base (``kb seed`` is in
:mod:`metalearn.cli.seed`: it loads the whole search stack). Each command imports the knowledge base when it runs,
not for its ``--help``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from metalearn.cli.common import DbOption, JsonOption, _kb, _print_json, _shown, kb_errors, user_errors

commands = typer.Typer()


@commands.command("init")
@user_errors
@kb_errors
def kb_init(db: DbOption = None,
            seed: Annotated[bool, typer.Option(help="Load the shipped seed knowledge base.")] = True) -> None:
    """Create the knowledge base (and load the shipped seed into it when it is empty)."""
    from metalearn.knowledge_base import KnowledgeBase, snapshot

    kb = KnowledgeBase(db)
    loaded = snapshot.ensure_seeded(kb) if seed else None
    stats = kb.stats()
    typer.echo(f"knowledge base at {_shown(kb.url)}: {stats['datasets']} datasets, {stats['runs']} runs"
               + (f" (loaded seed {loaded})" if loaded else ""))


@commands.command("stats")
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


@commands.command("upgrade")
@user_errors
@kb_errors
def kb_upgrade(db: DbOption = None) -> None:
    """Apply pending schema migrations (Alembic) to the knowledge base, keeping its data."""
    from metalearn.knowledge_base import KnowledgeBase

    kb = KnowledgeBase(db, create=False)
    before, after = kb.upgrade()
    typer.echo(f"knowledge base at {_shown(kb.url)}: schema {before or 'empty'} -> {after}")


@commands.command("export")
@user_errors
@kb_errors
def kb_export(output: Path, db: DbOption = None) -> None:
    """Write a portable snapshot (meta-features, configurations, runs; no raw data)."""
    from metalearn.knowledge_base import KnowledgeBase, snapshot

    counts = snapshot.export_snapshot(KnowledgeBase(db), output)
    typer.echo(f"wrote {output}: {counts['datasets']} datasets, {counts['configurations']} configurations, "
               f"{counts['runs']} runs, {counts['bytes'] / 2**20:.2f} MiB")


@commands.command("import")
@user_errors
@kb_errors
def kb_import(snapshot: Path, db: DbOption = None) -> None:
    """Merge a snapshot into the knowledge base (idempotent)."""
    from metalearn.knowledge_base import KnowledgeBase
    from metalearn.knowledge_base import snapshot as snapshots

    counts = snapshots.import_snapshot(KnowledgeBase(db), snapshot)
    typer.echo(f"imported {counts['runs']} new runs from {snapshot}")
