"""What the web studio needs beyond the other endpoints, computed from the recommender the server already keeps.

* :func:`dataset_rows`: every dataset of the knowledge base with its best observed score and pipeline (for the
  searchable table of ``GET /v1/knowledge-base/datasets``);
* :class:`MapService`: the 2-D map of the meta-feature space (``GET /v1/knowledge-base/map``): the vectors the
  neighbour search uses (robust-scaled and clipped by :class:`metalearn.warmstart.neighbors.NeighborIndex`),
  undefined features at the median (0 after scaling), projected with scikit-learn's PCA. The projection is
  cached per recommender, i.e. per knowledge-base state (:class:`.services.RecommendationService` rebuilds the
  recommender when runs or meta-features were added), and a dataset that is not in it (a fresh upload) is
  placed with the same scaler and PCA.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from metalearn.api.services import RecommendationService
from metalearn.knowledge_base import DatasetInfo, rank_configurations
from metalearn.protocol import DEFAULT_METRICS, TASKS, to_jsonable
from metalearn.warmstart.recommend import Recommender

#: configuration keys naming the estimator, by task
ESTIMATOR_KEYS = ("classifier", "regressor")


def pipeline_summary(config: dict[str, Any], algorithm: str) -> str:
    """A short, human-readable name of a pipeline: estimator, then the preprocessing that is not ``none``."""
    parts = [algorithm]
    for key, label in (("feature_preprocessing", ""), ("scaling", " scaling"), ("encoding", " encoding")):
        value = config.get(key)
        if value not in (None, "none"):
            parts.append(f"{value}{label}")
    return " + ".join(parts)


@dataclass(frozen=True)
class BestRuns:
    """Best observed score per dataset under one metric, with the configuration that achieved it."""

    metric: str
    score: dict[int, float]
    configuration: dict[int, int]
    algorithm: dict[int, str]


def best_runs(recommender: Recommender) -> BestRuns:
    """Per dataset of the recommender's performance matrix: the best mean score (rank 0 of
    :func:`~metalearn.knowledge_base.rank_configurations`) and its configuration; datasets without a finite
    best score are left out."""
    ranked = rank_configurations(recommender.performance)
    best = ranked[(ranked["rank"] == 0) & np.isfinite(ranked["score"].astype(float))]
    score = {int(d): float(s) for d, s in zip(best["dataset_id"], best["score"], strict=True)}
    configuration = {int(d): int(c) for d, c in zip(best["dataset_id"], best["configuration_id"], strict=True)}
    algorithm = {int(d): str(a) for d, a in zip(best["dataset_id"], best["algorithm"], strict=True)}
    return BestRuns(recommender.metric, score, configuration, algorithm)


def dataset_rows(recommendations: RecommendationService, infos: list[DatasetInfo]) -> list[dict[str, Any]]:
    """The studio's table rows: each dataset with its best score (the task's default metric) and pipeline."""
    best = {task: best_runs(recommendations.recommender(DEFAULT_METRICS[task])[1])
            for task in {info.task for info in infos}}
    config_ids = {c for b in best.values() for c in b.configuration.values()}
    configs = recommendations.kb.configurations(config_ids) if config_ids else {}
    rows = []
    for info in infos:
        b = best[info.task]
        config_id = b.configuration.get(info.id)
        algorithm = b.algorithm.get(info.id)
        rows.append(info.to_json() | {
            "metric": b.metric, "best_score": b.score.get(info.id), "best_algorithm": algorithm,
            "best_configuration_id": config_id,
            "best_pipeline": None if config_id is None else pipeline_summary(configs.get(config_id, {}), algorithm),
        })
    return rows


def filter_datasets(infos: list[DatasetInfo], query: str | None, task: str | None) -> list[DatasetInfo]:
    """Datasets whose name, family or source contains ``query`` (case-insensitive), of ``task`` if given."""
    needle = (query or "").strip().lower()
    return [info for info in infos if (task is None or info.task == task)
            and (not needle or any(needle in (v or "").lower() for v in (info.name, info.family, info.source)))]


@dataclass(frozen=True)
class Projection:
    """A fitted 2-D PCA over one recommender's scaled meta-feature vectors, with the points it places."""

    recommender: Recommender
    index: Any  # the recommender's NeighborIndex and score matrix when projected: the cache key
    scores: Any
    pca: PCA | None
    points: list[dict[str, Any]]

    def current(self, recommender: Recommender) -> bool:
        """Whether this projection was made from ``recommender`` in its present state."""
        return (self.recommender is recommender and self.index is recommender.index
                and self.scores is recommender.scores)

    def place(self, features: dict[str, float | None]) -> tuple[float, float] | None:
        """Coordinates of a meta-feature vector on this map (``None`` when the map is empty)."""
        if self.pca is None:
            return None
        row = self.index.scaler.transform(pd.DataFrame([pd.Series(features, dtype=float)]))
        x, y = self.pca.transform(np.nan_to_num(row, nan=0.0))[0]
        return float(x), float(y)


def project(recommender: Recommender) -> Projection:
    """PCA of the recommender's neighbour index to two components; every dataset a point."""
    index = recommender.index
    if index is None or len(index) == 0:
        return Projection(recommender, index, recommender.scores, None, [])
    vectors = np.nan_to_num(index.scaled, nan=0.0)
    pca = PCA(n_components=min(2, *vectors.shape), random_state=0).fit(vectors)
    coords = pca.transform(vectors)
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(coords), 2 - coords.shape[1]))])
    best = best_runs(recommender)
    points = []
    for dataset_id, (x, y) in zip(index.ids, coords, strict=True):
        dataset_id = int(dataset_id)
        name, family, _ = index.info[dataset_id]
        points.append({"dataset_id": dataset_id, "name": name, "family": family,
                       "best_algorithm": best.algorithm.get(dataset_id), "best_score": best.score.get(dataset_id),
                       "x": float(x), "y": float(y)})
    return Projection(recommender, index, recommender.scores, pca, points)


class MapService:
    """The meta-feature map per task, projected once per knowledge-base state (per recommender build)."""

    def __init__(self, recommendations: RecommendationService) -> None:
        self.recommendations = recommendations
        self._lock = threading.Lock()
        self._cache: dict[str, Projection] = {}

    def projection(self, task: str) -> Projection:
        metric = DEFAULT_METRICS[task]
        _, recommender = self.recommendations.recommender(metric)
        cached = self._cache.get(task)
        if cached is not None and cached.current(recommender):
            return cached
        projection = project(recommender)
        with self._lock:
            self._cache[task] = projection
        return projection

    def map(self, task: str | None = None, dataset: DatasetInfo | None = None) -> dict[str, Any]:
        """The body of ``GET /v1/knowledge-base/map``: points, explained variance and, with ``dataset`` (whose task
        then sets the map's), that dataset's position (``query``), computed from its stored meta-features."""
        task = dataset.task if dataset is not None else (task or TASKS[0])
        projection = self.projection(task)
        query = None
        if dataset is not None:
            features = self.recommendations.kb.metafeatures(dataset.id, projection.recommender.extractor)
            place = projection.place(features) if features is not None else None
            if place is not None:
                query = {"dataset_id": dataset.id, "name": dataset.name, "family": dataset.family, "x": place[0],
                         "y": place[1]}
        variance = [] if projection.pca is None else [float(v) for v in projection.pca.explained_variance_ratio_]
        return to_jsonable({"task": task, "metric": projection.recommender.metric,
                            "extractor": projection.recommender.extractor, "explained_variance": variance,
                            "points": projection.points, "query": query})
