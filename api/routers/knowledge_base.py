"""``GET /v1/knowledge-base/stats``: the counts of ``metalearn kb stats``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from metalearn.api.dependencies import State
from metalearn.api.schemas import KnowledgeBaseStats, error_responses
from metalearn.api.security import require_api_key

router = APIRouter(prefix="/v1/knowledge-base", tags=["knowledge base"], dependencies=[Depends(require_api_key)],
                   responses=error_responses(401))


@router.get("/stats", response_model=KnowledgeBaseStats, summary="Knowledge-base statistics")
async def stats(state: State) -> Response:
    """Datasets, runs, configurations and searches, by source, status and origin (the fields of
    ``KnowledgeBase.stats()``); recomputed only when the knowledge base gained rows."""
    body = state.stats.peek_json()  # in memory: no thread, no database
    if body is None:
        body = await run_in_threadpool(state.stats.get_json)
    return Response(content=body, media_type="application/json")
