"""Portable snapshots of a knowledge base: meta-features, configurations and runs (no raw data).

The shipped seed (``knowledge_base/seed/seed-kb.json.gz``) is such a snapshot; it is loaded into
an empty knowledge base by ``metalearn kb init`` and on first use.
"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from metalearn.errors import KnowledgeBaseError
from metalearn.knowledge_base import seed_cache
from metalearn.knowledge_base.models import ConfigurationRow, DatasetRow, MetaFeatureRow, RunRow, SearchRow
from metalearn.knowledge_base.repository import KnowledgeBase
from metalearn.knowledge_base.run_keys import convert_legacy_key, snapshot_key
from metalearn.space import canonical_json

FORMAT = "metalearn-kb/1"
SEED_NAME = "seed-kb.json.gz"
DATASET_FIELDS = ("name", "content_hash", "source", "openml_id", "family", "target", "n_rows", "n_features",
                  "n_classes", "n_categorical", "task")
RUN_FIELDS = ("dataset", "configuration", "metric", "score", "score_std", "seconds", "status", "budget", "origin",
              "seed", "run_key")

log = logging.getLogger(__name__)


def seed_path() -> Path:
    """Location of the shipped seed snapshot (inside the installed package)."""
    return Path(str(resources.files("metalearn.knowledge_base") / "seed" / SEED_NAME))


def export_snapshot(kb: KnowledgeBase, path: str | Path, *, origins: tuple[str, ...] | None = None) -> dict:
    """Write ``kb`` (optionally only runs of some origins) to a gzipped JSON snapshot; returns counts."""
    with kb.reading() as session:
        datasets = session.scalars(select(DatasetRow).order_by(DatasetRow.id)).all()
        index = {d.id: i for i, d in enumerate(datasets)}
        mfs = session.scalars(select(MetaFeatureRow).order_by(MetaFeatureRow.id)).all()
        configs = session.scalars(select(ConfigurationRow).order_by(ConfigurationRow.id)).all()
        cindex = {c.id: i for i, c in enumerate(configs)}
        query = select(RunRow).order_by(RunRow.id)
        if origins:
            query = query.where(RunRow.origin.in_(origins))
        runs = session.scalars(query).all()
    payload = {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "datasets": [{f: getattr(d, f) for f in DATASET_FIELDS} for d in datasets],
        "metafeatures": [{"dataset": index[m.dataset_id], "extractor": m.extractor, "seconds": m.seconds,
                          "values": m.values} for m in mfs],
        "configurations": [{"space_version": c.space_version, "algorithm": c.algorithm, "task": c.task,
                            "config": json.loads(c.config_json), "hash": c.config_hash} for c in configs],
        "run_fields": list(RUN_FIELDS),
        "runs": [[index[r.dataset_id], cindex[r.configuration_id], r.metric,
                  None if r.score is None else round(r.score, 6),
                  None if r.score_std is None else round(r.score_std, 6), round(r.seconds, 3), r.status,
                  r.budget, r.origin, r.seed, r.run_key or snapshot_key(d_hash, r.id)]
                 for r in runs for d_hash in [datasets[index[r.dataset_id]].content_hash]],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as handle:
        json.dump(payload, handle, separators=(",", ":"), allow_nan=False)
    return {"datasets": len(datasets), "configurations": len(configs), "runs": len(runs), "bytes": path.stat().st_size}


def import_snapshot(kb: KnowledgeBase, path: str | Path) -> dict:
    """Merge a snapshot into ``kb`` in one transaction (idempotent: runs are keyed).

    Legacy run keys of the snapshot are converted first (:func:`.run_keys.convert_legacy_key`, given the space
    version and hash of the run's configuration in the snapshot), so they deduplicate against the knowledge base's
    keys, which migration 0007 converted the same way.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            payload = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise KnowledgeBaseError(f"cannot read snapshot {path}: {exc}") from None
    if payload.get("format") != FORMAT:
        raise KnowledgeBaseError(f"{path} is not a metalearn knowledge-base snapshot")
    with kb.writing() as session:
        known = dict(session.execute(select(DatasetRow.content_hash, DatasetRow.id)).all())
        dataset_ids = []
        for d in payload["datasets"]:
            if d["content_hash"] not in known:
                row = DatasetRow(**d)
                session.add(row)
                session.flush()
                known[d["content_hash"]] = row.id
            dataset_ids.append(known[d["content_hash"]])
        have_mf = set(session.execute(select(MetaFeatureRow.dataset_id, MetaFeatureRow.extractor)).all())
        new_mf = [{"dataset_id": dataset_ids[m["dataset"]], "extractor": m["extractor"], "seconds": m["seconds"],
                   "values": m["values"]}
                  for m in payload["metafeatures"] if (dataset_ids[m["dataset"]], m["extractor"]) not in have_mf]
        if new_mf:
            session.execute(insert(MetaFeatureRow), new_mf)
        chash = dict(session.execute(select(ConfigurationRow.config_hash, ConfigurationRow.id)).all())
        new_configs = [c for c in payload["configurations"] if c["hash"] not in chash]
        if new_configs:
            session.execute(insert(ConfigurationRow), [
                {"space_version": c["space_version"], "algorithm": c["algorithm"],
                 "task": c.get("task", "classification"),
                 "config_json": canonical_json(c["config"]),
                 "config_hash": c["hash"]} for c in new_configs])
            chash = dict(session.execute(select(ConfigurationRow.config_hash, ConfigurationRow.id)).all())
        config_ids = [chash[c["hash"]] for c in payload["configurations"]]
        fields = payload.get("run_fields", list(RUN_FIELDS))
        keys = set(session.scalars(select(RunRow.run_key).where(RunRow.run_key.is_not(None))))
        rows: list[dict[str, Any]] = []
        for values in payload["runs"]:
            run = dict(zip(fields, values, strict=True))
            config = payload["configurations"][run["configuration"]]
            run["run_key"] = convert_legacy_key(run["run_key"], config["space_version"], config["hash"])
            if run["run_key"] in keys:
                continue
            keys.add(run["run_key"])
            run["dataset_id"] = dataset_ids[run.pop("dataset")]
            run["configuration_id"] = config_ids[run.pop("configuration")]
            rows.append(run)
        if rows:
            session.execute(insert(RunRow), rows)
    return {"datasets": len(payload["datasets"]), "runs": len(rows), "file": str(path)}


def ensure_seeded(kb: KnowledgeBase) -> str | None:
    """Load the shipped seed into ``kb`` if ``kb`` holds no dataset yet; returns the seed file loaded."""
    path = seed_path()
    if not path.is_file():
        return None
    with kb.reading() as session:
        if session.scalar(select(DatasetRow.id).limit(1)) is not None:
            return None
        if session.scalar(select(SearchRow.id).limit(1)) is not None:
            return None
    if not seed_cache.restore(kb, path):  # a file copy when this machine seeded an SQLite file before
        import_snapshot(kb, path)
        seed_cache.store(kb, path)
    return path.name


def open_kb(db: str | None = None, *, seed: bool = True) -> KnowledgeBase:
    """The knowledge base at ``db`` (default ``METALEARN_DB``), with the shipped seed loaded when empty."""
    kb = KnowledgeBase(db)
    if seed:
        loaded = ensure_seeded(kb)
        if loaded:
            log.info("loaded the shipped knowledge base %s", loaded)
    return kb
