"""What a request is handed: the :class:`AppState` built at startup, and the ``Annotated`` dependencies of the
routers (``state: State``, ``search_id: SearchId``, ...)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as PathParam

from metalearn.api.jobs import JobManager
from metalearn.api.schemas import MAX_ID
from metalearn.api.services import ModelCache, RecommendationService, StatsCache
from metalearn.api.storage import DataStore
from metalearn.knowledge_base import KnowledgeBase
from metalearn.settings import ServerSettings


@dataclass
class AppState:
    """Everything the routers share, built once at startup (see :func:`metalearn.api.app.open_state`)."""

    settings: ServerSettings
    kb: KnowledgeBase
    store: DataStore
    jobs: JobManager
    stats: StatsCache
    recommendations: RecommendationService
    models: ModelCache = field(default_factory=ModelCache)
    started: float = field(default_factory=time.time)


async def get_state(request: Request) -> AppState:
    """The application state (a FastAPI dependency)."""
    return request.app.state.metalearn


State = Annotated[AppState, Depends(get_state)]
SearchId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Id of a search.")]
DatasetPathId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Id of a dataset.")]
