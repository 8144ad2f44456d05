"""``/v1/searches``: start a search in a worker process, follow it, cancel it, get its model, predict.

Trials are read back from the knowledge base through :func:`metalearn.warmstart.result.trials_from_runs`;
the best trial and the trajectory are :func:`~metalearn.warmstart.result.incumbent` and
:func:`~metalearn.warmstart.result.trajectory` of those trials, as everywhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from metalearn.api.dependencies import AppState, CurrentUser, SearchId, State, owned_path_objects
from metalearn.api.routers.datasets import dataset_or_404
from metalearn.api.schemas import (
    MAX_ID,
    CancelResponse,
    ContinueRequest,
    PredictRequest,
    PredictResponse,
    SearchAccepted,
    SearchList,
    SearchRequest,
    SearchStatus,
    TrialList,
    error_responses,
)
from metalearn.api.security import require_api_key
from metalearn.api.tenants import Identity
from metalearn.errors import Conflict, DatasetError, KnowledgeBaseError, MetalearnError, NotFound
from metalearn.mitigation import check_request, fairness_request
from metalearn.protocol import ACTIVE_STATUSES, SEARCH_STATUSES, metric_for, to_jsonable
from metalearn.report import MEDIA_TYPES, render_report
from metalearn.restriction import split_names
from metalearn.service import report_sensitive
from metalearn.warmstart.result import Trial, incumbent, stored_ensemble, trajectory, trials_from_runs
from metalearn.warmstart.search import SearchSettings, WarmStartSearch

# owned_path_objects: another identity's {search_id} is a 404 on every route (see metalearn.api.tenants)
router = APIRouter(prefix="/v1/searches", tags=["searches"],
                   dependencies=[Depends(require_api_key), Depends(owned_path_objects)], responses=error_responses(401))

BEST_FIELDS = ("trial", "run_id", "score", "budget", "algorithm", "configuration")
MAX_SENSITIVE = 20  # sensitive columns one report may show
MAX_LISTED = 200  # searches one page of GET /v1/searches may list
StatusName = Literal[tuple(SEARCH_STATUSES)]


def _aware(value: Any) -> datetime | None:
    """A stored (naive UTC) timestamp as an aware datetime; ``None`` for missing values."""
    if value is None or pd.isna(value):
        return None
    value = pd.Timestamp(value).to_pydatetime()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def search_or_404(state: AppState, search_id: int) -> dict[str, Any]:
    try:
        return state.kb.search(search_id)
    except KnowledgeBaseError:
        raise NotFound(f"no search with id {search_id}") from None


def _trial_json(trial: Trial, created_at: Any) -> dict[str, Any]:
    return {"trial": trial.number, "run_id": trial.run_id, "algorithm": trial.algorithm, "origin": trial.origin,
            "status": trial.status, "score": trial.score, "std": trial.std, "seconds": trial.seconds,
            "budget": trial.budget, "error": trial.error, "configuration": trial.configuration,
            "created_at": _aware(created_at)}


def _trials(state: AppState, search: dict[str, Any]) -> tuple[list[Trial], list[dict[str, Any]]]:
    """The search's trials, and their JSON (with the time each was stored)."""
    runs = state.kb.runs_frame(search_id=search["id"])
    trials = trials_from_runs(runs, started=search["started_at"])
    created = dict(zip(runs["id"].astype(int), runs["created_at"], strict=True))
    return trials, [_trial_json(t, created.get(t.run_id)) for t in trials]


def _dataset_names(state: AppState, user: Identity, searches: list[dict[str, Any]]) -> dict[int, str]:
    """The names of the searches' datasets as ``user`` named them (missing for a dataset it no longer holds)."""
    ids = [int(search["dataset_id"]) for search in searches]
    if not user.sees_all:
        return state.kb.owned_names(user.name, ids)
    return {i: search.get("dataset_name") or state.kb.dataset(i).name for i, search in zip(ids, searches, strict=True)}


def _summary(state: AppState, search: dict[str, Any], trials: list[Trial], dataset: str | None) -> dict[str, Any]:
    """The fields of :class:`SearchSummary`: an item of ``GET /v1/searches``, and the start of a search's status."""
    settings, best = search["settings"] or {}, incumbent(trials)
    return {"id": search["id"], "dataset_id": search["dataset_id"], "dataset": dataset, "owner": search.get("owner"),
            "strategy": search["strategy"], "status": search["status"], "metric": settings.get("metric"),
            "n_trials": settings.get("n_trials"), "trials_done": len(trials),
            "best_score": None if best is None else best.score, "started_at": _aware(search["started_at"]),
            "finished_at": _aware(search["finished_at"]),
            "model_available": search["status"] not in ACTIVE_STATUSES and state.store.model_path(
                search["id"]).is_file()}


def _status(state: AppState, search: dict[str, Any], trials: list[Trial], dataset: str | None) -> dict[str, Any]:
    started = _aware(search["started_at"])
    best = incumbent(trials)
    best_json = None if best is None else {
        name: value for name, value in _trial_json(best, None).items() if name in BEST_FIELDS}
    points = [{"trial": point["trial"], "elapsed": point["elapsed"] if started is not None else None,
               "best_so_far": point["best_so_far"]} for point in trajectory(trials)]
    settings = search["settings"] or {}
    search_id = search["id"]
    return _summary(state, search, trials, dataset) | {
        "time_budget": settings.get("time_budget"), "best": best_json, "trajectory": points, "error": search["error"],
        "cancel_requested": state.store.cancel_requested(search_id), "settings": to_jsonable(settings),
        "ensemble": stored_ensemble(state.kb.ensemble_of(search_id), trials),
        "fairness": _fairness_figures(state, search),
        "columns": (state.store.sidecar(search["dataset_id"]) or {}).get("columns"),
    }


def _fairness_figures(state: AppState, search: dict[str, Any]) -> dict[str, Any] | None:
    """Before / after figures of a mitigated search, from its saved model file (``metadata["fairness"]``)."""
    path = state.store.model_path(search["id"])
    if not (search["settings"] or {}).get("fairness") or search["status"] in ACTIVE_STATUSES or not path.is_file():
        return None
    try:
        return to_jsonable(state.models.get(path).metadata.get("fairness"))
    except (MetalearnError, OSError):  # an unreadable model file: the figures are missing, the status is not
        return None


@router.post("", status_code=202, response_model=SearchAccepted, summary="Start a search",
             responses=error_responses(400, 404, 409, 422, 429, 503))
def start_search(body: SearchRequest, response: Response, state: State, user: CurrentUser) -> dict[str, Any]:
    """Queue a (warm-started) search on an uploaded dataset; it runs in a worker process.

    Every trial is written to the knowledge base as it finishes; follow it with
    ``GET /v1/searches/{id}``. Answers 429 when ``search_workers + search_queue`` searches are
    already running or waiting or the caller's key has its quota of searches queued or running, and 409 for
    datasets whose table this server does not hold.
    """
    info = dataset_or_404(state, body.dataset_id, user)
    if not state.store.has_table(info.id, info.content_hash):
        raise Conflict(f"dataset {info.id} ({info.name}) has no table on this server (it came from the knowledge "
                       "base, not from an upload); upload the data with POST /v1/datasets to search on it")
    settings = SearchSettings(
        strategy=body.strategy, n_trials=body.n_trials, time_budget=body.time_budget,
        trial_time_limit=body.trial_time_limit or state.settings.trial_time_limit,
        metric=metric_for(info.task, body.metric),  # the task's default, or 400 for the other task's metric
        folds=body.folds, seed=body.seed, max_rows=body.max_rows, ensemble_size=body.ensemble_size,
        include=body.include, exclude=body.exclude, interpretable=body.interpretable, grid=body.grid,
        max_grid_size=body.max_grid_size,
    ).validate()
    checked = WarmStartSearch(state.kb, settings)
    checked.control(info.task)  # unknown include / exclude names: 400 now, not a failed search later
    fairness = fairness_request(body.sensitive, body.fairness)
    if fairness is not None:  # a bad column or constraint, or a target it cannot apply to: 400 now
        check_request(fairness, state.store.load_dataset(info.id))
    if settings.strategy == "grid":
        checked.plan_grid(info.task)  # a grid over the size limit: 400
        settings = checked.settings  # with the default grid's version recorded
    search_id = state.jobs.submit(info.id, settings, owner=user.owner,  # QueueFull -> 429, ServiceStopping -> 503
                                  owner_limit=state.quotas.search_limit(user), fairness=fairness)
    response.headers["Location"] = f"/v1/searches/{search_id}"
    return {"id": search_id, "status": "queued", "dataset_id": info.id}


@router.post("/{search_id}/continue", status_code=202, response_model=SearchAccepted, summary="Continue a search",
             responses=error_responses(400, 404, 409, 422, 429, 503))
def continue_search(search_id: SearchId, body: ContinueRequest, response: Response, state: State,
                    user: CurrentUser) -> dict[str, Any]:
    """Add ``n_trials`` trials (and/or ``time_budget`` seconds) to a finished, cancelled or interrupted search.

    It runs in a worker like a new search, with the search's own settings, on its uploaded table: SMAC is told
    its earlier trials first, the new trials are numbered on in the same search, and the final model (ensemble)
    is rebuilt from all of them. 409 while it is queued or running, when this server holds no table for it, or when
    the caller deleted its upload of the dataset (``DELETE /v1/datasets/{id}``).
    """
    search = search_or_404(state, search_id)
    if search["status"] in ACTIVE_STATUSES:
        raise Conflict(f"search {search_id} is {search['status']}; continue it once it has finished")
    info = state.kb.dataset(search["dataset_id"])  # the search is the caller's (owned_path_objects), so is its data
    if not state.store.has_table(info.id, info.content_hash):
        raise Conflict(f"this server holds no table for dataset {info.id} ({info.name}) of search {search_id}; "
                       "continue it where its data is (metalearn search --continue)")
    state.jobs.submit_continue(search_id, info.id, body.n_trials, body.time_budget, owner=search.get("owner"),
                               owner_limit=state.quotas.search_limit(user),  # the caller's quota of searches
                               holder=None if user.sees_all else user.name)  # 409 once it deleted the dataset
    response.headers["Location"] = f"/v1/searches/{search_id}"
    return {"id": search_id, "status": "queued", "dataset_id": info.id}


@router.get("", response_model=SearchList, summary="List searches", responses=error_responses(422))
def list_searches(state: State, user: CurrentUser,
                  status: Annotated[StatusName | None, Query(description="Only searches with this status.")] = None,
                  dataset_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only searches on this "
                                                                                         "dataset.")] = None,
                  limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 50,
                  offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> dict[str, Any]:
    """The caller's searches (admin keys, and a server without keys: every search), newest first, each with the
    first fields of its status: dataset, status, strategy, trials done, best score, start and end."""
    rows, total = state.kb.list_searches(owner=None if user.sees_all else user.name, status=status,
                                         dataset_id=dataset_id, limit=limit, offset=offset)
    runs = state.kb.runs_frame(search_ids=[row["id"] for row in rows])
    by_search = {int(search_id): group for search_id, group in runs.groupby("search_id")}
    names = _dataset_names(state, user, rows)
    items = [_summary(state, row, trials_from_runs(by_search.get(row["id"], runs.iloc[:0])),
                      names.get(row["dataset_id"])) for row in rows]
    return {"searches": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{search_id}", response_model=SearchStatus, summary="Status of a search",
            responses=error_responses(404, 422))
def get_search(search_id: SearchId, state: State, user: CurrentUser) -> dict[str, Any]:
    """Status, trials done, best trial so far and the trajectory (best score after each trial)."""
    search = search_or_404(state, search_id)
    trials, _ = _trials(state, search)
    return _status(state, search, trials, _dataset_names(state, user, [search]).get(search["dataset_id"]))


@router.get("/{search_id}/trials", response_model=TrialList, summary="Trials of a search",
            responses=error_responses(404, 422))
def get_trials(search_id: SearchId, state: State) -> dict[str, Any]:
    """Every trial of the search (also while it runs), oldest first, with its configuration."""
    search = search_or_404(state, search_id)
    return {"search_id": search_id, "status": search["status"], "trials": _trials(state, search)[1]}


@router.delete("/{search_id}", status_code=202, response_model=CancelResponse, summary="Cancel a search",
               responses={200: {"model": CancelResponse, "description": "Cancelled before it started."},
                          **error_responses(404, 409, 422)})
def cancel_search(search_id: SearchId, response: Response, state: State) -> dict[str, Any]:
    """Cancel a queued (200, at once) or running search (202: it stops after the trial in progress and
    keeps the trials it finished). 409 when it has already finished."""
    search = search_or_404(state, search_id)
    if search["status"] not in ACTIVE_STATUSES:
        raise Conflict(f"search {search_id} has already finished ({search['status']}); nothing to cancel")
    if "submitted_at" not in (search["settings"] or {}):
        raise Conflict(f"search {search_id} was not started through the API; it cannot be cancelled here")
    outcome = state.jobs.cancel(search_id)
    if outcome == "cancelled":
        response.status_code = 200
        return {"id": search_id, "status": "cancelled", "detail": f"search {search_id} was cancelled before it "
                                                                   "started"}
    if outcome == "cancelling":
        return {"id": search_id, "status": "cancelling",
                "detail": f"search {search_id} stops after the trial in progress; its finished trials are kept"}
    raise Conflict(f"search {search_id} has already finished ({outcome}); nothing to cancel")


def _model_path(state: AppState, search_id: int) -> Path:
    """The model file of a finished search (409 while it runs, 404 when it has none)."""
    search = search_or_404(state, search_id)
    if search["status"] in ACTIVE_STATUSES:
        raise Conflict(f"search {search_id} is {search['status']}; its model is available once it has finished")
    path = state.store.model_path(search_id)
    if not path.is_file():
        why = f" ({search['error']})" if search.get("error") else ""
        raise NotFound(f"search {search_id} has no model on this server{why}")
    return path


@router.get("/{search_id}/model", summary="Download the fitted pipeline", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "A joblib file written by metalearn.model_io.ModelBundle: "
                                            "{'format', 'model', 'metadata'}; read it with ModelBundle.load."},
                       **error_responses(404, 409, 422)})
def download_model(search_id: SearchId, state: State) -> FileResponse:
    """The best pipeline of a finished search, refitted on the whole dataset (joblib)."""
    path = _model_path(state, search_id)
    return FileResponse(path, media_type="application/octet-stream", filename=f"metalearn-search-{search_id}.joblib")


@router.post("/{search_id}/predict", response_model=PredictResponse, summary="Predict with a search's model",
             responses=error_responses(400, 404, 409, 413, 422))
def predict(search_id: SearchId, body: PredictRequest, state: State) -> dict[str, Any]:
    """Predictions (and class probabilities when the model has them) for rows given as {column: value}.

    The model's feature columns must all be present (typed as at fit time by the model's feature
    schema: a missing or non-numeric column is a 400); other keys (e.g. the target) are ignored.
    """
    if len(body.rows) > state.settings.max_predict_rows:
        raise HTTPException(status_code=413, detail=f"{len(body.rows):,} rows, more than the limit of "
                                                    f"{state.settings.max_predict_rows:,} per request "
                                                    "(METALEARN_API_MAX_PREDICT_ROWS)")
    bundle = state.models.get(_model_path(state, search_id))
    frame = pd.DataFrame.from_records(body.rows)
    try:
        predictions = bundle.predict(frame)
        probabilities = bundle.predict_proba(frame)
    except DatasetError:
        raise  # a missing or mistyped column: 400 with the schema's message
    except (ValueError, TypeError, KeyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HTTPException(status_code=400, detail=f"cannot predict these rows: {detail}") from None
    return {"predictions": to_jsonable(predictions), "probabilities": to_jsonable(probabilities),
            "classes": to_jsonable(bundle.classes)}


REPORT_HEADER = "X-Metalearn-Report"  # built | waited | cached: how this answer's report was obtained
Sensitive = Annotated[list[str] | None, Query(
    description="Sensitive column(s) for the fairness section: repeat the parameter or separate names with commas "
                f"(at most {MAX_SENSITIVE}). Default: the column a fairness-mitigated search was made fair for, else "
                "no fairness section.")]


def _report_columns(state: AppState, search_id: int, sensitive: list[str] | None) -> tuple[str, ...]:
    """The sensitive columns of a finished search's report (404 / 409 as for its model; 400 for a column its
    table lacks): those asked for, else its mitigation's (:func:`metalearn.service.report_sensitive`)."""
    _model_path(state, search_id)
    search = search_or_404(state, search_id)
    asked = split_names(sensitive)
    columns = report_sensitive(asked, (search["settings"] or {}).get("fairness")) or []
    if len(columns) > MAX_SENSITIVE:
        raise MetalearnError(f"{len(columns)} sensitive columns; a report shows at most {MAX_SENSITIVE}")
    known = (state.store.sidecar(search["dataset_id"]) or {}).get("columns")
    unknown = [name for name in columns if known is not None and name not in known]
    if unknown:
        raise MetalearnError(f"sensitive column {unknown[0]!r} is not a column of the data of search {search_id}; "
                             f"columns: {', '.join(map(str, known[:20]))}")
    return tuple(columns)


@router.get("/{search_id}/report", summary="Model report of a finished search",
            responses={200: {"content": {"text/html": {}, "application/json": {}},
                             "description": "Self-contained HTML (default) or, with `Accept: application/json`, "
                                            "the same figures as JSON: metrics, confusion matrix, calibration, "
                                            "permutation importance, partial dependence, SHAP, surrogate tree, "
                                            "the search's trajectory and neighbours. The header "
                                            f"`{REPORT_HEADER}` says whether this request built the report "
                                            "(`built`), waited for another request's build (`waited`) or read "
                                            "it from the cache (`cached`)."},
                       **error_responses(400, 404, 409, 422, 429)})
async def get_report(search_id: SearchId, request: Request, state: State, sensitive: Sensitive = None) -> Response:
    """Evaluation, explanations, fairness and the search itself, built once per search and list of sensitive
    columns, and cached on the server.

    The build runs in a worker process (at most one at a time); concurrent requests for the same report wait
    for it. Without a kept test split the figures come from cross-validated predictions on the uploaded table.
    The fairness section of a fairness-mitigated search also has the before / after figures of its mitigation.
    """
    fmt = "json" if "application/json" in request.headers.get("accept", "") else "html"
    columns = await run_in_threadpool(_report_columns, state, search_id, sensitive)  # 4xx before anything is built
    data, how = await state.reports.get(search_id, columns)
    body = await run_in_threadpool(render_report, data, fmt)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers={REPORT_HEADER: how})
