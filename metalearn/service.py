"""The use cases every front end shares: prepare -> recommend -> search -> predict -> report.

The CLI, the HTTP API and the seeding/benchmark jobs call these functions instead of wiring the
knowledge base, the search and the model files themselves, so each use case has one implementation.
Defaults come from :data:`metalearn.protocol.DEFAULTS`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from metalearn.datasets import Dataset, load_file, read_table
from metalearn.errors import MetalearnError, NotFound
from metalearn.knowledge_base import KnowledgeBase
from metalearn.knowledge_base.snapshot import ensure_seeded
from metalearn.metafeatures import MetaFeatures, extract_metafeatures
from metalearn.model_io import ModelBundle
from metalearn.protocol import DEFAULTS
from metalearn.report import ModelReport, report_for_model, report_for_search
from metalearn.warmstart.recommend import RecommendationReport
from metalearn.warmstart.result import SearchResult, Trial, trials_from_runs
from metalearn.warmstart.search import SearchSettings, TrialCallback, WarmStartSearch

log = logging.getLogger(__name__)


def open_kb(db: str | None = None, *, seed: bool = True) -> KnowledgeBase:
    """The knowledge base at ``db`` (default ``METALEARN_DB``), with the shipped seed loaded when empty."""
    kb = KnowledgeBase(db)
    if seed:
        loaded = ensure_seeded(kb)
        if loaded:
            log.info("loaded the shipped knowledge base %s", loaded)
    return kb


def load_dataset(path: str | Path, target: str, name: str | None = None, task: str | None = None) -> Dataset:
    """A validated dataset from a CSV / parquet / ARFF file (its task detected from the target unless given)."""
    return load_file(path, target, name, task=task)


def metafeatures(dataset: Dataset, seed: int = DEFAULTS.seed) -> MetaFeatures:
    """The dataset's meta-feature vector (not stored)."""
    return extract_metafeatures(dataset.X, dataset.y, dataset.categorical, seed=seed, task=dataset.task)


def recommend(kb: KnowledgeBase, dataset: Dataset, *, top: int = DEFAULTS.top, k: int = DEFAULTS.k,
              metric: str | None = None) -> RecommendationReport:
    """Register the dataset with its meta-features and recommend pipelines with their evidence."""
    engine = WarmStartSearch(kb, SearchSettings(metric=metric, k=k))
    _, features = engine.prepare(dataset)
    return engine.recommend(dataset, features, top)


def search(kb: KnowledgeBase, dataset: Dataset, settings: SearchSettings, *, callback: TrialCallback | None = None,
           should_stop: Callable[[], bool] | None = None, output: str | Path | None = None) -> SearchResult:
    """Run a search (every trial stored), and save its model bundle to ``output`` when given."""
    result = WarmStartSearch(kb, settings).run(dataset, callback=callback, should_stop=should_stop)
    if output is not None and result.model is not None:
        result.save_model(output)
    return result


@dataclass
class StoredSearch:
    """A search as the knowledge base holds it: its row and its trials (numbered as SearchResult numbers them)."""

    row: dict[str, Any]
    trials: list[Trial]


def stored_search(kb: KnowledgeBase, search_id: int) -> StoredSearch:
    """The stored row and trials of a search; :class:`NotFound` when there is none."""
    try:
        row = kb.search(search_id)
    except MetalearnError:
        raise NotFound(f"no search with id {search_id}") from None
    return StoredSearch(row, trials_from_runs(kb.runs_frame(search_id=search_id), started=row["started_at"]))


def predict(model: str | Path | ModelBundle, frame: pd.DataFrame | str | Path, *,
            trust_unsigned: bool = False) -> pd.DataFrame:
    """Predictions of a saved model for a table (a frame or a file); columns it does not use are ignored.

    A model file must carry a valid signature unless ``trust_unsigned`` (see :meth:`ModelBundle.load`).
    """
    bundle = model if isinstance(model, ModelBundle) else ModelBundle.load(model, trust_unsigned=trust_unsigned)
    table = frame if isinstance(frame, pd.DataFrame) else read_table(frame)
    return pd.DataFrame({"prediction": bundle.predict(table)})


def report(source: str, data: str | Path, *, target: str | None = None, db: str | None = None,
           sensitive: Sequence[str] = (), trust_unsigned: bool = False, **options: Any) -> ModelReport:
    """Model report of a saved model file (signed, unless ``trust_unsigned``) or of a search in the knowledge
    base, evaluated on ``data``."""
    frame, path = read_table(data), Path(source)
    options = {"sensitive": list(sensitive) or None, **options}
    if path.is_file():
        bundle = ModelBundle.load(path, trust_unsigned=trust_unsigned)
        kb = KnowledgeBase(db) if db is not None and bundle.metadata.get("search_id") is not None else None
        return report_for_model(bundle.model, bundle.metadata, frame, target=target, kb=kb, name=Path(data).stem,
                                **options)
    if source.isdigit():
        return report_for_search(KnowledgeBase(db), int(source), frame, target=target, name=Path(data).stem,
                                 **options)
    raise MetalearnError(f"{source!r} is neither a model file nor a search id")


STOPPED_RUNNING = "the server stopped while the search was running; its finished trials are kept"
STOPPED_QUEUED = "the server stopped before the search started"


def recover_searches(kb: KnowledgeBase) -> int:
    """Mark searches a stopped server left queued or running as failed (their finished trials stay)."""
    return kb.fail_running_searches(STOPPED_RUNNING, STOPPED_QUEUED)
