"""Nearest datasets in meta-feature space.

Vectors are scaled with statistics fitted on the knowledge base, robust to outliers: each
meta-feature is centred on its median and divided by its inter-quartile range (falling back
to the standard deviation, then 1), then clipped to [-CLIP, CLIP] so that one extreme feature
cannot dominate. The distance is L1 (as in auto-sklearn) averaged over the meta-features
defined for both datasets, so datasets with some undefined features stay comparable. See
``benchmarks/bench_distance.py`` for the measurement behind this choice.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metalearn.protocol import DEFAULTS

CLIP = 5.0


@dataclass(frozen=True)
class Neighbor:
    dataset_id: int
    name: str
    family: str | None
    distance: float


class RobustScaler:
    """Median / IQR scaling fitted on a meta-feature matrix (NaN-aware)."""

    def fit(self, matrix: pd.DataFrame) -> RobustScaler:
        values = matrix.to_numpy(dtype=float)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.columns_ = list(matrix.columns)
            self.center_ = np.nanmedian(values, axis=0) if len(values) else np.zeros(len(self.columns_))
            q75, q25 = (np.nanpercentile(values, [75, 25], axis=0) if len(values)
                        else (np.ones(len(self.columns_)), np.zeros(len(self.columns_))))
            scale = q75 - q25
            std = np.nanstd(values, axis=0) if len(values) else np.ones(len(self.columns_))
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, std)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        self.center_ = np.where(np.isfinite(self.center_), self.center_, 0.0)
        self.scale_ = scale
        return self

    def transform(self, matrix: pd.DataFrame) -> np.ndarray:
        values = matrix.reindex(columns=self.columns_).to_numpy(dtype=float)
        return np.clip((values - self.center_) / self.scale_, -CLIP, CLIP)

    def transform_one(self, features: Mapping[str, float | None]) -> np.ndarray:
        """One meta-feature vector (a mapping; missing or ``None`` is undefined), scaled."""
        values = np.array([_number(features.get(c)) for c in self.columns_], dtype=float)
        return np.clip((values - self.center_) / self.scale_, -CLIP, CLIP)


def _number(value: object) -> float:
    try:
        return float(value) if value is not None else np.nan  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


def l1_distances(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Mean absolute difference over the features defined in both (inf where none is shared)."""
    diff = np.abs(matrix - query[None, :])
    defined = np.isfinite(diff)
    counts = defined.sum(axis=1)
    total = np.where(defined, diff, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, total / np.maximum(counts, 1), np.inf)


def l2_distances(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Root mean squared difference over the features defined in both."""
    diff = (matrix - query[None, :]) ** 2
    defined = np.isfinite(diff)
    counts = defined.sum(axis=1)
    total = np.where(defined, diff, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, np.sqrt(total / np.maximum(counts, 1)), np.inf)


DISTANCES = {"l1": l1_distances, "l2": l2_distances}


class NeighborIndex:
    """Scaled meta-feature vectors of candidate datasets, queried by distance.

    ``matrix`` has one row per dataset id. ``info`` maps dataset id to ``(name, family, hash)``.
    """

    def __init__(self, matrix: pd.DataFrame, info: dict[int, tuple[str, str | None, str]],
                 distance: str = "l1") -> None:
        self.scaler = RobustScaler().fit(matrix)
        self.ids = np.asarray(matrix.index, dtype=int)
        self.scaled = self.scaler.transform(matrix)
        self.info = info
        self.distance = DISTANCES[distance]

    def __len__(self) -> int:
        return len(self.ids)

    def distance_map(self, features: Mapping[str, float | None]) -> dict[int, float]:
        """Distance from ``features`` to every dataset of the index."""
        distances = self.distance(self.scaler.transform_one(features), self.scaled)
        return {int(i): float(d) for i, d in zip(self.ids, distances, strict=True)}

    def query(
        self,
        features: Mapping[str, float | None],
        k: int = DEFAULTS.k,
        *,
        exclude_ids: Collection[int] = (),
        exclude_families: Collection[str] = (),
        exclude_hashes: Collection[str] = (),
    ) -> list[Neighbor]:
        """The ``k`` nearest datasets, skipping excluded ids, families and content hashes."""
        distances = self.distance(self.scaler.transform_one(features), self.scaled)
        excluded_ids, families, hashes = set(exclude_ids), set(exclude_families), set(exclude_hashes)
        found: list[Neighbor] = []
        # partial sort: only the nearest few need ordering (cheap even for 100k datasets)
        width = min(len(distances), k + len(excluded_ids) + len(hashes) + 64)
        while True:
            if width < len(distances):
                nearest = np.argpartition(distances, width - 1)[:width]
                order = nearest[np.argsort(distances[nearest], kind="stable")]
            else:
                order = np.argsort(distances, kind="stable")
            found = []
            for i in order:
                dataset_id = int(self.ids[i])
                name, family, content_hash = self.info[dataset_id]
                if (dataset_id in excluded_ids or content_hash in hashes
                        or (family is not None and family in families) or not np.isfinite(distances[i])):
                    continue
                found.append(Neighbor(dataset_id, name, family, float(distances[i])))
                if len(found) >= k:
                    return found
            if width >= len(distances):
                return found
            width = min(len(distances), width * 8)  # many exclusions (whole families): look further

    def typical_nearest_distance(self, quantile: float = 0.9) -> float:
        """``quantile`` of each dataset's distance to its nearest other dataset (a scale for "far")."""
        if len(self.ids) < 2:
            return float("inf")
        nearest = []
        sample = np.random.default_rng(0).permutation(len(self.ids))[:500]
        for i in sample:
            d = self.distance(self.scaled[i], self.scaled)
            d[i] = np.inf
            nearest.append(np.min(d))
        finite = np.asarray([d for d in nearest if np.isfinite(d)])
        return float(np.quantile(finite, quantile)) if len(finite) else float("inf")
