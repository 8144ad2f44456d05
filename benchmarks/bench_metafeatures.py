"""Benchmark meta-feature extraction time and peak memory on synthetic tables.

Usage::

    python benchmarks/bench_metafeatures.py [--output benchmarks/results] [--rows 1000 10000 100000]
                                            [--cols 20 100] [--tasks classification regression] [--seed 0]

Each case (task x rows x cols) runs in a fresh Python subprocess that builds the table with
``sklearn.datasets.make_classification`` (3 classes) or, for regression, ``make_regression`` (a skewed,
noisy numeric target); in both, 20% of the columns are binned into string categoricals with 3-8 levels
and 1% of the cells set missing. It calls :func:`metalearn.metafeatures.extract_metafeatures` (with the
case's task) twice. Reported per case:

* ``seconds``: wall time of the first call in that process (what the target is checked against);
  ``seconds_warm``: wall time of the second call.
* ``peak_rss_mib``: peak resident set size of the whole worker process (``ru_maxrss`` of that one child,
  read by the parent with ``os.wait4``): Python, numpy/pandas/sklearn/pymfe, the input table and the
  extraction together, i.e. an upper bound on what extraction needs. ``baseline_rss_mib`` is the worker's
  RSS just before the first call (libraries + table), so ``peak - baseline`` approximates the extra
  memory of extraction itself.

Writes ``metafeatures.json`` (cases, machine info, command) and ``metafeatures.md`` into ``--output`` and
exits with status 1 if a task's 100k x 100 case misses the target (5 s, 2 GiB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymfe
import sklearn
from sklearn.datasets import make_classification, make_regression

from metalearn import metafeatures
from metalearn.metafeatures import extract_metafeatures

TARGET = {"rows": 100_000, "cols": 100, "seconds": 5.0, "peak_mib": 2048.0}
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
TASKS = ("classification", "regression")


def make_table(rows: int, cols: int, seed: int, task: str = "classification") -> tuple[Any, Any, list[str]]:
    """Synthetic classification or regression table with string categoricals and missing cells."""
    if task == "regression":
        X, y = make_regression(n_samples=rows, n_features=cols, n_informative=min(10, cols // 2), noise=10.0,
                               random_state=seed)
        y = np.exp((y - y.mean()) / y.std())  # skewed and positive, like prices or counts
    else:
        X, y = make_classification(
            n_samples=rows,
            n_features=cols,
            n_informative=min(10, cols // 2),
            n_redundant=min(5, cols // 4),
            n_classes=3,
            weights=[0.6, 0.3, 0.1],
            random_state=seed,
        )
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(cols)])
    rng = np.random.default_rng(seed)
    categorical = [f"x{j}" for j in range(0, cols, 5)]  # 20% of the columns
    for k, name in enumerate(categorical):
        levels = 3 + k % 6
        edges = np.quantile(frame[name], np.linspace(0, 1, levels + 1)[1:-1])
        labels = np.array([f"level_{i}" for i in range(levels)], dtype=object)
        frame[name] = labels[np.searchsorted(edges, frame[name].to_numpy())]
    missing = rng.random(frame.shape) < 0.01
    frame = frame.mask(missing)
    return frame, pd.Series(y, name="target"), categorical


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(rows: int, cols: int, seed: int, task: str = "classification") -> None:
    """Run one case in this (fresh) process and print a JSON line with the measurements."""
    X, y, categorical = make_table(rows, cols, seed, task)
    gc.collect()
    baseline = _current_rss_mib()
    start = time.perf_counter()
    result = extract_metafeatures(X, y, categorical=categorical, seed=seed, task=task)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    again = extract_metafeatures(X, y, categorical=categorical, seed=seed, task=task)
    seconds_warm = time.perf_counter() - start
    record = {
        "task": task,
        "rows": rows,
        "cols": cols,
        "n_categorical": len(categorical),
        "missing_ratio": round(float(X.isna().to_numpy().mean()), 4),
        "seconds": round(seconds, 3),
        "seconds_warm": round(seconds_warm, 3),
        "baseline_rss_mib": round(baseline, 1),
        "self_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "n_features": len(result.features),
        "n_undefined": sum(value is None for value in result.features.values()),
        "deterministic": result.features == again.features,
    }
    print(json.dumps(record))


def run_case(rows: int, cols: int, seed: int, task: str = "classification") -> dict[str, Any]:
    """Run one case in a fresh subprocess; add the child's own peak RSS as seen by the parent."""
    script = str(Path(__file__).resolve())
    command = [sys.executable, script, "--worker", str(rows), str(cols), "--seed", str(seed), "--tasks", task]
    # One merged pipe read to EOF, then os.wait4 to reap exactly this child and get its own rusage.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{task} case {rows}x{cols} failed ({process.returncode}):\n{output[-2000:]}")
    record = json.loads(output.strip().splitlines()[-1])
    record["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
    return record


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory_gib: float | None = round(mem_kib / 2**20, 1)
    except (OSError, StopIteration):
        memory_gib = None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": memory_gib,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "pymfe": pymfe.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
    }


def to_markdown(report: dict[str, Any]) -> str:
    target = report["target"]
    extractors = ", ".join(f"{task} `{version}` ({report['n_feature_names_by_task'][task]} features)"
                           for task, version in report["extractors"].items())
    lines = [
        "# Meta-feature extraction benchmark",
        "",
        f"Extractors: {extractors}; "
        f"row cap {report['max_rows']}, column cap {metafeatures.MAX_COLS}. "
        f"Generated {report['timestamp']} by `{report['command']}`.",
        "",
        f"Machine: {report['machine']['cpu']}, {report['machine']['usable_cpus']} usable CPUs, "
        f"{report['machine']['memory_gib']} GiB RAM, load average at start "
        f"{report['machine']['load_average_at_start']}.",
        "",
        "Synthetic `make_classification` tables (3 classes) and `make_regression` tables (exp of a noisy linear "
        "target), both with 20% string categoricals and 1% missing cells. "
        "Each case runs in a fresh process; *seconds* is the first extraction call, *warm* a second one; "
        "*peak RSS* is the whole worker process (Python + libraries + table + extraction), *baseline* its "
        "RSS just before extraction.",
        "",
        "| task | rows | cols | seconds | warm s | peak RSS MiB | baseline MiB | undefined features |",
        "|:-----|-----:|-----:|--------:|-------:|-------------:|-------------:|-------------------:|",
    ]
    for case in report["cases"]:
        lines.append(
            f"| {case.get('task', 'classification')} | {case['rows']:,} | {case['cols']} | "
            f"{case['seconds']:.2f} | {case['seconds_warm']:.2f} | "
            f"{case['peak_rss_mib']:.0f} | {case['baseline_rss_mib']:.0f} | {case['n_undefined']} |"
        )
    verdict = report["target_met"]
    lines += [
        "",
        f"Target ({target['rows']:,} x {target['cols']}: <= {target['seconds']} s and <= "
        f"{target['peak_mib']:.0f} MiB peak, every task): "
        + ("**met**." if verdict else ("**missed**." if verdict is False else "not measured.")),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="directory for the results")
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--cols", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", type=int, nargs=2, metavar=("ROWS", "COLS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, seed=args.seed, task=args.tasks[0])
        return 0

    report: dict[str, Any] = {
        "extractor": metafeatures.EXTRACTOR_VERSION,
        "extractors": {task: metafeatures.EXTRACTOR_VERSIONS[task] for task in args.tasks},
        "max_rows": metafeatures.MAX_ROWS,
        "max_cols": metafeatures.MAX_COLS,
        "n_feature_names": len(metafeatures.FEATURE_NAMES),
        "n_feature_names_by_task": {task: len(metafeatures.FEATURE_NAMES_BY_TASK[task]) for task in args.tasks},
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(["python", __file__, *argv]),
        "memory_measure": "peak RSS (ru_maxrss via os.wait4) of a fresh worker process per case",
        "machine": machine_info(),
        "target": TARGET,
        "cases": [],
    }
    print(
        f"{'task':<14} {'rows':>8} {'cols':>5} {'seconds':>8} {'warm s':>7} {'peak MiB':>9} {'base MiB':>9} "
        f"{'undef':>6}"
    )
    for task, rows, cols in ((t, r, c) for t in args.tasks for r in args.rows for c in args.cols):
        case = run_case(rows, cols, args.seed, task)
        report["cases"].append(case)
        print(
            f"{task:<14} {rows:>8} {cols:>5} {case['seconds']:>8.2f} {case['seconds_warm']:>7.2f} "
            f"{case['peak_rss_mib']:>9.0f} {case['baseline_rss_mib']:>9.0f} {case['n_undefined']:>6}",
            flush=True,
        )
    report["target_met"] = target_met(report["cases"])
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "metafeatures.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.output / "metafeatures.md").write_text(to_markdown(report))
    print(f"wrote {args.output / 'metafeatures.json'} and {args.output / 'metafeatures.md'}")
    return 1 if report["target_met"] is False else 0


def target_met(cases: list[dict[str, Any]]) -> bool | None:
    """Whether every task's 100k x 100 case met the target (None when no such case ran); prints each."""
    verdicts = []
    for case in cases:
        if case["rows"] != TARGET["rows"] or case["cols"] != TARGET["cols"]:
            continue
        met = case["seconds"] <= TARGET["seconds"] and case["peak_rss_mib"] <= TARGET["peak_mib"]
        verdicts.append(met)
        print(
            f"target {case.get('task', 'classification')} {TARGET['rows']}x{TARGET['cols']}: "
            f"{case['seconds']:.2f} s (limit {TARGET['seconds']}), {case['peak_rss_mib']:.0f} MiB "
            f"(limit {TARGET['peak_mib']:.0f}) -> " + ("met" if met else "MISSED")
        )
    return all(verdicts) if verdicts else None


if __name__ == "__main__":
    sys.exit(main())
