"""The benchmark's scratch knowledge base: a copy of the source, made once per output directory.

Runs go to ``output/kb.sqlite``; the recommender only reads the datasets that were in the knowledge
base when the copy was made (``output/kb.json``), so what the benchmark writes never feeds later
queries. The source (``--db`` or the shipped seed snapshot) is never written to. The reference datasets
are those of the run's task (the recommender never mixes tasks either).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from metalearn.benchmark.checkpoint import now
from metalearn.errors import MetalearnError
from metalearn.knowledge_base import KnowledgeBase, snapshot
from metalearn.knowledge_base.engine import is_sqlite
from metalearn.metafeatures import EXTRACTOR_VERSIONS
from metalearn.protocol import DEFAULT_METRICS
from metalearn.settings import database_url
from metalearn.space import compatible_space_versions

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ReferenceDataset:
    """A dataset of the knowledge base as it was when the benchmark's scratch copy was made."""

    id: int
    name: str
    family: str
    content_hash: str


def sqlite_copy(source: Path, target: Path) -> None:
    """Consistent copy of a (possibly WAL-mode) SQLite file, without writing to the source."""
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error:
        src = sqlite3.connect(str(source))
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def reference_datasets(kb: KnowledgeBase, task: str = "classification") -> list[ReferenceDataset]:
    """Datasets of ``task`` usable by the recommender: the task's current meta-features and successful runs
    (its default metric) in its current space."""
    with_runs = set(kb.performance(DEFAULT_METRICS[task], compatible_space_versions(task))["dataset_id"].astype(int))
    with_mf = set(kb.metafeature_matrix(EXTRACTOR_VERSIONS[task]).index.astype(int))
    return [ReferenceDataset(d.id, d.name, d.family or d.name, d.content_hash) for d in kb.datasets()
            if d.id in with_runs and d.id in with_mf and d.source != "benchmark" and d.task == task]


def _import(snapshot_file: Path, target: Path) -> None:
    kb = KnowledgeBase(str(target))
    try:
        snapshot.import_snapshot(kb, snapshot_file)
    finally:
        kb.dispose()


def _copy_source(db: str | None, output: Path, partial: Path) -> str:
    """Copy the source knowledge base to ``partial``; returns a description of the source."""
    if db is None:
        seed = snapshot.seed_path()
        if not seed.is_file():
            raise MetalearnError(f"no --db given and the shipped seed snapshot {seed.name} is not built yet; "
                                 "pass --db with a knowledge base (e.g. one made by `metalearn kb seed`)")
        _import(seed, partial)
        return f"seed snapshot {seed.name}"
    source_url = database_url(db)
    if is_sqlite(source_url):
        path = Path(make_url(source_url).database or "")
        if not path.is_file():
            raise MetalearnError(f"knowledge base {path} not found")
        sqlite_copy(path, partial)
    else:
        exported = output / "kb-source.json.gz"
        snapshot.export_snapshot(KnowledgeBase(db, create=False), exported)
        _import(exported, partial)
    return db


def prepare_knowledge_base(db: str | None, output: Path, echo: Echo = lambda _: None, task: str = "classification"
                           ) -> tuple[str, list[ReferenceDataset]]:
    """The scratch knowledge base ``output/kb.sqlite`` (made once) and its frozen reference datasets of ``task``.

    ``db`` (a SQLite file is copied with SQLite's backup API; any other URL goes through a snapshot) or,
    without ``db``, the shipped seed snapshot is the source. The source is never written to.
    """
    target = output / "kb.sqlite"
    reference_file = output / "kb.json"
    url = f"sqlite:///{target.resolve()}"
    if target.is_file() and reference_file.is_file():
        items = json.loads(reference_file.read_text())["datasets"]
        return url, [ReferenceDataset(**item) for item in items]
    partial = output / "kb.sqlite.partial"
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm"), target, Path(f"{target}-wal"),
                  Path(f"{target}-shm")):
        stale.unlink(missing_ok=True)
    source = _copy_source(db, output, partial)
    kb = KnowledgeBase(str(partial))
    try:
        reference = reference_datasets(kb, task)
    finally:
        kb.dispose()
    if not reference:
        echo(f"warning: the knowledge base from {source} has no {task} dataset with meta-features and runs; "
             "warm will start from library defaults")
    reference_file.write_text(json.dumps({"source": str(source), "task": task, "created": now(),
                                          "datasets": [asdict(r) for r in reference]}, indent=1))
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(target)
    echo(f"scratch knowledge base {target}: copy of {source}, {len(reference)} {task} reference datasets")
    return url, reference
