"""Which meta-feature distance finds neighbours whose winners transfer? A measurement on the KB.

    python benchmarks/bench_distance.py --db KB [--output benchmarks/results]

Every seed search starts with the same Sobol initial design, so the knowledge base holds a set S
of configurations evaluated on (almost) every dataset (plus the cross-evaluation, if run). For each
query dataset d, leave its whole family out, find its nearest dataset n under a distance, take n's
best configuration within S, and score it on d as a normalised score within S:
(score(d, c) - min_S(d)) / (max_S(d) - min_S(d)); 1 = the best choice S offered for d.
Averaged over queries this is the transfer quality of the distance; compared against a random
neighbour (the no-meta-learning baseline) and the oracle (1.0).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from metalearn.knowledge_base import KnowledgeBase
from metalearn.metafeatures import EXTRACTOR_VERSION
from metalearn.warmstart import Recommender
from metalearn.warmstart.neighbors import NeighborIndex

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--coverage", type=float, default=0.9, help="min share of datasets a config in S covers")
    args = parser.parse_args()

    kb = KnowledgeBase(args.db)
    perf = kb.performance("balanced_accuracy")
    scores = perf.pivot_table(index="dataset_id", columns="configuration_id", values="score")
    shared = scores.loc[:, scores.notna().mean() >= args.coverage]
    matrix = kb.metafeature_matrix(EXTRACTOR_VERSION)
    ids = [i for i in shared.index if i in matrix.index]
    shared, matrix = shared.loc[ids], matrix.loc[ids]
    info = {d.id: (d.name, d.family, d.content_hash) for d in kb.datasets() if d.id in set(ids)}
    low, high = shared.min(axis=1), shared.max(axis=1)
    normalised = shared.sub(low, axis=0).div((high - low).replace(0, np.nan), axis=0)

    # a configuration proposed only by searches on the query's family would leak its winner back
    # through the cross-evaluation: it is not a candidate for that query (the Recommender's own rule)
    recommender = Recommender(kb, "balanced_accuracy")
    family_of = {i: info[i][1] or f"#{i}" for i in ids}

    @functools.cache
    def allowed_for(family: str) -> list[int]:
        hidden = recommender.hidden_configurations({i for i in ids if family_of[i] == family})
        return [c for c in shared.columns if c not in hidden]

    def transfer(query: int, neighbour: int) -> float:
        best = shared.loc[neighbour, allowed_for(family_of[query])].idxmax()
        return float(normalised.at[query, best]) if pd.notna(normalised.at[query, best]) else np.nan

    results: dict[str, list[float]] = {"l1": [], "l2": [], "random": []}
    rng = np.random.default_rng(0)
    indexes = {name: NeighborIndex(matrix, info, name) for name in ("l1", "l2")}
    for query in ids:
        family = info[query][1]
        features = matrix.loc[query].to_dict()
        for name, index in indexes.items():
            found = index.query(features, 1, exclude_ids={query}, exclude_families={family} if family else ())
            if found:
                results[name].append(transfer(query, found[0].dataset_id))
        others = [i for i in ids if i != query and info[i][1] != family]
        if others:
            results["random"].append(np.nanmean([transfer(query, int(o)) for o in rng.choice(others, 10)]))
    summary = {name: {"mean_normalised_score": round(float(np.nanmean(v)), 4),
                      "median": round(float(np.nanmedian(v)), 4), "n": int(np.sum(~np.isnan(v)))}
               for name, v in results.items()}
    out = {"command": "python " + " ".join(sys.argv), "generated": datetime.now(UTC).isoformat(),
           "n_datasets": len(ids), "n_shared_configurations": int(shared.shape[1]), "results": summary}
    print(json.dumps(out, indent=2))
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "distance.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
