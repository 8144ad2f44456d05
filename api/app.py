"""The FastAPI application: ``create_app(settings)`` wires state, middleware, error handlers and routers.

Run it with ``metalearn serve`` (uvicorn), or ``uvicorn --factory metalearn.api.app:create_app``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from metalearn import __version__
from metalearn.api.dependencies import AppState
from metalearn.api.jobs import JobManager
from metalearn.api.routers import datasets, health, knowledge_base, monitor, recommendations, searches, studio
from metalearn.api.security import APIKeyMiddleware, BodySizeLimitMiddleware
from metalearn.api.services import KBVersion, ModelCache, RecommendationService, StatsCache
from metalearn.api.storage import DataStore
from metalearn.errors import MetalearnError, QueueFull
from metalearn.knowledge_base.snapshot import open_kb
from metalearn.protocol import DEFAULT_METRICS
from metalearn.service import recover_searches
from metalearn.settings import ServerSettings

log = logging.getLogger("metalearn.api")

UPLOAD_PATHS = ("/v1/datasets",)
MULTIPART_ALLOWANCE = 2**20  # form fields and multipart framing on top of the file itself
RETRY_AFTER = "30"  # seconds a client should wait after a 429 (queue full)

DESCRIPTION = """
Meta-learning AutoML for tabular classification over HTTP.

**Workflow**: upload a table (`POST /v1/datasets`, multipart: `file`, `target`, optional `name`) →
get recommended pipelines with their evidence (`POST /v1/recommendations`) → start a warm-started
search (`POST /v1/searches`, answered 202 at once; it runs in a worker process) → follow it
(`GET /v1/searches/{id}`, `GET /v1/searches/{id}/trials`) or cancel it (`DELETE /v1/searches/{id}`)
→ download the fitted pipeline (`GET /v1/searches/{id}/model`) or predict with it
(`POST /v1/searches/{id}/predict`). Every trial lands in the knowledge base as it finishes.

**Authentication**: when the server has API keys (`METALEARN_API_KEYS`), every endpoint except
`GET /v1/health` needs `Authorization: Bearer <key>`; without it the answer is 401.

**Tenants**: each key is an identity (`name:KEY`). It sees only the datasets it uploaded and the searches
(models, reports, predictions) it started: another identity's id answers 404. Admin keys
(`METALEARN_API_ADMIN_KEYS`) see everything. The knowledge base's statistics and recommendations are shared.
Per-key quotas (searches queued or running, uploads per hour, stored upload bytes) answer 429 with
`Retry-After`.

**Errors**: every error is JSON `{"detail": "<what is wrong>"}` (422 adds `errors`, one item per
problem): 400 unusable input, 401 no/invalid key, 404 unknown id, 409 wrong state, 413 too large,
422 malformed request, 429 search queue full or a quota reached. A refused request changes nothing.

**Python client**: `metalearn.Client(base_url, api_key)`.
"""

TAGS = [
    {"name": "health", "description": "Liveness and knowledge-base reachability (no API key)."},
    {"name": "knowledge base", "description": "Statistics of the knowledge base of past runs."},
    {"name": "datasets", "description": "Upload tables; they are registered with their meta-features and kept "
                                        "on the server for searches."},
    {"name": "recommendations", "description": "Pipelines recommended from similar datasets, with evidence."},
    {"name": "searches", "description": "Warm-started SMAC searches run in worker processes; models and "
                                        "predictions."},
]


def open_state(settings: ServerSettings) -> AppState:
    """Open the knowledge base (seeding an empty one), mark orphaned searches interrupted, start the scheduler."""
    kb = open_kb(settings.db_url, seed=settings.seed_kb)
    if settings.recover:
        count = recover_searches(kb)
        if count:
            log.warning("marked %d search(es) whose process is gone (a previous server) interrupted", count)
    store = DataStore(settings.data_dir).ensure()
    version = KBVersion(kb)
    recommendations = RecommendationService(kb, response_cache=settings.response_cache, version=version,
                                            rebuild_interval=settings.recommender_max_age)
    jobs = JobManager(settings, kb, store,
                      on_finished=lambda search_id: log.info("search %d finished", search_id)).start()
    return AppState(settings=settings, kb=kb, store=store, jobs=jobs, stats=StatsCache(kb, version),
                    recommendations=recommendations, models=ModelCache())


def _warm_up(state: AppState) -> None:
    """Build the recommender of each task's default metric, so that the first requests are fast (recommendations
    are computed one at a time: a build inside a request would hold up the others)."""
    for metric in DEFAULT_METRICS.values():
        try:
            state.recommendations.warm_up(metric)
        except Exception:  # warming up is an optimisation only
            log.exception("warm-up of the %s recommender failed", metric)


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


def _validation_summary(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    items, parts = [], []
    for error in errors:
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error")
            msg = f"invalid JSON{f' ({reason})' if reason else ''}"
            loc = loc[:1]
        items.append({"loc": loc, "msg": msg, "type": str(error.get("type", "value_error"))})
        parts.append(f"{'.'.join(str(p) for p in loc)}: {msg}" if loc else msg)
    detail = "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")
    return detail or "invalid request", items


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, items = _validation_summary(list(exc.errors()))
        return _error(422, detail, errors=items)

    @app.exception_handler(MetalearnError)
    async def user_error(_: Request, exc: MetalearnError) -> JSONResponse:
        """Every metalearn error with the HTTP status its class declares (NotFound 404, QueueFull 429, ...)."""
        retry = getattr(exc, "retry_after", None) or RETRY_AFTER  # a quota says when (metalearn.api.tenants)
        headers = {"Retry-After": str(retry)} if isinstance(exc, QueueFull) else None
        return JSONResponse(status_code=exc.http_status, content={"detail": str(exc) or type(exc).__name__},
                            headers=headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal server error")


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The application; ``settings`` default to :meth:`ServerSettings.from_env`.

    ``metalearn serve`` passes its settings for one process (``uvicorn.run(create_app(settings))``); with
    several uvicorn workers each process calls it as a factory without arguments.
    """
    settings = settings or ServerSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(open_state, settings)
        app.state.metalearn = state
        threading.Thread(target=_warm_up, args=(state,), name="metalearn-warm-up", daemon=True).start()
        try:
            yield
        finally:
            await run_in_threadpool(state.jobs.close)
            state.recommendations.close()
            state.kb.dispose()

    app = FastAPI(title="metalearn", version=__version__, description=DESCRIPTION, openapi_tags=TAGS,
                  lifespan=lifespan, docs_url="/docs", redoc_url="/redoc")
    # the last middleware added runs first: API key, then body size, then the routes
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_body_bytes,
                       upload_limit=settings.max_upload_bytes, upload_allowance=MULTIPART_ALLOWANCE,
                       upload_paths=UPLOAD_PATHS)
    app.add_middleware(APIKeyMiddleware, digests=settings.api_key_hashes)
    add_exception_handlers(app)
    for module in (health, knowledge_base, datasets, recommendations, searches, monitor):
        app.include_router(module.router)
    app.include_router(studio.router)  # the web studio at / (a client of /v1)
    app.mount(studio.STATIC_PATH, studio.static_files(), name="studio-static")
    return app
