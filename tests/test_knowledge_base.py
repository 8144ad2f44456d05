"""Knowledge base integrity: idempotent registration, atomic batches, concurrent writers, snapshots."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
from conftest import breast_cancer_frame, run_cli
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from metalearn.datasets import from_frame
from metalearn.errors import KnowledgeBaseError
from metalearn.knowledge_base import KnowledgeBase, RunRecord, migrate, seed_cache
from metalearn.knowledge_base.snapshot import ensure_seeded, export_snapshot, import_snapshot, seed_path


def _run(dataset_id: int, score: float | None = 0.9, status: str = "success", key: str | None = None,
         config: dict | None = None) -> RunRecord:
    return RunRecord(dataset_id=dataset_id, config=config or {"classifier": "gaussian_nb"}, algorithm="gaussian_nb",
                     metric="balanced_accuracy", status=status, score=score, seconds=0.1, origin="test", run_key=key)


def test_sqlite_file_created_in_wal_mode(tmp_path: Path) -> None:
    kb_path = str(tmp_path / "sub" / "kb.sqlite")
    kb = KnowledgeBase(kb_path)
    assert Path(kb_path).exists()
    with kb.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_same_data_is_one_dataset(kb: KnowledgeBase) -> None:
    frame = breast_cancer_frame(100)
    first = kb.register(from_frame(frame, "target", "first"))
    again = kb.register(from_frame(frame.copy(), "target", "renamed"))
    other = kb.register(from_frame(breast_cancer_frame(100, seed=1), "target"))
    assert first == again != other
    assert kb.stats()["datasets"] == 2


def test_failing_batch_leaves_no_partial_rows(kb: KnowledgeBase) -> None:
    dataset_id = kb.register(from_frame(breast_cancer_frame(60), "target"))
    kb.record_runs([_run(dataset_id)])
    with pytest.raises(KnowledgeBaseError):
        kb.record_runs([_run(dataset_id, config={"classifier": "lda"}), _run(dataset_id, score=None)])
    with pytest.raises(IntegrityError):  # foreign key violation on the second row rolls back the first
        kb.record_runs([_run(dataset_id, config={"classifier": "mlp"}), _run(dataset_id + 999)])
    stats = kb.stats()
    assert stats["runs"] == 1 and stats["configurations"] == 1


def test_run_keys_make_writes_idempotent(kb: KnowledgeBase) -> None:
    dataset_id = kb.register(from_frame(breast_cancer_frame(60), "target"))
    assert len(kb.record_runs([_run(dataset_id, key="k1"), _run(dataset_id, key="k2")])) == 2
    assert kb.record_runs([_run(dataset_id, key="k1"), _run(dataset_id, key="k3")]) != []
    assert kb.stats()["runs"] == 3
    assert kb.run_keys("k") == {"k1", "k2", "k3"}


def _writer(path: str, dataset_id: int, worker: int, n: int) -> None:
    kb = KnowledgeBase(path)
    for i in range(0, n, 10):
        kb.record_runs([_run(dataset_id, score=0.5, key=f"w{worker}-{j}", config={"classifier": "x", "i": j % 7})
                        for j in range(i, i + 10)])
    kb.dispose()


def test_two_processes_writing_at_once_lose_nothing(kb: KnowledgeBase, kb_path: str) -> None:
    dataset_id = kb.register(from_frame(breast_cancer_frame(60), "target"))
    ctx = mp.get_context("fork")  # a spawned child would spend seconds importing this module again
    procs = [ctx.Process(target=_writer, args=(kb_path, dataset_id, w, 200)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    stats = kb.stats()
    assert stats["runs"] == 400
    assert stats["configurations"] == 7  # shared configurations were not duplicated


def test_best_configurations_and_performance(kb: KnowledgeBase) -> None:
    dataset_id = kb.register(from_frame(breast_cancer_frame(60), "target"))
    kb.record_runs([_run(dataset_id, 0.7, config={"classifier": "a"}),
                    _run(dataset_id, 0.9, config={"classifier": "b"}),
                    _run(dataset_id, 0.8, config={"classifier": "b"}),
                    _run(dataset_id, None, "crash", config={"classifier": "c"})])
    best = kb.best_configurations(dataset_id, "balanced_accuracy", 5)
    assert [b.config["classifier"] for b in best] == ["b", "a"]
    assert best[0].score == pytest.approx(0.85) and best[0].n_runs == 2
    assert len(kb.performance("balanced_accuracy")) == 2


def test_snapshot_round_trip(kb: KnowledgeBase, tmp_path: Path) -> None:
    dataset_id = kb.register(from_frame(breast_cancer_frame(60), "target", "bc"))
    kb.store_metafeatures(dataset_id, "x/1", {"a": 1.0, "b": None}, 0.1)
    kb.record_runs([_run(dataset_id, 0.7, key="r1"), _run(dataset_id, 0.8, config={"classifier": "lda"})])
    counts = export_snapshot(kb, tmp_path / "snap.json.gz")
    assert counts["runs"] == 2
    other = KnowledgeBase(str(tmp_path / "other.sqlite"))
    import_snapshot(other, tmp_path / "snap.json.gz")
    import_snapshot(other, tmp_path / "snap.json.gz")  # idempotent
    stats = other.stats()
    assert stats["datasets"] == 1 and stats["runs"] == 2 and stats["datasets_with_metafeatures"] == 1
    assert other.metafeatures(other.datasets()[0].id, "x/1") == {"a": 1.0, "b": None}


def test_kb_cli_init_and_stats(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.sqlite")
    init = run_cli("kb", "init", "--db", db, "--no-seed")
    assert init.returncode == 0, init.stderr
    stats = run_cli("kb", "stats", "--db", db, "--json")
    data = json.loads(stats.stdout)
    assert {"datasets", "runs", "configurations", "datasets_with_metafeatures", "by_source"} <= set(data)


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(KnowledgeBaseError, match="invalid knowledge base URL"):
        KnowledgeBase("notadialect://x/y")


def test_migration_upgrades_an_old_schema_without_loss(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO datasets (name, content_hash, source, n_rows, n_features, n_classes, "
                          "n_categorical, created_at) VALUES ('old', 'h', 'user', 10, 2, 2, 0, '2026-01-01')"))
    assert "ix_runs_origin" not in {i["name"] for i in inspect(engine).get_indexes("runs")}
    proc = run_cli("kb", "upgrade", "--db", url)
    assert proc.returncode == 0, proc.stderr
    assert f"0001 -> {migrate.head_revision()}" in proc.stdout
    assert "ix_runs_origin" in {i["name"] for i in inspect(engine).get_indexes("runs")}
    assert inspect(engine).has_table("ensemble_members")  # 0003
    kb = KnowledgeBase(url)
    assert [d.name for d in kb.datasets()] == ["old"]
    assert migrate.current_revision(kb.engine) == migrate.head_revision()


def test_the_seeded_sqlite_file_is_cached_and_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))
    first = KnowledgeBase(str(tmp_path / "first.sqlite"))
    assert ensure_seeded(first) and seed_cache.cached_copy(seed_path()).is_file()
    second = KnowledgeBase(str(tmp_path / "second.sqlite"))
    assert seed_cache.restore(second, seed_path())  # the copy, not the snapshot
    assert second.stats() == first.stats() and ensure_seeded(second) is None  # not empty any more
    second.record_runs([])  # still writable, schema current
    # a damaged copy is refused, deleted, and the snapshot loaded instead
    seed_cache.cached_copy(seed_path()).write_bytes(b"not a database")
    third = KnowledgeBase(str(tmp_path / "third.sqlite"))
    assert ensure_seeded(third) and third.stats()["runs"] == first.stats()["runs"]
    first.dispose(), second.dispose(), third.dispose()
