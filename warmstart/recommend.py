"""Recommendations with evidence: neighbours' best pipelines, merged with a global portfolio.

Candidates are the ``per_neighbor`` best configurations of each of the ``k`` nearest datasets
plus the global portfolio (:mod:`metalearn.warmstart.portfolio`). Neighbour ``j`` at distance
``d_j`` has similarity ``w_j = 1 / (d_j + 0.01)``. Each candidate's ``utility`` is the
``w``-weighted mean of its percentile ranks on the neighbours (1 = best there, 0.5 where it
was not run); its expected score is the weighted mean of its observed scores, its range the
minimum and maximum observed on the neighbours.

Order (``ranking="greedy"``, the default): a greedy portfolio over the datasets with weights
``global_weight`` (0.5) spread evenly over all usable datasets plus ``1 - global_weight`` over
the neighbours by similarity; each pick maximises the weighted mean of the best normalised score
reached so far, so the second pick covers datasets the first one served badly (ties and the rest
by utility). ``ranking="percentile"`` orders by utility alone. The choice is measured by
``benchmarks/bench_recommendation.py`` on the cross-evaluated seed knowledge base.

When the knowledge base is small (fewer than ``min_datasets`` datasets with runs) or the
nearest neighbour is farther than the 90th percentile of nearest-neighbour distances inside
the knowledge base, portfolio configurations lead the list and neighbour candidates follow.
Configurations that only searches on excluded datasets proposed are never candidates (the
seed cross-evaluation copies them to other datasets; see :meth:`Recommender.hidden_configurations`).
Every recommendation says which source it came from; a knowledge base with no usable dataset
yields library defaults of strong algorithms (source ``defaults``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

from metalearn.knowledge_base import KnowledgeBase
from metalearn.metafeatures import EXTRACTOR_VERSIONS
from metalearn.protocol import DEFAULT_METRIC, task_of_metric
from metalearn.space import compatible_space_versions, default_configuration
from metalearn.warmstart.neighbors import Neighbor, NeighborIndex
from metalearn.warmstart.portfolio import build_portfolio, greedy_selection, normalized_matrix

WEIGHT_EPS = 0.01
#: how neighbour candidates are ordered: ``greedy`` (similarity-weighted greedy portfolio, default)
#: or ``percentile`` (weighted mean percentile rank)
RANKINGS = ("greedy", "percentile")
#: what an empty knowledge base recommends (source "defaults"), strongest first, per task
DEFAULT_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "classification": ("hist_gradient_boosting", "random_forest", "extra_trees", "logistic_regression", "svc_rbf",
                       "k_neighbors", "mlp", "lda", "gaussian_nb", "decision_tree"),
    "regression": ("hist_gradient_boosting", "random_forest", "extra_trees", "ridge", "svr_rbf", "k_neighbors",
                   "mlp", "lasso", "elastic_net", "decision_tree"),
}


@dataclass(frozen=True)
class Evidence:
    dataset: str
    dataset_id: int
    distance: float
    score: float


@dataclass
class Recommendation:
    rank: int
    algorithm: str
    configuration: dict[str, Any]
    configuration_id: int
    expected_score: float | None
    expected_range: tuple[float, float] | None
    source: str  # "neighbors" | "portfolio"
    utility: float
    evidence: list[Evidence] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expected_range"] = list(self.expected_range) if self.expected_range else None
        return data


@dataclass
class RecommendationReport:
    dataset: dict[str, Any]
    metafeatures: dict[str, float | None]
    neighbors: list[Neighbor]
    recommendations: list[Recommendation]
    far: bool
    metric: str

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "metric": self.metric,
            "far_from_knowledge_base": self.far,
            "neighbors": [{"dataset": n.name, "dataset_id": n.dataset_id, "family": n.family,
                           "distance": n.distance} for n in self.neighbors],
            "recommendations": [r.to_json() for r in self.recommendations],
        }


class Recommender:
    """Reads the knowledge base once and answers neighbour and recommendation queries.

    ``restrict_to`` limits the candidate datasets (for knowledge-base size curves).
    """

    def __init__(self, kb: KnowledgeBase, metric: str = DEFAULT_METRIC, *, extractor: str | None = None,
                 distance: str = "l1", portfolio_size: int = 16, min_datasets: int = 5,
                 restrict_to: Collection[int] | None = None, ranking: str = "greedy",
                 global_weight: float = 0.5) -> None:
        self.kb, self.metric, self.task = kb, metric, task_of_metric(metric)
        self.extractor = extractor or EXTRACTOR_VERSIONS[self.task]
        self.space_version = compatible_space_versions(self.task)
        self.distance, self.portfolio_size, self.min_datasets = distance, portfolio_size, min_datasets
        self.restrict_to = set(restrict_to) if restrict_to is not None else None
        if ranking not in RANKINGS:
            raise ValueError(f"unknown ranking {ranking!r}; choose one of {', '.join(RANKINGS)}")
        self.ranking, self.global_weight = ranking, global_weight
        self._portfolios: dict[frozenset[int], list[tuple[int, float]]] = {}
        self._far: float | None = None
        self.refresh()

    def refresh(self) -> None:
        """Reload runs and meta-features (after new runs were written)."""
        performance = self.kb.performance(self.metric, self.space_version)
        if self.restrict_to is not None:
            performance = performance[performance["dataset_id"].isin(self.restrict_to)]
        self.performance = performance
        self.scores = performance.pivot_table(index="dataset_id", columns="configuration_id", values="score")
        self.percentiles = self.scores.rank(axis=1, pct=True)
        # plain arrays and position maps: lookups in the hot path of every recommendation
        self._score_array = self.scores.to_numpy(dtype=float)
        self._pct_array = self.percentiles.to_numpy(dtype=float)
        self._row = {int(d): i for i, d in enumerate(self.scores.index)}
        self._normalized = normalized_matrix(performance)  # per-dataset scaling: exclusions just drop rows
        # what an unknown cell counts as in the greedy ranking: the dataset's median configuration
        self._median_normalized = (self._normalized.median(axis=1).fillna(0.5) if not self._normalized.empty
                                   else pd.Series(dtype=float))
        self._col = {int(c): j for j, c in enumerate(self.scores.columns)}
        self.algorithms = dict(zip(performance["configuration_id"], performance["algorithm"], strict=False))
        found = self.kb.discovery()
        self._found_on = {int(c): frozenset(int(d) for d in group)
                          for c, group in found.groupby("configuration_id")["dataset_id"]}
        self._pooled_by = self.kb.pooled_by(self.metric)
        self._hidden_cache: dict[frozenset[int], frozenset[int]] = {}
        matrix = self.kb.metafeature_matrix(self.extractor)
        matrix = matrix[matrix.index.isin(self.scores.index)]
        self.info = {d.id: (d.name, d.family, d.content_hash) for d in self.kb.datasets()
                     if d.id in set(matrix.index) and d.task == self.task}  # only datasets of this task
        matrix = matrix[matrix.index.isin(list(self.info))]
        self.index = NeighborIndex(matrix, self.info, self.distance) if len(matrix) else None
        self._portfolios.clear()
        self._far = None

    # ------------------------------------------------------------------ pieces

    @property
    def n_datasets(self) -> int:
        return 0 if self.index is None else len(self.index)

    def far_threshold(self) -> float:
        if self._far is None:
            self._far = self.index.typical_nearest_distance(0.9) if self.index is not None else float("inf")
        return self._far

    def excluded_ids(self, exclude_ids: Collection[int] = (), exclude_families: Collection[str] = (),
                     exclude_hashes: Collection[str] = ()) -> set[int]:
        families, hashes = set(exclude_families), set(exclude_hashes)
        ids = set(exclude_ids)
        for dataset_id, (_, family, content_hash) in self.info.items():
            if (family is not None and family in families) or content_hash in hashes:
                ids.add(dataset_id)
        return ids

    def neighbors(self, features: Mapping[str, float | None], k: int = 5, *, exclude_ids: Collection[int] = (),
                  exclude_families: Collection[str] = (), exclude_hashes: Collection[str] = ()) -> list[Neighbor]:
        if self.index is None:
            return []
        return self.index.query(features, k, exclude_ids=exclude_ids, exclude_families=exclude_families,
                                exclude_hashes=exclude_hashes)

    def hidden_configurations(self, excluded: Collection[int] = ()) -> frozenset[int]:
        """Configurations found only on excluded datasets (or outside ``restrict_to``), and configurations
        pooled for cross-evaluation only because they were best on excluded datasets.

        The cross-evaluation copies every dataset's best configurations to all others, so a held-out
        dataset's own winner would otherwise come back through its neighbours' rows, even when another
        search happened to propose it once.
        """
        key = frozenset(excluded)
        if key not in self._hidden_cache:
            allowed = set(self._row) - key
            hidden = {c for c, found in self._found_on.items() if found.isdisjoint(allowed)}
            hidden |= {c for c, winners in self._pooled_by.items() if winners.isdisjoint(allowed)}
            self._hidden_cache[key] = frozenset(hidden)
        return self._hidden_cache[key]

    def portfolio(self, excluded: Collection[int] = ()) -> list[tuple[int, float]]:
        key = frozenset(excluded)
        if key not in self._portfolios:
            hidden = self.hidden_configurations(key)
            matrix = self._normalized
            if hidden and not matrix.empty:
                matrix = matrix.loc[:, ~matrix.columns.isin(list(hidden))]
            self._portfolios[key] = build_portfolio(matrix, self.portfolio_size, exclude_datasets=key,
                                                    min_coverage=0.2)
        return self._portfolios[key]

    # ------------------------------------------------------------------ recommend

    def recommend(
        self,
        features: Mapping[str, float | None],
        top: int = 5,
        k: int = 5,
        *,
        dataset: Mapping[str, Any] | None = None,
        exclude_ids: Collection[int] = (),
        exclude_families: Collection[str] = (),
        exclude_hashes: Collection[str] = (),
        per_neighbor: int | None = None,
    ) -> RecommendationReport:
        """Ranked, deduplicated candidate pipelines for a dataset with meta-features ``features``."""
        neighbors = self.neighbors(features, k, exclude_ids=exclude_ids, exclude_families=exclude_families,
                                   exclude_hashes=exclude_hashes)
        excluded = self.excluded_ids(exclude_ids, exclude_families, exclude_hashes)
        far = (self.n_datasets - len(excluded) < self.min_datasets or not neighbors
               or neighbors[0].distance > self.far_threshold())
        per_neighbor = per_neighbor or max(top, 5)
        distances = self.index.distance_map(features) if self.index is not None else {}
        from_neighbors = self._rank_neighbor_candidates(neighbors, per_neighbor, self.hidden_configurations(excluded))
        from_portfolio = [self._scored(cid, neighbors, "portfolio", gain, distances, excluded)
                          for cid, gain in self.portfolio(excluded)]
        first, second = (from_portfolio, from_neighbors) if far else (from_neighbors, from_portfolio)
        if self.ranking == "greedy" and not far:
            first, second = self._greedy(from_neighbors + from_portfolio, neighbors, excluded), []
        if not first and not second:
            return RecommendationReport(dict(dataset or {}), dict(features), neighbors, self._defaults(top), True,
                                        self.metric)
        chosen: list[Recommendation] = []
        seen: set[int] = set()
        for rec in first + second:
            if rec.configuration_id in seen:
                continue
            seen.add(rec.configuration_id)
            chosen.append(rec)
            if len(chosen) >= top:
                break
        configs = self.kb.configurations(r.configuration_id for r in chosen)
        for rank, rec in enumerate(chosen, start=1):
            rec.rank, rec.configuration = rank, configs[rec.configuration_id]
        return RecommendationReport(dict(dataset or {}), dict(features), neighbors, chosen, bool(far), self.metric)

    def _defaults(self, top: int) -> list[Recommendation]:
        """Library defaults of strong algorithms, for a knowledge base with nothing to go on."""
        recs = []
        for rank, algorithm in enumerate(DEFAULT_ALGORITHMS[self.task][:top], start=1):
            config = default_configuration(algorithm, task=self.task)
            recs.append(Recommendation(rank, algorithm, config, -1, None, None, "defaults", 0.0, []))
        return recs

    def _rank_neighbor_candidates(self, neighbors: list[Neighbor], per_neighbor: int,
                                  hidden: Collection[int] = ()) -> list[Recommendation]:
        candidates: list[int] = []
        columns = self.scores.columns
        for n in neighbors:
            values = self._score_array[self._row[n.dataset_id]]
            order = np.argsort(np.where(np.isfinite(values), -values, np.inf), kind="stable")
            best = (int(columns[j]) for j in order if np.isfinite(values[j]) and int(columns[j]) not in hidden)
            candidates.extend(islice(best, per_neighbor))
        recs = [self._scored(cid, neighbors, "neighbors") for cid in dict.fromkeys(candidates)]
        return sorted(recs, key=lambda r: (-r.utility, r.configuration_id))

    def _greedy(self, candidates: list[Recommendation], neighbors: list[Neighbor],
                excluded: Collection[int] = ()) -> list[Recommendation]:
        """Order candidates as a greedy portfolio over the datasets, weighted towards the neighbours.

        Dataset weights are ``global_weight`` spread evenly over every usable dataset plus
        ``1 - global_weight`` spread over the neighbours by similarity ``1 / (distance + 0.01)``.
        Each pick maximises the weighted mean of the best normalised score reached so far (unknown
        cells count as that dataset's median configuration), so the second pick covers datasets the
        first one served badly. Once no pick adds anything, utility order decides.
        """
        # utility order breaks ties and orders whatever the greedy leaves once gains run out
        unique = sorted({r.configuration_id: r for r in candidates}.values(),
                        key=lambda r: (-r.utility, r.configuration_id))
        usable = self._normalized.index[~self._normalized.index.isin(list(excluded))]
        if not unique or usable.empty:
            return unique
        weights = pd.Series(self.global_weight / len(usable), index=usable)
        similarity = pd.Series({n.dataset_id: 1.0 / (n.distance + WEIGHT_EPS) for n in neighbors
                                if n.dataset_id in weights.index}, dtype=float)
        if similarity.empty:
            weights = weights / weights.sum()
        else:
            weights = weights.add((1 - self.global_weight) * similarity / similarity.sum(), fill_value=0.0)
        known = self._normalized.reindex(index=usable, columns=[r.configuration_id for r in unique])
        known = known.to_numpy(dtype=float)
        median = self._median_normalized.reindex(usable).to_numpy(dtype=float)[:, None]
        picked = [j for j, _ in greedy_selection(np.where(np.isfinite(known), known, median), len(unique),
                                                 weights.to_numpy(), min_gain=1e-9)]
        rest = sorted(set(range(len(unique))) - set(picked))
        return [unique[j] for j in picked + rest]

    def _observed_elsewhere(self, config_id: int, excluded: Collection[int]) -> pd.Series:
        column = self.scores[config_id].dropna()
        return column[~column.index.isin(list(excluded))]

    def _scored(self, config_id: int, neighbors: list[Neighbor], source: str, gain: float = 0.0,
                distances: Mapping[int, float] | None = None, excluded: Collection[int] = ()) -> Recommendation:
        weights, pct, evidence = [], [], []
        col = self._col.get(config_id)
        for n in neighbors:
            weights.append(1.0 / (n.distance + WEIGHT_EPS))
            row = self._row.get(n.dataset_id)
            score = self._score_array[row, col] if row is not None and col is not None else np.nan
            if np.isfinite(score):
                pct.append(float(self._pct_array[row, col]))
                evidence.append(Evidence(n.name, n.dataset_id, n.distance, float(score)))
            else:
                pct.append(0.5)
        utility = float(np.average(pct, weights=weights)) if weights else gain
        if evidence:
            w_obs = [1.0 / (e.distance + WEIGHT_EPS) for e in evidence]
            observed = [e.score for e in evidence]
            expected: float | None = float(np.average(observed, weights=w_obs))
            span: tuple[float, float] | None = (float(min(observed)), float(max(observed)))
        elif config_id in self.scores.columns and self._observed_elsewhere(config_id, excluded).size:
            column = self._observed_elsewhere(config_id, excluded)
            expected, span = float(column.median()), (float(column.min()), float(column.max()))
            for dataset_id, score in column.sort_values(ascending=False).head(3).items():
                name = self.info.get(int(dataset_id), (str(dataset_id),))[0]
                distance = (distances or {}).get(int(dataset_id))
                evidence.append(Evidence(name, int(dataset_id), distance if distance is not None
                                         and np.isfinite(distance) else -1.0, float(score)))
        else:
            expected, span = None, None
        return Recommendation(0, self.algorithms.get(config_id, "?"), {}, config_id, expected, span, source,
                              utility, evidence)
