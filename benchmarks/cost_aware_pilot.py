"""Compare the cost-aware warm start's pilot rows with the equal-time benchmark's metalearn rows (same splits).

    python benchmarks/cost_aware_pilot.py [PILOT_RESULTS] [BENCHMARK_RESULTS]

Datasets where the cost filter changed the first three trials are reported apart from the others: on the others
the two runs differ only by run-to-run noise (a time budget makes the trial count, hence the search, vary).
"""

from __future__ import annotations

import ast
import json
import statistics
import sys
from pathlib import Path

from scipy.stats import binomtest

PILOT = Path("benchmarks/results/cost-aware-pilot/results.jsonl")
BENCHMARK = Path("benchmarks/results/equal-time/results.jsonl")


def _rows(path: Path) -> dict[tuple[str, str], dict]:
    rows = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["budget"] == 60 and row["seed"] == 0:
            info = row.get("info") or {}
            row["info"] = ast.literal_eval(info) if isinstance(info, str) else info
            rows[(row["dataset"], row["system"])] = row
    return rows


def _line(label: str, diffs: list[float]) -> str:
    wins, losses = sum(d > 1e-9 for d in diffs), sum(d < -1e-9 for d in diffs)
    p = binomtest(wins, wins + losses).pvalue if wins + losses else float("nan")
    return (f"{label}: {len(diffs)} datasets, mean difference {statistics.mean(diffs):+.4f} "
            f"(sd {statistics.stdev(diffs):.4f}), W/T/L {wins}/{len(diffs) - wins - losses}/{losses}, "
            f"sign test p={p:.3f}")


def main(pilot: Path = PILOT, benchmark: Path = BENCHMARK) -> None:
    new, old = _rows(pilot), _rows(benchmark)
    datasets = sorted(d for d, system in new if system == "metalearn" and (d, "metalearn") in old)
    first = {d: ([t["algorithm"] for t in new[(d, "metalearn")]["info"].get("first_trials", [])],
                 [t["algorithm"] for t in old[(d, "metalearn")]["info"].get("first_trials", [])]) for d in datasets}
    acted = [d for d in datasets if first[d][0] != first[d][1]]
    for d in datasets:
        assert new[(d, "metalearn")]["n_test"] == old[(d, "metalearn")]["n_test"], d  # the same outer split

    def diff(d: str) -> float:
        return new[(d, "metalearn")]["test_score"] - old[(d, "metalearn")]["test_score"]

    print(_line("all", [diff(d) for d in datasets]))
    print(_line("the filter changed the first trials", [diff(d) for d in acted]))
    print(_line("the filter left them as they were", [diff(d) for d in datasets if d not in acted]))
    trials = [(new[(d, "metalearn")]["info"]["trials"], old[(d, "metalearn")]["info"]["trials"]) for d in acted]
    print(f"trials where it acted: median {statistics.median(t[0] for t in trials)} "
          f"(was {statistics.median(t[1] for t in trials)})")
    for d in acted:
        print(f"  {d}: {old[(d, 'metalearn')]['test_score']:.3f} -> {new[(d, 'metalearn')]['test_score']:.3f}; "
              f"first trials {', '.join(first[d][1])} -> {', '.join(first[d][0])}")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:3]))
