"""``GET /v1/health``: is the knowledge base reachable (no API key needed)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url

from metalearn import __version__
from metalearn.api.dependencies import State
from metalearn.api.schemas import HealthResponse, error_responses

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", response_model=HealthResponse, responses=error_responses(503),
            summary="Service and knowledge-base health")
def health(state: State) -> HealthResponse | JSONResponse:
    """Whether the knowledge base answers, its size, the search queue and the upload limits.

    Open to everyone (no API key), so it reveals counts only, never paths or settings.
    """
    try:
        stats = state.stats.get()
    except Exception as exc:  # the database is gone, locked or corrupt
        return JSONResponse(status_code=503, content={"detail": f"knowledge base unreachable: {type(exc).__name__}"})
    s = state.settings
    return HealthResponse(
        status="ok", version=__version__, auth_required=s.auth_required,
        knowledge_base={"backend": make_url(state.kb.url).get_backend_name(), "datasets": stats["datasets"],
                        "runs": stats["runs"], "searches": stats["searches"]},
        searches=state.jobs.counts(),
        limits={"max_upload_bytes": s.max_upload_bytes, "max_rows": s.max_rows, "max_columns": s.max_columns,
                "max_cells": s.max_cells, "max_predict_rows": s.max_predict_rows},
        uptime_seconds=round(time.time() - state.started, 3),
    )
