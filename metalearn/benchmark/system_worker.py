"""Worker process of the equal wall-clock benchmark for ``metalearn`` and ``metalearn-cold``.

    python -m metalearn.benchmark.system_worker ARGS.json

Reads the split's ``train.parquet`` / ``test.parquet``, runs :class:`WarmStartSearch` (``record=False``) on
the scratch copy of the knowledge base with the query's family left out, and the wall-clock budget (minus a
small safety margin) as its whole-job time budget, counted from the parent's spawn, so imports and loading
are paid for; the search keeps time for its final refits itself (:mod:`metalearn.warmstart.budget`).
Once the final model is ready, ``ready_at`` is taken; the model
then predicts the test part and ``result.json`` gets the predictions. The task (``args["task"]``) sets the
metric: balanced accuracy, or R^2 for regression.
"""

from __future__ import annotations

import sys
import time
import traceback
import warnings
from importlib.metadata import version
from typing import Any

import pandas as pd

from metalearn.benchmark.systems import SYSTEMS, dump_stacks_before_cap, pin_threads, read_args, write_result
from metalearn.datasets import from_frame
from metalearn.knowledge_base import KnowledgeBase
from metalearn.protocol import DEFAULT_METRICS
from metalearn.warmstart.recommend import Recommender
from metalearn.warmstart.search import SearchSettings, WarmStartSearch


def search_budget(args: dict[str, Any]) -> tuple[float, float]:
    """The whole-job time budget the search gets and when its job started (epoch seconds: the parent's spawn,
    so imports and loading count): the wall-clock budget minus a safety margin (``margin`` x budget, at least
    ``min_margin`` seconds) for predicting nothing late; the search itself keeps time for its refits."""
    budget = float(args["budget"])
    margin = max(float(args.get("min_margin", 1.0)), float(args.get("margin", 0.03)) * budget)
    return max(0.5, budget - margin), float(args["deadline"]) - budget


def _search(args: dict[str, Any], kb: KnowledgeBase, train: pd.DataFrame) -> tuple[Any, dict[str, Any]]:
    """Run the search on ``train``; returns the search result and what to report about it."""
    task = args.get("task", "classification")
    metric = DEFAULT_METRICS[task]
    dataset = from_frame(train, args["target"], args.get("dataset", "dataset"), args.get("categorical") or [],
                         task=task, source="benchmark", family=args.get("family"))
    strategy = SYSTEMS[args["system"]].options["strategy"]
    recommender = (Recommender(kb, metric, restrict_to=args.get("restrict_to"))
                   if strategy == "warm" else None)
    budget, started_at = search_budget(args)
    settings = SearchSettings(strategy=strategy, n_trials=None, time_budget=budget, metric=metric,
                              seed=int(args["seed"]), workers=int(args["cores"]))
    engine = WarmStartSearch(kb, settings, recommender=recommender, exclude_ids=args.get("exclude_ids") or (),
                             exclude_families=args.get("exclude_families") or (), record=False)
    result = engine.run(dataset, started_at=started_at)
    best = result.best
    info = {"time_budget": budget, "trials": len(result.trials), "search_status": result.status,
            "cv_score": None if best is None else best.score, "algorithm": None if best is None else best.algorithm,
            "ensemble_members": None if result.ensemble is None else len(result.ensemble.members),
            "search_seconds": result.seconds, "failed_trials": sum(not t.ok for t in result.trials),
            "first_trials": [{"algorithm": t.algorithm, "origin": t.origin, "status": t.status,
                              "seconds": round(t.seconds, 2)} for t in result.trials[:3]]}
    return result, info


def run(args: dict[str, Any]) -> dict[str, Any]:
    """One run: load, search, final model ready (``ready_at``), predictions of the test part."""
    limiter = pin_threads(int(args["cores"]), args.get("cpus"))
    train = pd.read_parquet(args["train"])
    test = pd.read_parquet(args["test"])
    kb = KnowledgeBase(args["db"], create=False)  # the benchmark's scratch copy, never written (record=False)
    try:
        result, info = _search(args, kb, train)
    finally:
        kb.dispose()
    ready = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if result.model is not None:
            predictions = result.bundle().predict(test)
        elif args.get("task") == "regression":  # no successful trial: the training mean
            info["fallback"] = "training mean"
            predictions = [float(train[args["target"]].mean())] * len(test)
        else:  # no successful trial: the majority class
            info["fallback"] = "majority class"
            predictions = [train[args["target"]].mode().iloc[0]] * len(test)
    del limiter
    return {"status": "ok", "ready_at": ready, "finished_at": time.time(), "info": info,
            "predictions": pd.Series(predictions).tolist(), "versions": {"metalearn": version("metalearn"),
                                                                        "smac": version("smac")}}


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m metalearn.benchmark.system_worker ARGS.json``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m metalearn.benchmark.system_worker ARGS.json", file=sys.stderr)
        return 2
    args = read_args(argv[0])
    dump_stacks_before_cap(args)
    try:
        write_result(args["result"], run(args))
    except Exception as exc:  # reported to the parent as a crash, with the traceback's tail
        write_result(args["result"], {"status": "crash", "error": f"{type(exc).__name__}: {exc}",
                                      "traceback": traceback.format_exc()[-4000:], "finished_at": time.time()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
