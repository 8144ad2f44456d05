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

import copy
import math
from collections.abc import Callable, Collection, Mapping
from functools import cache
from itertools import islice
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from metalearn.knowledge_base import KnowledgeBase, sets_by
from metalearn.metafeatures import EXTRACTOR_VERSIONS
from metalearn.protocol import DEFAULT_METRIC, DEFAULTS, task_of_metric
from metalearn.space import compatible_space_versions, default_configuration
from metalearn.warmstart.neighbors import Neighbor, NeighborIndex
from metalearn.warmstart.portfolio import greedy_selection, normalize_rows, portfolio_columns
from metalearn.warmstart.recommendation import Evidence, Recommendation, RecommendationReport

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


#: a configuration joins the global portfolio's candidates when evaluated on this share of the datasets
PORTFOLIO_COVERAGE = 0.2


class _Candidate(NamedTuple):
    """A configuration in the running, before its evidence is gathered."""

    configuration_id: int
    source: str
    utility: float


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
        """Read runs and meta-features from the knowledge base and derive everything from them."""
        self._last_run, self._last_metafeature = self.kb.latest_ids()  # before reading: nothing is missed
        self._configs: dict[int, dict[str, Any]] = {}  # configurations never change: shared by updated copies
        self._derive(self.kb.performance(self.metric, self.space_version))
        self._found_on = sets_by(self.kb.discovery(), "configuration_id", "dataset_id")
        self._pooled_by = self.kb.pooled_by(self.metric)
        matrix = self.kb.metafeature_matrix(self.extractor)
        matrix = matrix[matrix.index.isin(self.scores.index)]
        self.info = {d.id: (d.name, d.family, d.content_hash) for d in self.kb.datasets()
                     if d.id in set(matrix.index) and d.task == self.task}  # only datasets of this task
        matrix = matrix[matrix.index.isin(list(self.info))]
        self.index = NeighborIndex(matrix, self.info, self.distance) if len(matrix) else None
        self._far = None

    def _derive(self, performance: pd.DataFrame) -> None:
        """The score matrices and lookups of the hot path, from the performance table (no database access)."""
        if self.restrict_to is not None:
            performance = performance[performance["dataset_id"].isin(self.restrict_to)]
        self.performance = performance
        self.scores = (performance.pivot(index="dataset_id", columns="configuration_id", values="score")
                       .astype(float) if len(performance) else pd.DataFrame(dtype=float))
        # plain arrays and position maps: lookups in the hot path of every recommendation
        self._score_array = self.scores.to_numpy(dtype=float)
        self._pct_rows: dict[int, np.ndarray] = {}  # percentile rank within each row, computed when first read
        self._row_orders: dict[int, list[int]] = {}  # configuration ids of each row, best first, when first read
        self._row = {int(d): i for i, d in enumerate(self.scores.index)}
        self._row_ids = np.asarray(self.scores.index, dtype=int)
        self._col = {int(c): j for j, c in enumerate(self.scores.columns)}
        self._col_ids = np.asarray(self.scores.columns, dtype=int)
        self._normalized = normalize_rows(self.scores)  # per-dataset scaling: exclusions just drop rows
        self._norm_array = self._normalized.to_numpy(dtype=float)
        self._evaluated = np.isfinite(self._norm_array)
        self._coverage = self._evaluated.sum(axis=0)  # datasets each configuration was evaluated on
        # what an unknown cell counts as in the greedy ranking: the dataset's median configuration
        self._median_array = np.nan_to_num(np.nanmedian(self._norm_array, axis=1), nan=0.5) \
            if self._norm_array.size else np.zeros(len(self._row_ids))
        self.algorithms = dict(zip(performance["configuration_id"], performance["algorithm"], strict=False))
        self._portfolios: dict[frozenset[int], list[tuple[int, float]]] = {}
        self._hidden_cache: dict[frozenset[int], frozenset[int]] = {}
        self._hiding: tuple[frozenset[int], dict[int, set[int]]] | None = None
        self._seconds: dict[tuple[int, int], float] | None = None

    def recorded_seconds(self) -> dict[tuple[int, int], float]:
        """Mean seconds of the trials of each (dataset id, configuration id), built the first time it is asked."""
        if self._seconds is None:
            frame = self.performance
            keys = zip(frame["dataset_id"].astype(int), frame["configuration_id"].astype(int), strict=True)
            self._seconds = dict(zip(keys, frame["seconds"].astype(float), strict=True))
        return self._seconds

    def updated(self) -> Recommender:
        """This recommender with what the knowledge base gained since it was built, as a copy (queries in
        flight keep a consistent state), equal to a fresh build. When only runs of datasets it already knows
        (or of datasets outside the neighbour index) arrived, only those datasets' runs are read again;
        a dataset entering the neighbour index, or new meta-features of one in it, rebuild it (the scaling and
        the "far" threshold depend on every indexed dataset)."""
        runs, features, last_run, last_metafeature = self.kb.changes_since(self._last_run, self._last_metafeature)
        if not runs and not features:
            return self
        delta = self.kb.performance(self.metric, self.space_version, dataset_ids=runs) if runs else None
        scored = set() if delta is None else {int(d) for d in delta["dataset_id"]}
        if self._index_changes(scored, features):
            return self._fresh()
        new = copy.copy(self)
        new._last_run, new._last_metafeature = last_run, last_metafeature
        if delta is not None:
            kept = self.performance[~self.performance["dataset_id"].isin(list(runs))]
            new._derive(pd.concat([kept, delta], ignore_index=True) if len(kept) else delta)
            new._found_on = dict(self._found_on)
            for c, found in sets_by(self.kb.discovery(runs), "configuration_id", "dataset_id").items():
                new._found_on[c] = new._found_on.get(c, frozenset()) | found
            pooled = {c: winners - runs for c, winners in self._pooled_by.items()}
            for c, winners in self.kb.pooled_by(self.metric, runs).items():
                pooled[c] = pooled.get(c, frozenset()) | winners
            new._pooled_by = {c: winners for c, winners in pooled.items() if winners}
            new._hiding, new._hidden_cache = None, {}
        return new

    def _index_changes(self, scored: set[int], features: set[int]) -> bool:
        """Whether new scores (of the datasets ``scored``) and meta-features change the neighbour index."""
        if features & set(self.info):
            return True
        for dataset_id in (scored | features) - set(self.info):
            if self.restrict_to is not None and dataset_id not in self.restrict_to:
                continue
            has_runs = dataset_id in self._row or dataset_id in scored
            if has_runs and self.kb.metafeatures(dataset_id, self.extractor) is not None \
                    and self.kb.dataset(dataset_id).task == self.task:
                return True
        return False

    def _fresh(self) -> Recommender:
        """A new recommender with this one's settings, built from the knowledge base."""
        return Recommender(self.kb, self.metric, extractor=self.extractor, distance=self.distance,
                           portfolio_size=self.portfolio_size, min_datasets=self.min_datasets,
                           restrict_to=self.restrict_to, ranking=self.ranking, global_weight=self.global_weight)

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

    def neighbors(self, features: Mapping[str, float | None], k: int = DEFAULTS.k, *, exclude_ids: Collection[int] = (),
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
            always, by_dataset = self._hiding_index()
            allowed = set(self._row) - key
            candidates = set().union(*(by_dataset.get(d, ()) for d in key))
            hidden = {c for c in candidates if any(reasons[c].isdisjoint(allowed)
                                                   for reasons in (self._found_on, self._pooled_by) if c in reasons)}
            self._hidden_cache[key] = always | hidden
        return self._hidden_cache[key]

    def _hiding_index(self) -> tuple[frozenset[int], dict[int, set[int]]]:
        """The configurations hidden whatever is excluded (found on, or pooled because of, no dataset of the
        score matrix), and for each dataset of the matrix the configurations found on or pooled because of it:
        only those can be hidden by excluding it, so an exclusion checks a few configurations, not all."""
        if self._hiding is None:
            rows, always, by_dataset = set(self._row), set(), {}
            for mapping in (self._found_on, self._pooled_by):
                for config_id, datasets in mapping.items():
                    inside = datasets & rows
                    if not inside:
                        always.add(config_id)
                    for dataset_id in inside:
                        by_dataset.setdefault(dataset_id, set()).add(config_id)
            self._hiding = (frozenset(always), by_dataset)
        return self._hiding

    def portfolio(self, excluded: Collection[int] = ()) -> list[tuple[int, float]]:
        """The global greedy portfolio over the usable datasets, without hidden configurations."""
        key = frozenset(excluded)
        if key not in self._portfolios:
            allowed = ~np.isin(self._col_ids, list(self.hidden_configurations(key)))
            rows = self._usable_rows(key)
            dropped = [self._row[d] for d in key if d in self._row]
            counts = self._coverage - self._evaluated[dropped].sum(axis=0) if dropped else self._coverage
            # only the columns that can be candidates (same choice as on the whole matrix, far less to copy)
            columns = np.flatnonzero(allowed & (counts > 0) & (counts / max(len(rows), 1) >= PORTFOLIO_COVERAGE))
            if not len(columns):
                columns = np.flatnonzero(allowed & (counts > 0))
            chosen = portfolio_columns(self._norm_array[np.ix_(rows, columns)], self.portfolio_size)
            self._portfolios[key] = [(int(self._col_ids[columns[j]]), gain) for j, gain in chosen]
        return self._portfolios[key]

    def _usable_rows(self, excluded: Collection[int]) -> np.ndarray:
        """Positions of the score-matrix rows of the datasets that are not excluded."""
        if not excluded:
            return np.arange(len(self._row_ids))
        drop = {self._row[d] for d in excluded if d in self._row}
        return np.asarray([i for i in range(len(self._row_ids)) if i not in drop], dtype=int)

    def _configurations(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Configurations by id, read from the knowledge base once (they never change)."""
        missing = [i for i in ids if i not in self._configs]
        if missing:
            self._configs.update(self.kb.configurations(missing))
        return {i: self._configs[i] for i in ids}

    # ------------------------------------------------------------------ recommend

    def recommend(
        self,
        features: Mapping[str, float | None],
        top: int = DEFAULTS.top,
        k: int = DEFAULTS.k,
        *,
        dataset: Mapping[str, Any] | None = None,
        exclude_ids: Collection[int] = (),
        exclude_families: Collection[str] = (),
        exclude_hashes: Collection[str] = (),
        per_neighbor: int | None = None,
        allowed: Callable[[dict[str, Any]], bool] | None = None,
    ) -> RecommendationReport:
        """Ranked, deduplicated candidate pipelines for a dataset with meta-features ``features``.

        With ``allowed``, a candidate whose configuration it refuses is replaced by the next one (counted in
        ``filtered``)."""
        neighbors = self.neighbors(features, k, exclude_ids=exclude_ids, exclude_families=exclude_families,
                                   exclude_hashes=exclude_hashes)
        excluded = self.excluded_ids(exclude_ids, exclude_families, exclude_hashes)
        far = (self.n_datasets - len(excluded) < self.min_datasets or not neighbors
               or neighbors[0].distance > self.far_threshold())
        per_neighbor = per_neighbor or max(top, 5)
        from_neighbors = self._rank_neighbor_candidates(neighbors, per_neighbor, self.hidden_configurations(excluded))
        portfolio = self.portfolio(excluded)
        utilities = (self._utilities([cid for cid, _ in portfolio], neighbors) if neighbors
                     else [gain for _, gain in portfolio])
        from_portfolio = [_Candidate(cid, "portfolio", u) for (cid, _), u in zip(portfolio, utilities, strict=True)]
        first, second = (from_portfolio, from_neighbors) if far else (from_neighbors, from_portfolio)
        if self.ranking == "greedy" and not far:
            # only the first ``top`` picks are used unless a filter may refuse some of them
            first = self._greedy(from_neighbors + from_portfolio, neighbors, excluded, top if allowed is None else None)
            second = []
        if not first and not second:
            defaults = self._defaults(len(DEFAULT_ALGORITHMS[self.task]))
            kept = [r for r in defaults if allowed is None or allowed(r.configuration)][:top]
            for rank, rec in enumerate(kept, start=1):
                rec.rank = rank
            return RecommendationReport(dict(dataset or {}), dict(features), neighbors, kept, True, self.metric,
                                        filtered=len(defaults[:top]) - len(kept) if allowed else 0)
        chosen: list[_Candidate] = []
        seen: set[int] = set()
        filtered = 0
        for candidate in first + second:
            if candidate.configuration_id in seen:
                continue
            seen.add(candidate.configuration_id)
            if allowed is not None and not allowed(self._configurations([candidate.configuration_id])
                                                   [candidate.configuration_id]):
                filtered += 1
                continue
            chosen.append(candidate)
            if len(chosen) >= top:
                break
        # the evidence is gathered only for what is shown
        distances = cache(lambda: self.index.distance_map(features) if self.index is not None else {})
        scores = self._neighbor_scores([c.configuration_id for c in chosen], neighbors)[2].T.tolist()
        configs = self._configurations([c.configuration_id for c in chosen])
        recommendations = [self._scored(c, rank, configs[c.configuration_id], neighbors, found, distances, excluded)
                           for rank, (c, found) in enumerate(zip(chosen, scores, strict=True), start=1)]
        return RecommendationReport(dict(dataset or {}), dict(features), neighbors, recommendations, bool(far),
                                    self.metric, filtered=filtered)

    def _defaults(self, top: int) -> list[Recommendation]:
        """Library defaults of strong algorithms, for a knowledge base with nothing to go on."""
        recs = []
        for rank, algorithm in enumerate(DEFAULT_ALGORITHMS[self.task][:top], start=1):
            config = default_configuration(algorithm, task=self.task)
            recs.append(Recommendation(rank, algorithm, config, -1, None, None, "defaults", 0.0, []))
        return recs

    def _rank_neighbor_candidates(self, neighbors: list[Neighbor], per_neighbor: int,
                                  hidden: Collection[int] = ()) -> list[_Candidate]:
        candidates: list[int] = []
        for n in neighbors:
            best = (c for c in self._ranked_row(self._row[n.dataset_id]) if c not in hidden)
            candidates.extend(islice(best, per_neighbor))
        unique = list(dict.fromkeys(candidates))
        recs = [_Candidate(cid, "neighbors", u) for cid, u in zip(unique, self._utilities(unique, neighbors),
                                                                   strict=True)]
        return sorted(recs, key=lambda r: (-r.utility, r.configuration_id))

    def _greedy(self, candidates: list[_Candidate], neighbors: list[Neighbor],
                excluded: Collection[int] = (), picks: int | None = None) -> list[_Candidate]:
        """Order candidates as a greedy portfolio over the datasets, weighted towards the neighbours.

        Dataset weights are ``global_weight`` spread evenly over every usable dataset plus
        ``1 - global_weight`` spread over the neighbours by similarity ``1 / (distance + 0.01)``.
        Each pick maximises the weighted mean of the best normalised score reached so far (unknown
        cells count as that dataset's median configuration), so the second pick covers datasets the
        first one served badly. Once no pick adds anything (or after ``picks`` picks), utility order decides.
        """
        # utility order breaks ties and orders whatever the greedy leaves once gains run out
        unique = sorted({r.configuration_id: r for r in candidates}.values(),
                        key=lambda r: (-r.utility, r.configuration_id))
        rows = self._usable_rows(excluded)
        if not unique or not len(rows):
            return unique
        weights = np.full(len(rows), self.global_weight / len(rows))
        position = {int(d): i for i, d in enumerate(self._row_ids[rows])}
        similarity = {position[n.dataset_id]: 1.0 / (n.distance + WEIGHT_EPS) for n in neighbors
                      if n.dataset_id in position}
        if not similarity:
            weights = weights / weights.sum()
        else:
            total = sum(similarity.values())
            for i, value in similarity.items():
                weights[i] += (1 - self.global_weight) * value / total
        columns = np.asarray([self._col.get(r.configuration_id, -1) for r in unique], dtype=int)
        known = self._norm_array[np.ix_(rows, np.maximum(columns, 0))]
        known[:, columns < 0] = np.nan
        median = self._median_array[rows][:, None]
        picked = [j for j, _ in greedy_selection(np.where(np.isfinite(known), known, median),
                                                 len(unique) if picks is None else picks, weights, min_gain=1e-9)]
        rest = sorted(set(range(len(unique))) - set(picked))
        return [unique[j] for j in picked + rest]

    def _observed_elsewhere(self, config_id: int, excluded: Collection[int]) -> tuple[np.ndarray, np.ndarray]:
        """Dataset ids and scores of a configuration on the datasets that are not excluded."""
        col = self._col.get(config_id)
        if col is None:
            return np.empty(0, dtype=int), np.empty(0)
        values = self._score_array[:, col]
        keep = np.isfinite(values)
        if excluded:
            keep &= ~np.isin(self._row_ids, list(excluded))
        return self._row_ids[keep], values[keep]

    def _neighbor_scores(self, config_ids: list[int], neighbors: list[Neighbor]
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Matrix rows of the neighbours and columns of the configurations (0 where absent), and the score of each
        configuration on each neighbour (neighbours x configurations; NaN where it was not run), in one lookup."""
        rows = np.asarray([self._row.get(n.dataset_id, -1) for n in neighbors], dtype=int)
        cols = np.asarray([self._col.get(c, -1) for c in config_ids], dtype=int)
        if self._score_array.size == 0:
            return np.zeros_like(rows), np.zeros_like(cols), np.full((len(rows), len(cols)), np.nan)
        scores = self._score_array[np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))]  # a copy
        scores[(rows < 0)[:, None] | (cols < 0)[None, :]] = np.nan
        return np.maximum(rows, 0), np.maximum(cols, 0), scores

    def _ranked_row(self, row: int) -> list[int]:
        """The configuration ids one dataset ran, best first (ties by column order), computed the first time a
        recommendation reads that dataset."""
        if row not in self._row_orders:
            values = self._score_array[row]
            known = np.flatnonzero(np.isfinite(values))
            self._row_orders[row] = self._col_ids[known[np.argsort(-values[known], kind="stable")]].tolist()
        return self._row_orders[row]

    def _percentile_row(self, row: int) -> np.ndarray:
        """Percentile ranks (average ties, NaN kept; pandas' ``rank(pct=True)``) of one dataset's scores, computed
        the first time a recommendation reads that dataset: an update re-ranks nothing ahead of time."""
        if row not in self._pct_rows:
            values = self._score_array[row]
            ranks = rankdata(values, method="average", nan_policy="omit")
            self._pct_rows[row] = ranks / max(int(np.isfinite(values).sum()), 1)
        return self._pct_rows[row]

    def _utilities(self, config_ids: list[int], neighbors: list[Neighbor]) -> list[float]:
        """Each configuration's utility: the similarity-weighted mean of its percentile ranks on the neighbours
        (0.5 where it was not run)."""
        if self._score_array.size == 0 or not config_ids:
            return [0.5] * len(config_ids)
        rows, cols, scores = self._neighbor_scores(config_ids, neighbors)
        pct = np.stack([self._percentile_row(int(r)) for r in rows])[:, cols]
        weights = [1.0 / (n.distance + WEIGHT_EPS) for n in neighbors]
        weighted = np.zeros(len(config_ids))
        for weight, row_scores, row_pct in zip(weights, scores, pct, strict=True):  # neighbour by neighbour, in order
            weighted += weight * np.where(np.isfinite(row_scores), row_pct, 0.5)
        return (weighted / sum(weights)).tolist()

    def _scored(self, candidate: _Candidate, rank: int, configuration: dict[str, Any], neighbors: list[Neighbor],
                scores: list[float], distances: Callable[[], Mapping[int, float]],
                excluded: Collection[int]) -> Recommendation:
        """The recommendation shown for ``candidate``: its expected score and range on the neighbours that ran it
        (its ``scores`` there, NaN where not run), or else on every dataset that is not excluded."""
        config_id = candidate.configuration_id
        evidence = [Evidence(n.name, n.dataset_id, n.distance, score)
                    for n, score in zip(neighbors, scores, strict=True) if math.isfinite(score)]
        expected: float | None
        span: tuple[float, float] | None
        if evidence:
            w_obs = [1.0 / (e.distance + WEIGHT_EPS) for e in evidence]
            observed = [e.score for e in evidence]
            expected = sum(w * x for w, x in zip(w_obs, observed, strict=True)) / sum(w_obs)
            span = (min(observed), max(observed))
        elif len((found := self._observed_elsewhere(config_id, excluded))[0]):
            ids, scores = found
            expected, span = float(np.median(scores)), (float(scores.min()), float(scores.max()))
            for i in np.argsort(-scores, kind="stable")[:3]:
                dataset_id = int(ids[i])
                name = self.info.get(dataset_id, (str(dataset_id),))[0]
                distance = distances().get(dataset_id)
                evidence.append(Evidence(name, dataset_id, distance if distance is not None
                                         and np.isfinite(distance) else -1.0, float(scores[i])))
        else:
            expected, span = None, None
        return Recommendation(rank, self.algorithms.get(config_id, "?"), configuration, config_id, expected, span,
                              candidate.source, candidate.utility, evidence)
