"""Response bodies of ``GET /v1/knowledge-base/datasets`` and ``GET /v1/knowledge-base/map`` (the studio's
knowledge-base page); the other bodies of the API are in :mod:`metalearn.api.schemas`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from metalearn.api.schemas import DatasetSummary


class KnowledgeBaseDataset(DatasetSummary):
    """A dataset of the knowledge base with the best pipeline observed on it (the task's default metric)."""

    metric: str = Field(description="Metric of best_score: the default metric of the dataset's task.")
    best_score: float | None = Field(description="Best mean score of a configuration on it (null: no successful run).")
    best_algorithm: str | None
    best_configuration_id: int | None
    best_pipeline: str | None = Field(description="Estimator and its preprocessing, e.g. 'random_forest + pca'.")


class KnowledgeBaseDatasetList(BaseModel):
    datasets: list[KnowledgeBaseDataset]
    total: int = Field(description="Datasets matching the query (before limit and offset).")
    limit: int
    offset: int


class MapPoint(BaseModel):
    dataset_id: int
    name: str
    family: str | None
    best_algorithm: str | None
    best_score: float | None
    x: float
    y: float


class MapQuery(BaseModel):
    dataset_id: int
    name: str
    family: str | None
    x: float
    y: float


class MetaFeatureMap(BaseModel):
    """A 2-D PCA projection of the scaled meta-feature vectors the neighbour search compares."""

    task: str
    metric: str
    extractor: str
    explained_variance: list[float] = Field(description="Share of the scaled vectors' variance on each axis.")
    points: list[MapPoint]
    query: MapQuery | None = Field(description="The dataset of ?dataset_id= placed on the map (null without it).")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "task": "classification", "metric": "balanced_accuracy", "extractor": "pymfe-0.4.4/1",
        "explained_variance": [0.31, 0.14],
        "points": [{"dataset_id": 7, "name": "wdbc", "family": "wdbc", "best_algorithm": "random_forest",
                    "best_score": 0.97, "x": -1.2, "y": 0.4}],
        "query": {"dataset_id": 42, "name": "breast_cancer", "family": None, "x": -1.1, "y": 0.5}}]})
