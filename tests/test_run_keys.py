"""Run keys that survive a new space version and a merge: shipped snapshots, migration 0007, seeding, conversion."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select
from test_seeding import _manifest

from metalearn import seeding
from metalearn.knowledge_base import KnowledgeBase, RunRecord, migrate
from metalearn.knowledge_base.models import ConfigurationRow, DatasetRow, RunRow, utcnow
from metalearn.knowledge_base.run_keys import convert_legacy_key, is_legacy_key, seed_prefix, xeval_key
from metalearn.knowledge_base.snapshot import import_snapshot, seed_path
from metalearn.settings import database_url
from metalearn.space import config_hash

CHECKPOINT = Path(__file__).resolve().parents[1] / "knowledge_base" / "seed" / "build" / "kb-v2-checkpoint.json.gz"
H = "9fcc23cd70cb0978"  # a dataset's content hash, cut to 16 characters
C = "0123abcd" * 8  # a configuration hash


def _payload(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


# ---------------------------------------------------------------- (d) the conversion


@pytest.mark.parametrize(("key", "expected"), [
    (f"seed:{H}:0:17", f"seed:2026.11-1:{H}:0:17"),
    (f"seed:{H}:-3:1", f"seed:2026.11-1:{H}:-3:1"),
    (f"xeval:{H}:162", f"xeval:{H}:{C[:16]}"),
])
def test_legacy_keys_are_converted(key: str, expected: str) -> None:
    assert is_legacy_key(key)
    assert convert_legacy_key(key, "2026.11-1", C) == expected
    assert convert_legacy_key(expected, "2026.11-2", "f" * 64) == expected  # converting again changes nothing


@pytest.mark.parametrize("key", [
    f"seed:2026.11-2:{H}:0:3",  # current formats
    f"xeval:{H}:abcdef0123456789",
    f"xeval:{H}:1234567890123456",  # a configuration hash16 of digits only is not a configuration id
    f"snapshot:{H}:42",  # exported runs without a key
    "bench:credit-g:0:warm:5", "k1", f"seed:{H}:0", f"seed:{H[:15]}:0:1", f"xeval:{H}:12a", "", None,
])
def test_other_keys_are_left_alone(key: str | None) -> None:
    assert not is_legacy_key(key)
    assert convert_legacy_key(key, "2026.11-1", C) == key


# ---------------------------------------------------------------- (a) the shipped seed: the v1 and v2 builds merged


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KnowledgeBase, list[dict]]]:
    """A knowledge base holding the shipped seed (v1 and v2 builds merged), then the v2 checkpoint on top."""
    kb = KnowledgeBase(str(tmp_path_factory.mktemp("merged") / "kb.sqlite"))
    yield kb, [import_snapshot(kb, seed_path()), import_snapshot(kb, CHECKPOINT)]
    kb.dispose()


def test_the_shipped_seed_keeps_every_run_of_both_builds(merged: tuple[KnowledgeBase, list[dict]]) -> None:
    kb, imported = merged
    seed, v2 = _payload(seed_path()), _payload(CHECKPOINT)
    seed_keys, v2_keys = {k for *_, k in seed["runs"]}, {k for *_, k in v2["runs"]}
    # importing the checkpoint adds only what the seed does not hold (by key), never a duplicate
    assert imported == [{**imported[0], "runs": len(seed["runs"])}, {**imported[1], "runs": len(v2_keys - seed_keys)}]
    runs = kb.runs_frame()
    assert len(runs) == len(seed_keys | v2_keys) and runs["run_key"].is_unique
    assert not runs["run_key"].map(is_legacy_key).any()
    # the two builds share datasets (the same seed and trial numbers) but no run: a dataset of both has its 60
    # trials once per space version
    versions = {v: {k.split(":")[2] for k in seed_keys if k.startswith(f"seed:{v}:")}
                for v in ("2026.11-1", "2026.11-2")}
    shared = versions["2026.11-1"] & versions["2026.11-2"]
    assert len(shared) > 100
    dataset = next(d for d in kb.datasets() if d.content_hash.startswith(sorted(shared)[0]))
    for version in versions:
        assert len(kb.run_keys(seed_prefix(version, dataset.content_hash, 0))) == 60
    # a cross-evaluation key names the run's own configuration by its hash
    xeval = runs[runs["run_key"].str.startswith("xeval:")]
    hashes = kb.configuration_hashes(xeval["configuration_id"].unique())
    contents = {d.id: d.content_hash for d in kb.datasets()}
    assert len(xeval) == sum(k.startswith("xeval:") for k in seed_keys | v2_keys)
    assert all(key == xeval_key(contents[d], hashes[c])
               for key, d, c in zip(xeval["run_key"], xeval["dataset_id"], xeval["configuration_id"], strict=True))
    # importing the checkpoint again adds nothing
    assert import_snapshot(kb, CHECKPOINT)["runs"] == 0


# ---------------------------------------------------------------- (b) migration 0007 of a stored knowledge base


def _legacy_kb(url: str) -> None:
    """A knowledge base at revision 0006 with legacy keys (of two space versions) and other keys."""
    engine = create_engine(url)
    migrate.upgrade(engine, "0006")
    now = utcnow()
    configs = {"v1": ("2026.11-1", {"classifier": "gaussian_nb"}), "v2": ("2026.11-2", {"classifier": "gaussian_nb"})}
    with engine.begin() as conn:
        dataset_id = conn.execute(insert(DatasetRow).returning(DatasetRow.id), {
            "name": "d", "content_hash": H + "0" * 48, "source": "user", "n_rows": 10, "n_features": 2,
            "n_classes": 2, "n_categorical": 0, "task": "classification", "created_at": now}).scalar_one()
        ids = {name: conn.execute(insert(ConfigurationRow).returning(ConfigurationRow.id), {
            "space_version": version, "algorithm": "gaussian_nb", "task": "classification",
            "config_json": json.dumps(config), "config_hash": config_hash(config, version), "created_at": now,
        }).scalar_one() for name, (version, config) in configs.items()}
        keys = [(f"seed:{H}:0:1", "v1"), (f"seed:{H}:0:2", "v2"), (f"xeval:{H}:{ids['v1']}", "v1"),
                (f"xeval:{H}:999", "v2"),  # imported: the id is another database's
                (f"seed:2026.11-2:{H}:0:3", "v2"), (f"snapshot:{H}:7", "v1"), ("bench:x:0:warm:1", "v1"),
                (None, "v1"),
                (f"xeval:{H}:555", "v2"),  # the same run under a second foreign id: stays legacy
                (f"seed:{H}:0:3", "v2")]  # its new key is stored already: stays legacy
        keys += [(f"seed:{H}:1:{trial}", "v1") for trial in range(1, 5201)]  # more than one batch
        conn.execute(insert(RunRow), [
            {"dataset_id": dataset_id, "configuration_id": ids[name], "metric": "balanced_accuracy", "score": 0.5,
             "seconds": 1.0, "status": "success", "budget": 1.0, "origin": "test", "run_key": key, "created_at": now}
            for key, name in keys])
    engine.dispose()


def _keys(kb: KnowledgeBase) -> list[str | None]:
    with kb.reading() as session:
        return list(session.scalars(select(RunRow.run_key).order_by(RunRow.id)))


def test_migration_converts_legacy_keys_in_place(kb_path: str) -> None:
    url = database_url(kb_path)
    _legacy_kb(url)
    kb = KnowledgeBase(kb_path)  # opening migrates
    assert migrate.current_revision(kb.engine) == migrate.head_revision()
    v1 = config_hash({"classifier": "gaussian_nb"}, "2026.11-1")[:16]
    v2 = config_hash({"classifier": "gaussian_nb"}, "2026.11-2")[:16]
    keys = _keys(kb)
    assert keys[:10] == [f"seed:2026.11-1:{H}:0:1", f"seed:2026.11-2:{H}:0:2", f"xeval:{H}:{v1}", f"xeval:{H}:{v2}",
                         f"seed:2026.11-2:{H}:0:3", f"snapshot:{H}:7", "bench:x:0:warm:1", None, f"xeval:{H}:555",
                         f"seed:{H}:0:3"]
    assert keys[10:] == [f"seed:2026.11-1:{H}:1:{trial}" for trial in range(1, 5201)]
    kb.dispose()
    # running the migration again changes nothing
    engine = create_engine(url)
    migrate.stamp(engine, "0006")
    engine.dispose()
    again = KnowledgeBase(kb_path)
    assert migrate.current_revision(again.engine) == migrate.head_revision() and _keys(again) == keys
    again.dispose()


# ---------------------------------------------------------------- (c) seeding resumes with the new keys


def test_seeding_resumes_with_the_new_keys(tmp_path: Path) -> None:
    bc, iris = seeding.manifest_sources(str(_manifest(tmp_path)))[:2]
    dataset, db = bc.loader(), str(tmp_path / "kb.sqlite")
    kb = KnowledgeBase(db)
    # the same dataset seeded in the previous space version does not count as done
    old = seed_prefix("2026.11-1", dataset.content_hash, 0)
    kb.record_runs([RunRecord(dataset_id=kb.register(dataset), config={"classifier": "gaussian_nb"},
                              algorithm="gaussian_nb", metric="balanced_accuracy", status="success", score=0.5,
                              seconds=0.1, origin="smac", run_key=f"{old}{trial}", space_version="2026.11-1")
                    for trial in (1, 2, 3)])
    protocol = seeding.SeedProtocol(n_trials=2, folds=2, max_rows=120, trial_time_limit=60)
    prefix = seeding.seed_key(dataset, protocol)
    assert prefix == seed_prefix("2026.11-2", dataset.content_hash, 0)
    first = seeding.seed_one(bc, db, protocol)
    assert first["new_trials"] == 2 and kb.run_keys(prefix) == {f"{prefix}1", f"{prefix}2"}
    more = seeding.SeedProtocol(n_trials=3, folds=2, max_rows=120, trial_time_limit=60)
    second = seeding.seed_one(bc, db, more)
    assert second["new_trials"] == 1 and kb.run_keys(prefix) == {f"{prefix}{n}" for n in (1, 2, 3)}
    assert seeding.seed_one(bc, db, more)["new_trials"] == 0 and len(kb.run_keys(old)) == 3
    # cross-evaluation keys name the configuration by its hash; a second pass writes nothing
    config_id = int(kb.runs_frame(run_key_prefix=prefix)["configuration_id"].iloc[0])
    assert seeding.cross_evaluate_one(iris, db, more, [config_id])["new_trials"] == 1
    key = xeval_key(iris.loader().content_hash, kb.configuration_hashes([config_id])[config_id])
    assert kb.run_keys("xeval:") == {key}
    assert seeding.cross_evaluate_one(iris, db, more, [config_id])["new_trials"] == 0
    kb.dispose()
