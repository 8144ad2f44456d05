"""``/v1/knowledge-base``: the counts of ``metalearn kb stats``, the datasets with their best pipelines, and the
map of the meta-feature space (the last two feed the studio's knowledge-base page; see
:mod:`metalearn.api.studio_services`)."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from metalearn.api.dependencies import AppState, CurrentUser, State
from metalearn.api.kb_schemas import KnowledgeBaseDatasetList, MetaFeatureMap
from metalearn.api.schemas import MAX_ID, KnowledgeBaseStats, Task, error_responses
from metalearn.api.security import require_api_key
from metalearn.api.studio_services import MapService, dataset_rows, filter_datasets

router = APIRouter(prefix="/v1/knowledge-base", tags=["knowledge base"], dependencies=[Depends(require_api_key)],
                   responses=error_responses(401))

_MAP_LOCK = threading.Lock()


@router.get("/stats", response_model=KnowledgeBaseStats, summary="Knowledge-base statistics")
async def stats(state: State) -> Response:
    """Datasets, runs, configurations and searches, by source, task, status and origin (the fields of
    ``KnowledgeBase.stats()``); recomputed only when the knowledge base gained rows."""
    body = state.stats.peek_json()  # in memory: no thread, no database
    if body is None:
        body = await run_in_threadpool(state.stats.get_json)
    return Response(content=body, media_type="application/json")


@router.get("/datasets", response_model=KnowledgeBaseDatasetList, summary="Datasets with their best pipelines",
            responses=error_responses(422))
def datasets(state: State, user: CurrentUser,
             q: Annotated[str | None, Query(max_length=200, description="Keep datasets whose name, family or "
                                                                        "source contains this text.")] = None,
             task: Annotated[Task | None, Query(description="Keep datasets of this task.")] = None,
             limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
             offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> dict[str, Any]:
    """Datasets of the knowledge base (oldest first) with shape, source, task, and the best mean score of a
    configuration on each, in the default metric of its task, with that pipeline. With API keys: the datasets
    the caller uploaded, under the names it gave them (admin keys: all), as ``GET /v1/datasets``."""
    owner = None if user.sees_all else user.name
    matching = filter_datasets(state.access.named(user, state.kb.datasets(owner=owner)), q, task)
    page = matching[offset:offset + limit]
    rows = dataset_rows(state.recommendations, page)
    for row in rows:
        row["stored"] = state.store.has_table(row["id"], row["content_hash"])
    return {"datasets": rows, "total": len(matching), "limit": limit, "offset": offset}


def map_service(request: Request, state: AppState) -> MapService:
    """The server's :class:`MapService`, created with the first map request."""
    app_state = request.app.state
    with _MAP_LOCK:
        service = getattr(app_state, "metalearn_map", None)
        if service is None:
            service = app_state.metalearn_map = MapService(state.recommendations)
    return service


@router.get("/map", response_model=MetaFeatureMap, summary="Map of the meta-feature space",
            responses=error_responses(404, 422))
def meta_feature_map(request: Request, state: State, user: CurrentUser,
                     task: Annotated[Task | None, Query(description="Task of the map (default: classification, "
                                                                    "or the task of dataset_id).")] = None,
                     dataset_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Also place this "
                                                                                         "dataset (e.g. an "
                                                                                         "upload).")] = None,
                     ) -> dict[str, Any]:
    """A 2-D PCA projection of the robust-scaled meta-feature vectors the neighbour search compares, one point
    per dataset with successful runs (name, family, best algorithm: shared knowledge, like the neighbours of a
    recommendation); cached until the knowledge base changes. With ``dataset_id`` (one the caller may read),
    ``query`` is that dataset's position, projected with the same scaling."""
    dataset = None if dataset_id is None else state.access.dataset(user, dataset_id)  # 404 if not the caller's
    return map_service(request, state).map(task, dataset)
