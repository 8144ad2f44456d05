"""Time the model report on a synthetic table (target: under 60 s for 10k rows x 50 columns).

Usage::

    python benchmarks/bench_report.py [--rows 10000] [--cols 50] [--algorithm random_forest] [--seed 0]
                                      [--output benchmarks/results/report_timing.json]

The table comes from ``sklearn.datasets.make_classification`` (binary; 10% of the columns binned into
string categoricals with 4-6 levels; 1% of the cells missing) plus a derived ``group`` column used as
the sensitive attribute. The default configuration of ``--algorithm`` is fitted on it (timed apart, as a
search's refit would be), then, in this fresh process (so including the first imports of shap / fairlearn /
matplotlib and numba's compilation inside shap):

* ``build_seconds``: :func:`metalearn.report.build_report` with default options (5-fold out-of-fold
  predictions, which refit the pipeline 5 times, permutation importance, partial dependence and SHAP on a
  500-row subsample, surrogate tree, fairness);
* ``html_seconds`` / ``json_seconds``: :func:`metalearn.report.render_report`;
* ``report_seconds`` = build + HTML + JSON: what the target is checked against.

Per-section timings and the machine's load are written next to them; exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

TARGET_SECONDS = 60.0
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "report_timing.json"


def make_frame(rows: int, cols: int, seed: int) -> Any:
    # lazy like main's imports: called after start_process, whose process_seconds counts the first imports
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=cols, n_informative=max(2, cols // 5),
                               n_redundant=max(0, cols // 10), weights=[0.6, 0.4], random_state=seed)
    frame = pd.DataFrame(X, columns=[f"x{i:02d}" for i in range(cols)])
    rng = np.random.default_rng(seed)
    n_cat = max(1, cols // 10)
    for i in range(n_cat):
        column = frame.columns[-(i + 1)]
        levels = 4 + i % 3
        frame[column] = pd.qcut(frame[column], levels, labels=[f"L{j}" for j in range(levels)]).astype(str)
    mask = rng.random(frame.shape) < 0.01
    frame = frame.mask(mask)
    frame["target"] = np.where(y == 1, "yes", "no")
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--algorithm", default="random_forest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    start_process = time.perf_counter()
    # imported after start_process on purpose: process_seconds counts a fresh process's first imports
    from threadpoolctl import threadpool_limits

    from metalearn.datasets import from_frame
    from metalearn.pipeline import build_pipeline
    from metalearn.report import build_report, render_report
    from metalearn.space import default_configuration

    load_before = os.getloadavg()
    frame = make_frame(args.rows, args.cols, args.seed)
    dataset = from_frame(frame, "target", f"synthetic-{args.rows}x{args.cols}")
    # a sensitive attribute that is not a feature: derived from one informative column
    group = frame["x00"].gt(frame["x00"].median()).map({True: "g1", False: "g2"}).rename("group")
    config = default_configuration(args.algorithm)
    pipeline = build_pipeline(config, dataset.numeric, dataset.categorical, n_features=dataset.n_features,
                              random_state=args.seed)
    t = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        pipeline.fit(dataset.X, dataset.y)
    fit_seconds = time.perf_counter() - t

    t = time.perf_counter()
    report = build_report(pipeline, dataset, sensitive=group, configuration=config, seed=args.seed)
    build_seconds = time.perf_counter() - t
    t = time.perf_counter()
    page = render_report(report, "html")
    html_seconds = time.perf_counter() - t
    t = time.perf_counter()
    text = render_report(report, "json")
    json_seconds = time.perf_counter() - t
    total = build_seconds + html_seconds + json_seconds
    shap = report["shap"]
    result = {
        "benchmark": "model report generation",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "table": {"rows": args.rows, "columns": args.cols, "categorical": len(dataset.categorical),
                  "classes": dataset.n_classes, "missing_cells": 0.01},
        "model": {"algorithm": args.algorithm, "configuration": "default", "fit_seconds": round(fit_seconds, 2)},
        "report_seconds": round(total, 2),
        "build_seconds": round(build_seconds, 2),
        "html_seconds": round(html_seconds, 2),
        "json_seconds": round(json_seconds, 2),
        "target_seconds": TARGET_SECONDS,
        "target_met": total < TARGET_SECONDS,
        "section_seconds": report.data["meta"]["timings"],
        "sizes": {"html_bytes": len(page.encode()), "json_bytes": len(text.encode()),
                  "explanation_rows": report.data["meta"]["sampling"]["explanation_rows"],
                  "shap_rows": shap.get("n_rows"), "shap_permutations": shap.get("permutations"),
                  "shap_notes": shap.get("notes"), "evaluation": report.data["meta"]["evaluation"]},
        "process_seconds": round(time.perf_counter() - start_process, 2),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()],
                    "versions": _versions()},
        "notes": "one run in a fresh process (first imports and numba compilation inside shap included); the "
                 "pipeline runs single-threaded (threadpool_limits(1)), as in a search",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"report on {args.rows} x {args.cols} ({args.algorithm}): {total:.1f} s "
          f"(build {build_seconds:.1f}, html {html_seconds:.1f}, json {json_seconds:.1f}); "
          f"target < {TARGET_SECONDS:.0f} s {'met' if result['target_met'] else 'NOT met'}")
    print("sections: " + ", ".join(f"{k} {v:.1f}" for k, v in result["section_seconds"].items()))
    print(f"wrote {args.output}")
    return 0 if result["target_met"] else 1


def _versions() -> dict[str, str]:
    out = {}
    for name in ("numpy", "pandas", "scikit-learn", "shap", "numba", "fairlearn", "lime", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


if __name__ == "__main__":
    sys.exit(main())
