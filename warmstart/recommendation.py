"""What a recommendation says: the ranked pipelines with their evidence, as :class:`~.recommend.Recommender`
returns them and ``metalearn recommend --json`` / ``POST /v1/recommendations`` show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metalearn.warmstart.neighbors import Neighbor


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
        """The fields in declaration order (built directly: ``dataclasses.asdict`` deep-copies, and was most of
        a recommendation request's time)."""
        return {"rank": self.rank, "algorithm": self.algorithm, "configuration": dict(self.configuration),
                "configuration_id": self.configuration_id, "expected_score": self.expected_score,
                "expected_range": list(self.expected_range) if self.expected_range else None,
                "source": self.source, "utility": self.utility,
                "evidence": [{"dataset": e.dataset, "dataset_id": e.dataset_id, "distance": e.distance,
                              "score": e.score} for e in self.evidence]}


@dataclass
class RecommendationReport:
    dataset: dict[str, Any]
    metafeatures: dict[str, float | None]
    neighbors: list[Neighbor]
    recommendations: list[Recommendation]
    far: bool
    metric: str
    #: candidates left out because the search's restriction (--include / --exclude / --interpretable) forbids them
    filtered: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "metric": self.metric,
            "far_from_knowledge_base": self.far,
            "neighbors": [{"dataset": n.name, "dataset_id": n.dataset_id, "family": n.family,
                           "distance": n.distance} for n in self.neighbors],
            "recommendations": [r.to_json() for r in self.recommendations],
            "filtered": self.filtered,
        }
