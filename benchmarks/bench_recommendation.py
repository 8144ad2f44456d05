"""How good are the first n warm-start configurations? An offline replay on the cross-evaluated KB.

    python benchmarks/bench_recommendation.py --db KB [--task classification|regression] [--output benchmarks/results]

After the seed cross-evaluation, a set S of configurations (every dataset's best, the library
defaults, the shared Sobol design) is evaluated on (almost) every dataset. For each query dataset
d, leave its whole family out, let a ranking rule order S using only the other datasets, and
replay the first n configurations on d using the stored CV scores: the best-so-far normalised
score (score - min_S(d)) / (max_S(d) - min_S(d)) after n = 1, 2, 5, 10 trials, averaged over
queries. Rules: the Recommender (neighbours + portfolio) for both rankings and several k, the global portfolio
alone, each library default alone, and a random order of S (the no-meta-learning baseline).
No model is fitted: this isolates the ranking rule from SMAC and from test-set noise.
``--task`` picks the task's datasets, default metric, space versions and library defaults
(``recommendation_replay.json`` for classification, ``recommendation_replay_<task>.json`` otherwise).
For reference, each dataset's own cold SMAC search of the seed build (``seed:`` run keys, in trial
order) is scored on the same normalisation after 1..50 trials, and the share of datasets whose
first 10 recommended configurations reach that search's 50-trial score is reported per rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from metalearn.knowledge_base import KnowledgeBase
from metalearn.protocol import DEFAULT_TASK, TASKS, metric_for
from metalearn.seeding import library_defaults
from metalearn.warmstart import Recommender

REPO = Path(__file__).resolve().parents[1]
BUDGETS = (1, 2, 5, 10)
COLD_BUDGETS = (1, 2, 5, 10, 20, 50)


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--task", choices=TASKS, default=DEFAULT_TASK)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--coverage", type=float, default=0.9, help="min share of datasets a config in S covers")
    parser.add_argument("--ks", default="1,3,5,10,20")
    parser.add_argument("--global-weights", default="0.25,0.5,0.75,1",
                        help="greedy ranking: share of the dataset weight spread over all datasets")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    task, metric = args.task, metric_for(args.task)
    kb = KnowledgeBase(args.db)
    rec = Recommender(kb, metric)  # only the datasets of the metric's task
    scores = rec.scores
    shared = scores.loc[:, scores.notna().mean() >= args.coverage]
    S = set(int(c) for c in shared.columns)
    low, high = shared.min(axis=1), shared.max(axis=1)
    normalised = shared.sub(low, axis=0).div((high - low).replace(0, np.nan), axis=0)
    features = kb.metafeature_matrix(rec.extractor)
    ids = [int(i) for i in shared.index if i in features.index and i in rec.info]
    defaults = library_defaults(kb, task)  # the library defaults the seed build cross-evaluates

    base_hidden = rec.hidden_configurations
    outside = frozenset(int(c) for c in scores.columns) - S
    rec.hidden_configurations = lambda excluded=(): base_hidden(excluded) | outside  # type: ignore[method-assign]

    def replay(query: int, order: list[int]) -> list[float]:
        values = [normalised.at[query, c] for c in order if c in normalised.columns]
        values = [v for v in values if pd.notna(v)] or [0.0]
        best = np.maximum.accumulate(values)
        return [float(best[min(n, len(best)) - 1]) for n in BUDGETS]

    rules: dict[str, Callable[[int, str | None, set[int]], list[int]]] = {}

    def recommended(query: int, family: str | None, k: int, ranking: str, global_weight: float = 0.0) -> list[int]:
        rec.ranking, rec.global_weight = ranking, global_weight
        report = rec.recommend(features.loc[query].to_dict(), top=max(BUDGETS), k=k, exclude_ids={query},
                               exclude_families={family} if family else ())
        return [r.configuration_id for r in report.recommendations]

    for ranking in ("percentile", "greedy"):
        for k in (int(x) for x in args.ks.split(",")):
            rules[f"{ranking}_k{k}"] = lambda q, fam, excl, k=k, ranking=ranking: recommended(q, fam, k, ranking)
    for g in (float(x) for x in args.global_weights.split(",")):
        for k in (int(x) for x in args.ks.split(",")):
            rules[f"greedy_k{k}_global{g:g}"] = lambda q, fam, excl, k=k, g=g: recommended(q, fam, k, "greedy", g)
    rules["portfolio"] = lambda q, fam, excl: [c for c, _ in rec.portfolio(excl)]
    for name, cid in defaults.items():
        rules[f"default_{name}"] = lambda q, fam, excl, cid=cid: [cid]
    rng = np.random.default_rng(0)

    results: dict[str, list[list[float]]] = {name: [] for name in [*rules, "random"]}
    for query in ids:
        family = rec.info[query][1]
        excluded = rec.excluded_ids({query}, {family} if family else ())
        for name, rule in rules.items():
            results[name].append(replay(query, rule(query, family, excluded)))
        allowed = sorted(S - rec.hidden_configurations(excluded))
        draws = [replay(query, list(rng.permutation(allowed)[:max(BUDGETS)])) for _ in range(20)]
        results["random"].append(list(np.mean(draws, axis=0)))

    summary = {name: {str(n): round(float(np.mean([r[i] for r in rows])), 4) for i, n in enumerate(BUDGETS)}
               for name, rows in results.items()}
    cold = cold_search_curves(kb, low, high, ids, metric)
    reach = {name: round(float(np.mean([r[BUDGETS.index(10)] >= cold.at[q, 50] - 1e-9
                                        for q, r in zip(ids, rows, strict=True)])), 4)
             for name, rows in results.items()}
    out = {"command": "python " + " ".join(sys.argv), "generated": datetime.now(UTC).isoformat(),
           **({} if task == DEFAULT_TASK else {"task": task, "metric": metric}),
           "n_datasets": len(ids), "n_shared_configurations": len(S),
           "mean_best_so_far_normalised_score": summary,
           "cold_smac_search": {
               "description": "each dataset's own cold SMAC search of the seed build (same CV protocol), "
                              "best-so-far after n trials on the same normalisation (can exceed 1: its configs "
                              "are mostly outside S)",
               "mean_normalised_score": {str(n): round(float(cold[n].mean()), 4) for n in COLD_BUDGETS},
               "median_normalised_score": {str(n): round(float(cold[n].median()), 4) for n in COLD_BUDGETS}},
           "share_of_datasets_where_first_10_reach_cold_at_50": reach}
    print(json.dumps(out, indent=2))
    args.output.mkdir(parents=True, exist_ok=True)
    name = "recommendation_replay.json" if task == DEFAULT_TASK else f"recommendation_replay_{task}.json"
    (args.output / name).write_text(json.dumps(out, indent=2) + "\n")


def cold_search_curves(kb: object, low: pd.Series, high: pd.Series, ids: list[int],
                       metric: str) -> pd.DataFrame:
    """Best-so-far normalised CV score of each dataset's seed-build search after n trials (rows: datasets)."""
    runs = kb.runs_frame(run_key_prefix="seed:")  # type: ignore[attr-defined]
    runs = runs[(runs["metric"] == metric) & runs["dataset_id"].isin(ids)].copy()
    runs["trial"] = runs["run_key"].str.rsplit(":", n=1).str[-1].astype(int)
    runs.loc[runs["status"] != "success", "score"] = np.nan
    rows = {}
    for dataset_id, group in runs.sort_values("trial").groupby("dataset_id"):
        span = high[dataset_id] - low[dataset_id]
        values = ((group["score"] - low[dataset_id]) / span if span > 0 else group["score"] * 0).to_numpy()
        best = np.fmax.accumulate(np.nan_to_num(values, nan=-np.inf))
        rows[int(dataset_id)] = {n: float(best[min(n, len(best)) - 1]) for n in COLD_BUDGETS}
    return pd.DataFrame.from_dict(rows, orient="index").reindex(ids)


if __name__ == "__main__":
    main()
