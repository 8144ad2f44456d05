"""``GET /v1/knowledge-base/stats``: the counts of ``metalearn kb stats``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from metalearn.api.dependencies import AppState, get_state
from metalearn.api.schemas import KnowledgeBaseStats, error_responses
from metalearn.api.security import require_api_key

router = APIRouter(prefix="/v1/knowledge-base", tags=["knowledge base"], dependencies=[Depends(require_api_key)],
                   responses=error_responses(401))


@router.get("/stats", response_model=KnowledgeBaseStats, summary="Knowledge-base statistics")
def stats(state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Datasets, runs, configurations and searches, by source, status and origin (the fields of
    ``KnowledgeBase.stats()``); recomputed only when the knowledge base gained rows."""
    return state.stats.get()
