"""Time-budget benchmark: is ``metalearn search --time-budget B`` done within B seconds of wall-clock?

    python benchmarks/bench_time_budget.py --manifest ../shared/datasets --budget 60 --limit 30 \\
        [--output benchmarks/results/time-budget] [--db KB.sqlite]

One dataset per family (a fixed random order, so ``--limit N`` is a sample that grows with N) is searched by
the real command line, ``metalearn search FILE --target T --time-budget B --trials 100000 --json``, in its
own process with its threads pinned to one core (``OMP_NUM_THREADS=1``). The wall-clock from spawning the
command to its exit is the figure (start-up, loading, meta-features, trials, the final model, the model file
is not written); the overrun is ``wall / B - 1``. Every search writes to its own copy of one knowledge base
(default: the shipped seed, loaded once). Rows go to ``results.jsonl`` (resumable: datasets done are skipped);
``summary.json`` has the overrun distribution. Target (issue #21): every run within +5 %.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DEFAULT_OUTPUT = Path("benchmarks/results/time-budget")
TARGET = 0.05


def sample(manifest: Path, limit: int | None, seed: int = 0) -> list[dict]:
    """One classification dataset per family, in a fixed random order."""
    entries = json.loads((manifest / "manifest.json").read_text())
    by_family: dict[str, dict] = {}
    for entry in sorted(entries, key=lambda e: e["name"]):
        by_family.setdefault(entry.get("family") or entry["name"], entry)
    chosen = sorted(by_family.values(), key=lambda e: e["name"])
    random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit else chosen


def seeded_kb(folder: Path, db: str | None) -> Path:
    """A knowledge base to copy for every run: ``db``, or a fresh one loaded with the shipped seed."""
    if db:
        return Path(db)
    path = folder / "template.sqlite"
    if not path.exists():
        subprocess.run([sys.executable, "-m", "metalearn.cli", "kb", "init", "--db", str(path)], check=True,
                       capture_output=True)
    return path


def run_one(entry: dict, manifest: Path, budget: float, template: Path, scratch: Path) -> dict:
    """One search through the CLI; its wall-clock, overrun and what it reported."""
    db = scratch / f"{entry['name']}.sqlite"
    shutil.copy(template, db)
    command = [sys.executable, "-m", "metalearn.cli", "search", str(manifest / entry["file"]), "--target",
               entry["target"], "--time-budget", str(budget), "--trials", "100000", "--json", "--db", str(db)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=budget * 5 + 120)
    wall = time.perf_counter() - start
    row = {"dataset": entry["name"], "family": entry.get("family"), "n_rows": entry.get("n_rows"),
           "n_features": entry.get("n_features"), "budget": budget, "wall": round(wall, 3),
           "overrun": round(wall / budget - 1, 4), "exit_code": proc.returncode}
    if proc.returncode == 0:
        result = json.loads(proc.stdout)
        ensemble = result.get("ensemble") or {}
        row |= {"search_seconds": result.get("seconds"), "trials": len(result.get("trials", [])),
                "status": result.get("status"), "members": len(ensemble.get("members", [])),
                "dropped_members": ensemble.get("dropped")}
    else:
        row["error"] = proc.stderr.strip().splitlines()[-1:] or [""]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return row


def summarize(rows: list[dict], budget: float, command: str) -> dict:
    """The overrun distribution (percent) of the finished runs."""
    ok = [r for r in rows if r["exit_code"] == 0]
    over = np.asarray([100 * r["overrun"] for r in ok]) if ok else np.asarray([np.nan])
    quantiles = {f"p{q}": round(float(np.percentile(over, q)), 2) for q in (5, 50, 90, 95)} if ok else {}
    return {"benchmark": "time_budget", "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command, "budget": budget, "n_runs": len(rows), "n_ok": len(ok),
            "overrun_percent": quantiles | {"max": round(float(np.max(over)), 2) if ok else None,
                                            "mean": round(float(np.mean(over)), 2) if ok else None},
            "within_5_percent": sum(r["overrun"] <= TARGET for r in ok), "target_met": bool(ok) and all(
                r["overrun"] <= TARGET for r in ok),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, required=True, help="a manifest directory (../shared/datasets)")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--limit", type=int, default=30, help="datasets (one per family)")
    parser.add_argument("--db", default=None, help="knowledge base to copy for every run (default: the seed)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    out = args.output / f"budget-{int(args.budget)}"
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "results.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    done = {r["dataset"] for r in rows}
    command = " ".join(["python", "benchmarks/bench_time_budget.py", *(argv if argv is not None else sys.argv[1:])])
    with tempfile.TemporaryDirectory(prefix="bench-time-budget-") as scratch:
        template = seeded_kb(Path(scratch), args.db)
        for entry in sample(args.manifest, args.limit):
            if entry["name"] in done:
                continue
            row = run_one(entry, args.manifest, args.budget, template, Path(scratch))
            rows.append(row)
            with rows_path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"{row['dataset']}: wall {row['wall']:.1f} s ({100 * row['overrun']:+.1f} %), "
                  f"{row.get('trials')} trials, exit {row['exit_code']}", flush=True)
    summary = summarize(rows, args.budget, command)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary["overrun_percent"]), f"within 5 %: {summary['within_5_percent']}/{summary['n_ok']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
