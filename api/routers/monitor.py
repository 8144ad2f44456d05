"""``POST /v1/searches/{id}/monitor``: drift of new rows against the training data of a search's model.

The figures and the verdict are :func:`metalearn.drift.compare`'s, as for ``metalearn monitor``. The training
profile is the one in the model file; a model saved without one (before profiles existed) is profiled from the
table uploaded for the search, which this server keeps.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException

from metalearn.api.dependencies import AppState, SearchId, State, owned_path_objects
from metalearn.api.routers.searches import _model_path, search_or_404
from metalearn.api.schemas import MonitorRequest, MonitorResponse, error_responses
from metalearn.api.security import require_api_key
from metalearn.drift import compare, profile_of
from metalearn.errors import Conflict, MetalearnError
from metalearn.metafeatures import EXTRACTOR_VERSIONS
from metalearn.model_io import ModelBundle

# owned_path_objects: another identity's {search_id} is a 404, as on every /v1/searches route
router = APIRouter(prefix="/v1/searches", tags=["searches"],
                   dependencies=[Depends(require_api_key), Depends(owned_path_objects)], responses=error_responses(401))


def _profile(state: AppState, search: dict[str, Any], bundle: ModelBundle) -> tuple[dict[str, Any], str]:
    """The model's training profile, or one of the uploaded table's training rows."""
    if bundle.profile:
        return bundle.profile, "model file"
    try:
        dataset = state.store.load_dataset(int(search["dataset_id"]))
    except MetalearnError:
        raise Conflict(f"the model of search {search['id']} has no training profile and this server does not hold "
                       "its table; run the search again to get a model with a profile") from None
    settings = search["settings"] or {}
    if settings.get("test_size"):
        dataset = dataset.split(float(settings["test_size"]), int(settings.get("seed") or 0))[0]
    meta = bundle.metadata
    features = state.kb.metafeatures(int(search["dataset_id"]), EXTRACTOR_VERSIONS[dataset.task])
    reference = {"metric": meta.get("metric"), "score": meta.get("cv_score"),
                 "source": "cross-validation of the best trial"}
    return profile_of(dataset.X, dataset.categorical, metafeatures=features, reference=reference), "uploaded table"


@router.post("/{search_id}/monitor", response_model=MonitorResponse, summary="Drift of new data",
             responses=error_responses(400, 404, 409, 413, 422))
def monitor(search_id: SearchId, body: MonitorRequest, state: State) -> dict[str, Any]:
    """Per-column drift (PSI, KS / chi-squared with p-values), unseen categories, missing-rate changes, the
    meta-feature distance and, when the rows carry the target, the score drop; a verdict (ok / watch /
    retrain) with its reasons and how to retrain warm-started from this search."""
    if len(body.rows) > state.settings.max_predict_rows:
        raise HTTPException(status_code=413, detail=f"{len(body.rows):,} rows, more than the limit of "
                                                    f"{state.settings.max_predict_rows:,} per request "
                                                    "(METALEARN_API_MAX_PREDICT_ROWS)")
    search = search_or_404(state, search_id)
    bundle = state.models.get(_model_path(state, search_id))
    profile, source = _profile(state, search, bundle)
    report = compare(bundle, pd.DataFrame.from_records(body.rows), data_name="NEWDATA.csv", profile=profile)
    metric = bundle.metadata.get("metric")
    report["retrain"]["api"] = ("upload the new table (POST /v1/datasets), then POST /v1/searches with "
                                f'{{"dataset_id": <its id>, "strategy": "warm", "metric": "{metric}"}}: the '
                                f"runs of search {search_id} are in the knowledge base and lead its warm start")
    return report | {"search_id": search_id, "profile_source": source}
