"""What a request is handed: the :class:`AppState` built at startup, and the ``Annotated`` dependencies of the
routers (``state: State``, ``user: CurrentUser``, ``search_id: SearchId``, ...).

:func:`owned_path_objects` is a router-level dependency: it answers 404 for a ``{dataset_id}`` or ``{search_id}``
in the path that belongs to another identity, so every route of the router (and any route added later) is
covered without repeating the check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as PathParam

from metalearn.api.jobs import JobManager
from metalearn.api.reports import ReportService
from metalearn.api.schemas import MAX_ID
from metalearn.api.security import current_identity
from metalearn.api.services import ModelCache, RecommendationService, StatsCache
from metalearn.api.storage import DataStore
from metalearn.api.tenants import Access, Identity, Quotas
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
    #: model reports (built in worker processes), owner checks and per-key quotas: made from the fields above
    reports: ReportService = field(init=False)
    access: Access = field(init=False)
    quotas: Quotas = field(init=False)

    def __post_init__(self) -> None:
        self.reports = ReportService(self.store, self.settings.db_url, niceness=self.settings.worker_niceness,
                                     shap=self.settings.report_shap)
        self.access = Access(self.kb)
        self.quotas = Quotas(self.settings, self.kb)


async def get_state(request: Request) -> AppState:
    """The application state (a FastAPI dependency)."""
    return request.app.state.metalearn


State = Annotated[AppState, Depends(get_state)]
CurrentUser = Annotated[Identity, Depends(current_identity)]
SearchId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Id of a search.")]
DatasetPathId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Id of a dataset.")]


def _path_id(request: Request, name: str) -> int | None:
    """The integer path parameter ``name`` if it is a valid id (otherwise the route's own validation answers)."""
    raw = request.path_params.get(name)
    if raw is None or not str(raw).isdigit():
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def owned_path_objects(request: Request, state: State, user: CurrentUser) -> None:
    """404 (as for an unknown id) when the path's dataset or search belongs to another identity."""
    if user.sees_all:
        return
    dataset_id, search_id = _path_id(request, "dataset_id"), _path_id(request, "search_id")
    if dataset_id is not None:
        state.access.check_dataset(user, dataset_id)
    if search_id is not None:
        state.access.check_search(user, search_id)
