"""Seeding a knowledge base from a manifest directory and from OpenML (recorded cache); resuming."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from conftest import breast_cancer_frame, messy_iris_frame, run_cli, wine_frame

from metalearn import seeding
from metalearn.knowledge_base import KnowledgeBase, RunRecord
from metalearn.metafeatures import EXTRACTOR_VERSION
from metalearn.space import SPACE_VERSION, default_configuration

TINY = seeding.SeedProtocol(n_trials=3, folds=2, max_rows=200, trial_time_limit=60)


def _manifest(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    breast_cancer_frame(120).to_parquet(folder / "bc.parquet")
    messy_iris_frame().to_parquet(folder / "iris.parquet")
    wine_frame().to_parquet(folder / "wine.parquet")
    (folder / "manifest.json").write_text(json.dumps([
        {"name": "bc", "file": "bc.parquet", "target": "target", "family": "bc", "categorical": []},
        {"name": "iris", "file": "iris.parquet", "target": "target", "family": "iris", "categorical": ["colour"],
         "openml_id": 61},
        {"name": "wine", "file": "wine.parquet", "target": "target", "family": "wine", "categorical": []},
    ]))
    return folder


def test_seed_from_manifest_with_cross_evaluation(tmp_path: Path, kb_path: str) -> None:
    """Two datasets of the manifest (bc, iris): cross-evaluating the 16 library defaults on each is most of the
    time, so a third would add half again."""
    protocol = seeding.SeedProtocol(n_trials=4, folds=2, max_rows=200, trial_time_limit=60, cross_evaluate=2)
    outcome = seeding.seed(seeding.manifest_sources(str(_manifest(tmp_path)))[:2], kb_path, protocol)
    assert [s["status"] for s in outcome["datasets"]] == ["done"] * 2
    kb = KnowledgeBase(kb_path)
    stats = kb.stats()
    assert stats["datasets"] == 2 and stats["datasets_with_metafeatures"] == 2
    assert stats["datasets_linked_to_openml"] == 1
    assert {d.family for d in kb.datasets()} == {"bc", "iris"}
    # cross-evaluation: the pooled top configurations end up evaluated on every dataset
    perf = kb.performance("balanced_accuracy")
    top = perf.sort_values("score", ascending=False).groupby("dataset_id").head(2)["configuration_id"].unique()
    covered = perf[perf["configuration_id"].isin(top)].groupby("configuration_id")["dataset_id"].nunique()
    assert len(top) > 2 and (covered == 2).all()
    # the library defaults of DEFAULT_POOL are cross-evaluated too, and count as found on no dataset
    defaults = {kb.register_configuration(default_configuration(a), a, SPACE_VERSION) for a in seeding.DEFAULT_POOL}
    assert len(defaults) == len(seeding.DEFAULT_POOL)
    assert (perf[perf["configuration_id"].isin(defaults)].groupby("configuration_id")["dataset_id"].nunique()
            == 2).all() and perf["configuration_id"].isin(defaults).sum() == 2 * len(defaults)
    assert defaults.isdisjoint(set(kb.discovery()["configuration_id"]))
    assert kb.metafeatures(kb.datasets()[0].id, EXTRACTOR_VERSION) is not None
    # the pool is ranked on the searches' own runs: a cross-evaluation run that beats them does not change it,
    # so a resumed build evaluates the same configurations
    pool = seeding._pooled_top_configs(kb_path, protocol, "classification")
    outsider = {**default_configuration("gaussian_nb"), "gaussian_nb:var_smoothing": 3.3e-7}
    kb.record_runs([RunRecord(dataset_id=d.id, config=outsider, algorithm="gaussian_nb", metric="balanced_accuracy",
                              status="success", score=1.5, seconds=0.1, origin="cross_eval") for d in kb.datasets()])
    assert seeding._pooled_top_configs(kb_path, protocol, "classification") == pool
    # --pool-size grows the pool with the next best of each dataset, never dropping the top ones, up to every
    # configuration the searches ran (a search's trial can repeat a library default, so there may be none to add)
    searched = set(kb.performance("balanced_accuracy", searched_only=True)["configuration_id"]) | defaults
    bigger = seeding._pooled_top_configs(kb_path, replace(protocol, pool_size=len(pool) + 1), "classification")
    assert set(pool) <= set(bigger) <= searched and len(bigger) == min(len(pool) + 1, len(searched))
    everything = seeding._pooled_top_configs(kb_path, replace(protocol, pool_size=10_000), "classification")
    assert set(everything) == searched


def test_seed_from_recorded_openml_cache(openml_cache: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "kb.sqlite")
    outcome = seeding.seed(seeding.openml_dataset_sources([2], str(openml_cache)), db, TINY)
    assert outcome["datasets"][0]["status"] == "done" and outcome["datasets"][0]["trials"] == 3
    kb = KnowledgeBase(db)
    (dataset,) = kb.datasets()
    assert dataset.name == "anneal" and dataset.openml_id == 2 and dataset.source == "openml"
    assert kb.stats()["runs"] == 3 and kb.stats()["datasets_linked_to_openml"] == 1


def test_seed_cli_rejects_nothing_to_do(tmp_path: Path) -> None:
    proc = run_cli("kb", "seed", "--db", str(tmp_path / "k.sqlite"))
    assert proc.returncode == 2 and "nothing to seed" in proc.stderr


def test_resuming_after_a_kill_adds_no_duplicate_runs(tmp_path: Path) -> None:
    corpus, db = _manifest(tmp_path), str(tmp_path / "kb.sqlite")
    command = ["kb", "seed", "--manifest", str(corpus), "--limit", "1", "--folds", "2", "--max-rows", "150", "--db", db]
    proc = subprocess.Popen([sys.executable, "-m", "metalearn.cli", *command, "--trials", "400"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kb = KnowledgeBase(db)
    deadline = time.time() + 120
    while time.time() < deadline and kb.stats()["runs"] < 4:
        time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = kb.stats()["runs"]
    assert killed_at >= 4
    target = killed_at + 3
    done = run_cli(*command, "--trials", str(target))  # the resumed seeding: in this process
    assert done.returncode == 0, done.stderr
    runs = kb.runs_frame()
    assert len(runs) == target  # the stored trials were replayed, not run again
    assert runs["run_key"].is_unique
    assert sorted(int(k.rsplit(":", 1)[1]) for k in runs["run_key"]) == list(range(1, target + 1))
    assert runs["configuration_id"].is_unique  # no configuration evaluated twice
    again = run_cli(*command, "--trials", str(target))
    assert again.returncode == 0 and len(kb.runs_frame()) == target


def test_parallel_seeding_workers_are_spawned_and_lose_no_run(tmp_path: Path) -> None:
    """``jobs=2``: two worker processes write one SQLite file; spawned workers inherit no open connection of the
    parent (a forked worker closing one would drop its own POSIX locks, and runs were lost that way)."""
    db = str(tmp_path / "kb.sqlite")
    leftover = KnowledgeBase(db)  # an open connection in the parent while the workers start
    outcome = seeding.seed(seeding.manifest_sources(str(_manifest(tmp_path))), db, TINY, jobs=2)
    assert [s["status"] for s in outcome["datasets"]] == ["done"] * 3
    runs = leftover.runs_frame()
    assert len(runs) == 3 * TINY.n_trials and runs["run_key"].is_unique
    assert all(s["trials"] == TINY.n_trials for s in outcome["datasets"])
    leftover.dispose()
