"""Request and response bodies of the HTTP API (pydantic v2), with the examples shown in ``/docs``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from metalearn.mitigation import CONSTRAINTS
from metalearn.protocol import DEFAULTS, METRICS, ORIGINS, RUN_STATUSES, SEARCH_STATUSES, STRATEGIES, TASKS

#: the largest values a request may ask for
MAX_TRIALS = 1000
MAX_TIME_BUDGET = 24 * 3600.0
MAX_TRIAL_TIME_LIMIT = 3600.0
MAX_ID = 2**62
MAX_COLUMN_NAME = 1000

Metric = Literal[tuple(METRICS)]
Strategy = Literal[tuple(STRATEGIES)]
Task = Literal[tuple(TASKS)]
DatasetId = Field(ge=1, le=MAX_ID, description="Id of a dataset in the knowledge base.", examples=[42])

EXAMPLE_CONFIG = {"class_weight": "none", "classifier": "random_forest", "encoding": "one_hot",
                  "encoding:one_hot:min_frequency": 0.01, "feature_preprocessing": "none",
                  "imputation:categorical": "constant", "imputation:numeric": "median",
                  "random_forest:bootstrap": True, "random_forest:criterion": "gini",
                  "random_forest:max_features": "sqrt", "random_forest:min_samples_leaf": 1,
                  "random_forest:min_samples_split": 2, "random_forest:n_estimators": 100, "scaling": "standard"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------- errors


class ErrorResponse(BaseModel):
    detail: str = Field(description="What is wrong, in one sentence.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "no dataset with id 7"}]})


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    detail: str = Field(description="Every problem found, joined into one line.")
    errors: list[ValidationErrorItem] = Field(description="The same problems, one per item.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "detail": "body.n_trials: Input should be greater than or equal to 1",
        "errors": [{"loc": ["body", "n_trials"], "msg": "Input should be greater than or equal to 1",
                    "type": "greater_than_equal"}]}]})


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error status codes."""
    text = {400: "The input cannot be used (the detail says why).", 401: "Missing or invalid API key.",
            404: "No such dataset or search.", 409: "Not possible in the current state.",
            413: "Upload or request body too large.", 422: "The request body or parameters are malformed.",
            429: "The search queue is full; retry later.", 503: "The service is unavailable."}
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        model = ValidationErrorResponse if code == 422 else ErrorResponse
        out[code] = {"model": model, "description": text.get(code, "Error.")}
    return out


# --------------------------------------------------------------------------------------------- health & stats


class SourceCounts(BaseModel):
    datasets: int
    runs: int


class KnowledgeBaseStats(BaseModel):
    """Exactly the fields of ``KnowledgeBase.stats()`` (and ``metalearn kb stats --json``)."""

    datasets: int
    runs: int
    configurations: int
    datasets_with_metafeatures: int
    searches: int
    datasets_linked_to_openml: int
    by_source: dict[str, SourceCounts]
    runs_by_status: dict[str, int]
    runs_by_origin: dict[str, int]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "datasets": 120, "runs": 9800, "configurations": 7100, "datasets_with_metafeatures": 120, "searches": 130,
        "datasets_linked_to_openml": 60, "by_source": {"manifest": {"datasets": 120, "runs": 9800}},
        "runs_by_status": {"success": 9500, "crash": 200, "timeout": 100},
        "runs_by_origin": {"smac_initial": 2400, "smac": 7400}}]})


class KnowledgeBaseSummary(BaseModel):
    backend: str = Field(description="Database backend, e.g. sqlite or postgresql.")
    datasets: int
    runs: int
    searches: int


class SearchCapacity(BaseModel):
    workers: int
    running: int
    queued: int
    queue_limit: int


class UploadLimits(BaseModel):
    max_upload_bytes: int
    max_rows: int
    max_columns: int
    max_cells: int
    max_predict_rows: int


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str
    auth_required: bool
    knowledge_base: KnowledgeBaseSummary
    searches: SearchCapacity
    limits: UploadLimits
    uptime_seconds: float

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "version": "0.1.0", "auth_required": True,
        "knowledge_base": {"backend": "sqlite", "datasets": 120, "runs": 9800, "searches": 130},
        "searches": {"workers": 1, "running": 0, "queued": 0, "queue_limit": 8},
        "limits": {"max_upload_bytes": 104857600, "max_rows": 1000000, "max_columns": 2000,
                   "max_cells": 50000000, "max_predict_rows": 10000},
        "uptime_seconds": 12.5}]})


# --------------------------------------------------------------------------------------------- datasets


class DatasetSummary(BaseModel):
    id: int
    name: str
    source: str
    family: str | None
    openml_id: int | None
    target: str | None
    n_rows: int
    n_features: int
    n_classes: int | None
    n_categorical: int
    content_hash: str
    task: str = "classification"
    stored: bool = Field(description="Whether this server holds the table, i.e. searches can run on it "
                                     "(datasets from the shipped seed have meta-features and runs only).")


class DatasetList(BaseModel):
    datasets: list[DatasetSummary]
    total: int
    limit: int
    offset: int


class DatasetDetail(DatasetSummary):
    extractor: str = Field(description="Meta-feature extractor version.")
    meta_features: dict[str, float | None] | None = Field(
        description="Meta-feature vector (null when not extracted with the current extractor).")


class DatasetCreated(BaseModel):
    id: int = Field(examples=[42])
    name: str = Field(examples=["breast_cancer"])
    n_rows: int = Field(examples=[569])
    n_features: int = Field(examples=[30])
    n_classes: int | None = Field(examples=[2], description="Classes of the target (null for regression).")
    task: str = Field("classification", examples=["classification"], description="classification or regression.")
    task_reason: str | None = Field(None, description="Why: the detection's reason, or \"given\".")
    target: str = Field(examples=["diagnosis"])
    categorical: list[str] = Field(examples=[[]])
    content_hash: str
    existing: bool = Field(description="True when the same data (same content hash) was registered before.")
    meta_features: dict[str, float | None]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 42, "name": "breast_cancer", "n_rows": 569, "n_features": 30, "n_classes": 2, "target": "diagnosis",
        "categorical": [], "content_hash": "6f1c…", "existing": False,
        "meta_features": {"simple.log_n_rows": 6.34, "simple.n_classes": 2.0, "leaves": 11.0}}]})


class DatasetDeleted(BaseModel):
    id: int
    table_deleted: bool = Field(description="False while another identity that uploaded the table keeps it.")
    models_deleted: list[int] = Field(description="Searches whose model file and reports were deleted.")
    detail: str


# --------------------------------------------------------------------------------------------- recommendations


class UserControl(Strict):
    """What a search (and its recommendations) may use, as ``--include`` / ``--exclude`` / ``--interpretable``."""

    include: list[str] = Field(default_factory=list, max_length=100, description="Only these estimator families "
                               "and feature preprocessors (names of the task's space, e.g. logistic_regression, "
                               "rfe); an unknown name is a 400 that lists the valid ones.")
    exclude: list[str] = Field(default_factory=list, max_length=100,
                               description="Never these estimator families and feature preprocessors.")
    interpretable: bool = Field(False, description="Only linear models, a decision tree of depth <= 5 and naive "
                                                   "Bayes, on the original features (no PCA / polynomial features).")


class RecommendationRequest(UserControl):
    dataset_id: int = DatasetId
    top: int = Field(DEFAULTS.top, ge=1, le=100, description="Number of pipelines to recommend.")
    k: int = Field(DEFAULTS.k, ge=1, le=100, description="Number of nearest datasets consulted.")
    metric: Metric | None = Field(None, description="Metric the evidence is measured in (default: the dataset's "
                                                    "task's, balanced_accuracy or r2).")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"dataset_id": 42, "top": 5, "k": 5}]})


class NeighborOut(BaseModel):
    dataset: str
    dataset_id: int
    family: str | None
    distance: float


class EvidenceOut(BaseModel):
    dataset: str
    dataset_id: int
    distance: float = Field(description="Meta-feature distance (-1 when unknown).")
    score: float


class RecommendationOut(BaseModel):
    rank: int
    algorithm: str
    configuration: dict[str, Any]
    configuration_id: int
    expected_score: float | None
    expected_range: list[float] | None
    source: str = Field(description="neighbors or portfolio")
    utility: float
    evidence: list[EvidenceOut]


class RecommendationReport(BaseModel):
    """The body of ``metalearn recommend --json``."""

    dataset: dict[str, Any]
    metric: str
    far_from_knowledge_base: bool
    neighbors: list[NeighborOut]
    recommendations: list[RecommendationOut]
    filtered: int = Field(0, description="Candidates left out by include / exclude / interpretable (replaced by the "
                                         "next ones).")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "dataset": {"name": "breast_cancer", "n_rows": 569, "n_features": 30, "n_classes": 2, "n_categorical": 0,
                    "content_hash": "6f1c…", "source": "user", "family": None, "openml_id": None},
        "metric": "balanced_accuracy", "far_from_knowledge_base": False,
        "neighbors": [{"dataset": "wdbc", "dataset_id": 7, "family": "wdbc", "distance": 0.12}],
        "recommendations": [{"rank": 1, "algorithm": "random_forest", "configuration": EXAMPLE_CONFIG,
                             "configuration_id": 311, "expected_score": 0.95, "expected_range": [0.93, 0.97],
                             "source": "neighbors", "utility": 0.97,
                             "evidence": [{"dataset": "wdbc", "dataset_id": 7, "distance": 0.12, "score": 0.96}]}]}]})


# --------------------------------------------------------------------------------------------- searches


class SearchRequest(UserControl):
    dataset_id: int = DatasetId
    strategy: Strategy = Field(DEFAULTS.strategy,
                               description="warm (meta-learned initial design), cold (SMAC's default), random, or "
                                           "the multi-fidelity hyperband / successive-halving (warm-started too).")
    n_trials: int | None = Field(DEFAULTS.n_trials, ge=1, le=MAX_TRIALS, description="Trials (null: time budget only).")
    time_budget: float | None = Field(None, gt=0, le=MAX_TIME_BUDGET, description="Wall-clock budget in seconds.")
    metric: Metric | None = Field(None, description="Metric to optimise (default: balanced_accuracy for "
                                                    "classification, r2 for regression; errors are negated).")
    seed: int = Field(DEFAULTS.seed, ge=0, le=2**31 - 1)
    trial_time_limit: float | None = Field(None, gt=0, le=MAX_TRIAL_TIME_LIMIT,
                                           description="Seconds allowed per trial (default: the server's).")
    folds: int = Field(DEFAULTS.folds, ge=2, le=10, description="Cross-validation folds per trial.")
    max_rows: int = Field(DEFAULTS.max_rows, ge=50, le=1_000_000, description="Stratified row cap of the trials.")
    ensemble_size: int = Field(DEFAULTS.ensemble_size, ge=0, le=1000,
                               description="Rounds of greedy ensemble selection over the best trials' out-of-fold "
                                           "predictions (0: the model is the single best pipeline).")
    grid: dict[str, list[Any]] | None = Field(None, description="strategy grid: hyperparameter -> values (null: the "
                                                                "default grid); n_trials null runs the whole grid.")
    max_grid_size: int = Field(DEFAULTS.max_grid_size, ge=1, le=MAX_TRIALS,
                               description="A grid with more points is refused (400).")
    sensitive: str | None = Field(None, min_length=1, max_length=MAX_COLUMN_NAME,
                                  description="Sensitive column the final model is made fair for (with `fairness`; "
                                              "binary classification only; the column stays a feature). Checked "
                                              "before the search is queued: an unknown column is a 400.")
    fairness: str | None = Field(None, max_length=64,
                                 description=f"Fairness constraint of the mitigation ({', '.join(CONSTRAINTS)}; "
                                             "with `sensitive`): fairlearn's ThresholdOptimizer post-processes the "
                                             "final model, figures before / after in the search's `fairness`.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"dataset_id": 42, "strategy": "warm", "n_trials": 20, "time_budget": 300, "metric": "balanced_accuracy",
         "seed": 0},
        {"dataset_id": 43, "strategy": "random", "n_trials": 10, "sensitive": "sex",
         "fairness": "demographic_parity"}]})

    @model_validator(mode="after")
    def _budget(self) -> SearchRequest:
        if self.n_trials is None and self.time_budget is None and self.strategy != "grid":
            raise ValueError("give a budget: n_trials, time_budget or both")
        return self


class ContinueRequest(Strict):
    """The budget to add to a finished search (``POST /v1/searches/{id}/continue``)."""

    n_trials: int | None = Field(None, ge=1, le=MAX_TRIALS, description="Trials to add.")
    time_budget: float | None = Field(None, gt=0, le=MAX_TIME_BUDGET, description="Seconds to add.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"n_trials": 10}]})

    @model_validator(mode="after")
    def _budget(self) -> ContinueRequest:
        if self.n_trials is None and self.time_budget is None:
            raise ValueError("give the budget to add: n_trials, time_budget or both")
        return self


class SearchAccepted(BaseModel):
    id: int
    status: str
    dataset_id: int

    model_config = ConfigDict(json_schema_extra={"examples": [{"id": 17, "status": "queued", "dataset_id": 42}]})


class BestTrial(BaseModel):
    """The incumbent: the best successful trial at the highest budget evaluated so far."""

    trial: int
    run_id: int
    score: float
    budget: float = Field(1.0, description="Fraction of the data (or iterations) the trial used; 1 = full.")
    algorithm: str
    configuration: dict[str, Any]


class TrajectoryPoint(BaseModel):
    trial: int
    elapsed: float | None = Field(description="Seconds from the start of the search to the end of this trial.")
    best_so_far: float | None


class SearchSummary(BaseModel):
    """What ``GET /v1/searches`` lists of a search; its status has these fields and more."""

    id: int
    dataset_id: int
    dataset: str | None = Field(None, description="The dataset's name, as the caller named it.")
    owner: str | None = Field(None, description="The key's identity that started it (null: no keys, or not the API).")
    strategy: str
    status: str = Field(description=", ".join(SEARCH_STATUSES))
    metric: str | None
    n_trials: int | None = Field(description="Requested number of trials.")
    trials_done: int
    best_score: float | None = Field(None, description="Score of the best trial so far (the incumbent's).")
    started_at: datetime | None
    finished_at: datetime | None
    model_available: bool


class SearchList(BaseModel):
    searches: list[SearchSummary] = Field(description="Newest first.")
    total: int = Field(description="Searches that match the filters.")
    limit: int
    offset: int


class SearchStatus(SearchSummary):
    time_budget: float | None
    best: BestTrial | None
    trajectory: list[TrajectoryPoint]
    error: str | None
    cancel_requested: bool
    settings: dict[str, Any]
    ensemble: dict[str, Any] | None = Field(
        None, description="The final model's ensemble, once built: run_id, oof_score (out-of-fold score) and members "
                          "[{trial, run_id, algorithm, weight, cv_score}]; null for a single pipeline.")
    fairness: dict[str, Any] | None = Field(
        None, description="Figures of the fairness mitigation asked for (`sensitive` + `fairness`), as `search "
                          "--json` has them: sensitive, constraint, evaluated_on and, before and after, accuracy, "
                          "balanced accuracy, demographic-parity / equalized-odds differences, per-group rates; "
                          "null without mitigation or until the model is saved.")
    columns: list[str] | None = Field(None, description="Feature columns of the search's table (null when this "
                                                        "server holds none): the candidates for `sensitive`.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 17, "dataset_id": 42, "dataset": "breast_cancer", "owner": "alice", "strategy": "warm",
        "status": "running", "metric": "balanced_accuracy", "n_trials": 20, "time_budget": None, "trials_done": 2,
        "best_score": 0.95, "best": {"trial": 1, "run_id": 9801, "score": 0.95, "budget": 1.0,
                                     "algorithm": "random_forest", "configuration": EXAMPLE_CONFIG},
        "trajectory": [{"trial": 1, "elapsed": 3.1, "best_so_far": 0.95},
                       {"trial": 2, "elapsed": 5.0, "best_so_far": 0.95}],
        "error": None, "started_at": "2025-01-01T12:00:00Z", "finished_at": None, "model_available": False,
        "cancel_requested": False, "settings": {"strategy": "warm", "n_trials": 20, "folds": 5}}]})


class TrialOut(BaseModel):
    trial: int
    run_id: int
    algorithm: str
    origin: str = Field(description=", ".join(ORIGINS))
    status: str = Field(description=", ".join(RUN_STATUSES))
    score: float | None
    std: float | None
    seconds: float
    budget: float = Field(1.0, description="Fraction of the budget the trial used (multi-fidelity); 1 = full.")
    error: str | None
    configuration: dict[str, Any]
    created_at: datetime | None


class TrialList(BaseModel):
    search_id: int
    status: str
    trials: list[TrialOut]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "search_id": 17, "status": "succeeded", "trials": [{
            "trial": 1, "run_id": 9801, "algorithm": "random_forest", "origin": "warm_start", "status": "success",
            "score": 0.95, "std": 0.01, "seconds": 1.9, "budget": 1.0, "error": None, "configuration": EXAMPLE_CONFIG,
            "created_at": "2025-01-01T12:00:03Z"}]}]})


class CancelResponse(BaseModel):
    id: int
    status: Literal["cancelled", "cancelling"] = Field(
        description="cancelled: it had not started; cancelling: it stops after the trial in progress.")
    detail: str

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 17, "status": "cancelling", "detail": "search 17 stops after the trial in progress"}]})


class PredictRequest(Strict):
    rows: list[dict[str, Any]] = Field(min_length=1, description="Rows as {column: value}; the model's feature "
                                                                 "columns are required, others are ignored.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"rows": [{"mean radius": 14.1, "mean texture": 19.3, "mean perimeter": 92.0}]}]})


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[list[float]] | None = Field(description="Per row, one probability per class (in the order "
                                                                "of classes); null if the model has none.")
    classes: list[Any] | None

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"predictions": [1], "probabilities": [[0.08, 0.92]], "classes": [0, 1]}]})


# --------------------------------------------------------------------------------------------- drift monitoring


class MonitorRequest(Strict):
    rows: list[dict[str, Any]] = Field(min_length=1, description="New rows as {column: value}: the model's "
                                                                 "columns; with the target column the score drop "
                                                                 "is measured too.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"rows": [{"age": 38.0, "sex": "male", "fare": 7.9, "survived": 0}]}]})


class MonitorResponse(BaseModel):
    """The drift report of :func:`metalearn.drift.compare` (its module docstring defines every figure)."""

    search_id: int
    verdict: Literal["ok", "watch", "retrain"]
    reasons: list[str]
    n_rows: int
    train_rows: int | None
    features: list[dict[str, Any]] = Field(description="Per column, most drifting first: kind, severity "
                                                       "(major / minor / none), PSI, test (ks / chi2), statistic, "
                                                       "p_value, missing rates, unseen categories, reasons.")
    score: dict[str, Any] = Field(description="metric, training score and its source, new score, drop.")
    metafeature_distance: float | None
    retrain: dict[str, Any] = Field(description="recommended, the CLI command and the API steps that retrain "
                                                "warm-started from this search's runs.")
    thresholds: dict[str, Any]
    profile_source: str = Field(description="model file, or the uploaded table (models saved before profiles).")
