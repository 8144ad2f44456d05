"""Scale benchmark: parallel trials on Dask, bulk inserts, neighbour queries.

    python benchmarks/bench_scale.py [--parts trials,insert,neighbors] [--postgres-url URL]
                                     [--output benchmarks/results]

* trials: trials per minute of the same random search (same seed, so the same configurations)
  with 1 worker (in process) and 2 workers (local Dask cluster), on the example dataset; steady
  state (first to last finished trial) and in total (including starting the cluster).
  Target: >= 1.8x from 1 to 2 workers.
* insert: runs per second through ``KnowledgeBase.record_runs`` in batches of 1,000 (50,000 runs,
  2,000 distinct configurations) on SQLite and, with ``--postgres-url``, PostgreSQL.
  Target: >= 5,000 runs/s on SQLite.
* neighbors: median seconds of one ``NeighborIndex.query`` (k=5, with a family excluded) over
  synthetic 69-dimensional meta-feature vectors for 100, 1k, 10k and 100k datasets.
  Targets: <= 50 ms at 10k and <= 500 ms at 100k.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from metalearn.datasets import load_file
from metalearn.knowledge_base import KnowledgeBase, RunRecord
from metalearn.metafeatures import FEATURE_NAMES
from metalearn.warmstart import SearchSettings, WarmStartSearch
from metalearn.warmstart.neighbors import NeighborIndex

REPO = Path(__file__).resolve().parents[1]


def machine() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg())}


def bench_trials(n_trials: int = 60) -> dict:
    dataset = load_file(REPO / "metalearn" / "examples" / "breast_cancer.csv", "diagnosis")
    out = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            settings = SearchSettings(strategy="random", n_trials=n_trials, folds=3, workers=workers,
                                      trial_time_limit=60, refit=False, seed=0)
            engine = WarmStartSearch(str(Path(tmp) / "kb.sqlite"), settings)
            engine.prepare(dataset)  # meta-features are not part of the trial loop
            start = time.perf_counter()
            result = engine.run(dataset)
            seconds = time.perf_counter() - start
            # steady state: from the first finished trial to the last (excludes starting the Dask cluster)
            span = result.trials[-1].elapsed - result.trials[0].elapsed
            out[f"workers_{workers}"] = {
                "trials": len(result.trials), "seconds": round(seconds, 2),
                "trials_per_minute_total": round(60 * len(result.trials) / seconds, 1),
                "trials_per_minute": round(60 * (len(result.trials) - 1) / span, 1)}
            print(f"trials: {workers} worker(s): {out[f'workers_{workers}']}", flush=True)
    out["speedup"] = round(out["workers_2"]["trials_per_minute"] / out["workers_1"]["trials_per_minute"], 2)
    out["target"] = ">= 1.8x"
    out["met"] = out["speedup"] >= 1.8
    return out


def bench_insert(url: str, n_runs: int = 50_000, batch: int = 1000) -> dict:
    kb = KnowledgeBase(url)
    dataset_id = kb.register_dataset(name="bench", content_hash=f"bench-{time.time_ns()}", n_rows=1, n_features=1,
                                     n_classes=2)
    rng = np.random.default_rng(0)
    runs = [RunRecord(dataset_id=dataset_id, config={"classifier": "lda", "i": int(i % 2000)}, algorithm="lda",
                      metric="balanced_accuracy", status="success", score=float(s), seconds=0.1, origin="bench")
            for i, s in enumerate(rng.random(n_runs))]
    start = time.perf_counter()
    for i in range(0, n_runs, batch):
        kb.record_runs(runs[i:i + batch])
    seconds = time.perf_counter() - start
    kb.dispose()
    return {"runs": n_runs, "batch": batch, "seconds": round(seconds, 2), "runs_per_second": round(n_runs / seconds)}


def bench_neighbors(sizes: tuple[int, ...] = (100, 1000, 10_000, 100_000), repeats: int = 20) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        matrix = pd.DataFrame(rng.lognormal(size=(n, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES),
                              index=np.arange(1, n + 1))
        matrix = matrix.mask(rng.random(matrix.shape) < 0.05)
        info = {i: (f"d{i}", f"family{i % max(1, n // 3)}", f"h{i}") for i in matrix.index}
        start = time.perf_counter()
        index = NeighborIndex(matrix, info)
        build = time.perf_counter() - start
        times = []
        for r in range(repeats):
            query = matrix.iloc[r % n].to_dict()
            t0 = time.perf_counter()
            found = index.query(query, 5, exclude_families={info[int(matrix.index[r % n])][1]})
            times.append(time.perf_counter() - t0)
            assert len(found) == min(5, n - 3)
        out[str(n)] = {"build_seconds": round(build, 4), "median_query_ms": round(1000 * float(np.median(times)), 2),
                       "p95_query_ms": round(1000 * float(np.percentile(times, 95)), 2)}
        print(f"neighbors: {n} datasets: {out[str(n)]}", flush=True)
    out["targets"] = {"10000": "<= 50 ms", "100000": "<= 500 ms"}
    out["met"] = out["10000"]["median_query_ms"] <= 50 and out["100000"]["median_query_ms"] <= 500
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="trials,insert,neighbors")
    parser.add_argument("--postgres-url", default=os.environ.get("METALEARN_TEST_POSTGRES_URL"))
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    results: dict = {"command": "python " + " ".join(sys.argv), "generated": datetime.now(UTC).isoformat(),
                     "machine": machine()}
    if "neighbors" in parts:
        results["neighbors"] = bench_neighbors()
    if "insert" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            results["insert_sqlite"] = bench_insert(str(Path(tmp) / "kb.sqlite"))
        print(f"insert: sqlite {results['insert_sqlite']}", flush=True)
        if args.postgres_url:
            results["insert_postgresql"] = bench_insert(args.postgres_url)
            print(f"insert: postgresql {results['insert_postgresql']}", flush=True)
        results["insert_target"] = ">= 5000 runs/s on SQLite"
        results["insert_met"] = results["insert_sqlite"]["runs_per_second"] >= 5000
    if "trials" in parts:
        results["trials"] = bench_trials()
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "scale.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous.update(results)
    path.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
