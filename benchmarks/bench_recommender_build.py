"""Seconds to build the recommender over a knowledge base: what every CLI or in-process search pays before its
first trial (the server keeps its recommenders and updates them incrementally instead).

    python benchmarks/bench_recommender_build.py [--db KB] [--repeats 7] [--output benchmarks/results]

Default ``--db``: a temporary copy of the shipped seed. Prints the median and the range of ``repeats`` builds and
of the knowledge-base reads inside them, and writes ``recommender_build.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import metalearn
from metalearn.knowledge_base import KnowledgeBase
from metalearn.knowledge_base.snapshot import open_kb
from metalearn.protocol import DEFAULT_METRIC
from metalearn.warmstart import Recommender

REPO = Path(__file__).resolve().parents[1]


def _timed(work: Callable[[], object], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return seconds


def _figures(seconds: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(seconds), 3), "min": round(min(seconds), 3),
            "max": round(max(seconds), 3)}


def _commit_of_the_code() -> str:
    """The commit of the metalearn code that ran (a checkout of another commit may run this script)."""
    code = Path(metalearn.__file__).resolve().parents[1]
    return subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="knowledge base URL or SQLite path (default: a copy of the shipped seed)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    kb = KnowledgeBase(args.db) if args.db else open_kb(str(Path(tempfile.mkdtemp()) / "kb.sqlite"))
    Recommender(kb)  # warm-up: imports, SQLite page cache
    reads = {"performance": lambda: kb.performance(DEFAULT_METRIC), "discovery": kb.discovery,
             "pooled_by": lambda: kb.pooled_by(DEFAULT_METRIC)}
    result = {"build": _figures(_timed(lambda: Recommender(kb), args.repeats)),
              **{name: _figures(_timed(read, args.repeats)) for name, read in reads.items()},
              "runs": int(kb.stats()["runs"]), "repeats": args.repeats,
              "commit": _commit_of_the_code(),
              "python": platform.python_version(), "created": datetime.now(UTC).isoformat(timespec="seconds")}
    for name in ("build", *reads):
        figures = result[name]
        print(f"{name:12s} median {figures['median']:.3f} s  [{figures['min']:.3f}, {figures['max']:.3f}]")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "recommender_build.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
