"""``/v1/searches``: start a search in a worker process, follow it, cancel it, get its model, predict."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from metalearn.api.dependencies import MAX_ID, AppState, Conflict, NotFound, get_state, jsonable
from metalearn.api.jobs import ACTIVE, QueueFull, ServiceStopping
from metalearn.api.routers.datasets import dataset_or_404
from metalearn.api.schemas import (
    CancelResponse,
    PredictRequest,
    PredictResponse,
    SearchAccepted,
    SearchRequest,
    SearchStatus,
    TrialList,
    error_responses,
)
from metalearn.api.security import require_api_key

from metalearn.errors import KnowledgeBaseError

router = APIRouter(prefix="/v1/searches", tags=["searches"], dependencies=[Depends(require_api_key)],
                   responses=error_responses(401))

SearchId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Id of a search.")]


def _aware(value: Any) -> datetime | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def search_or_404(state: AppState, search_id: int) -> dict[str, Any]:
    try:
        return state.kb.search(search_id)
    except KnowledgeBaseError:
        raise NotFound(f"no search with id {search_id}") from None


def _trials(state: AppState, search_id: int) -> list[dict[str, Any]]:
    import json

    import pandas as pd

    runs = state.kb.runs_frame(search_id=search_id)
    trials = []
    for number, run in enumerate(runs.itertuples(index=False), start=1):
        trials.append({
            "trial": number, "run_id": int(run.id), "algorithm": run.algorithm, "origin": run.origin,
            "status": run.status, "score": None if pd.isna(run.score) else float(run.score),
            "std": None if pd.isna(run.score_std) else float(run.score_std), "seconds": float(run.seconds),
            "budget": 1.0 if pd.isna(run.budget) else float(run.budget),
            "error": None if run.error is None or (isinstance(run.error, float)) else str(run.error),
            "configuration": json.loads(run.config_json), "created_at": _aware(run.created_at),
        })
    return trials


def _status(state: AppState, search: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any]:
    started = _aware(search["started_at"])
    best: dict[str, Any] | None = None
    trajectory = []
    for trial in trials:  # the incumbent as SearchResult.best defines it: best score at the highest budget so far
        ok = trial["status"] == "success" and trial["score"] is not None and math.isfinite(trial["score"])
        if ok and (best is None or trial["budget"] > best["budget"]
                   or (trial["budget"] == best["budget"] and trial["score"] > best["score"])):
            best = {k: trial[k] for k in ("trial", "run_id", "score", "budget", "algorithm", "configuration")}
        elapsed = ((trial["created_at"] - started).total_seconds()
                   if started is not None and trial["created_at"] is not None else None)
        trajectory.append({"trial": trial["trial"], "elapsed": None if elapsed is None else round(elapsed, 3),
                           "best_so_far": None if best is None else best["score"]})
    settings = search["settings"] or {}
    search_id = search["id"]
    return {
        "id": search_id, "dataset_id": search["dataset_id"], "strategy": search["strategy"],
        "status": search["status"], "metric": settings.get("metric"), "n_trials": settings.get("n_trials"),
        "time_budget": settings.get("time_budget"), "trials_done": len(trials), "best": best,
        "trajectory": trajectory, "error": search["error"], "started_at": started,
        "finished_at": _aware(search["finished_at"]),
        "model_available": search["status"] not in ACTIVE and state.store.model_path(search_id).is_file(),
        "cancel_requested": state.store.cancel_requested(search_id), "settings": jsonable(settings),
    }


@router.post("", status_code=202, response_model=SearchAccepted, summary="Start a search",
             responses=error_responses(400, 404, 409, 422, 429, 503))
def start_search(body: SearchRequest, response: Response, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Queue a (warm-started) search on an uploaded dataset; it runs in a worker process.

    Every trial is written to the knowledge base as it finishes; follow it with
    ``GET /v1/searches/{id}``. Answers 429 when ``search_workers + search_queue`` searches are
    already running or waiting, and 409 for datasets whose table this server does not hold.
    """
    from metalearn.warmstart.search import SearchSettings

    info = dataset_or_404(state, body.dataset_id)
    if not state.store.has_table(info.id, info.content_hash):
        raise Conflict(f"dataset {info.id} ({info.name}) has no table on this server (it came from the knowledge "
                       "base, not from an upload); upload the data with POST /v1/datasets to search on it")
    settings = SearchSettings(
        strategy=body.strategy, n_trials=body.n_trials, time_budget=body.time_budget,
        trial_time_limit=body.trial_time_limit or state.settings.trial_time_limit, metric=body.metric,
        folds=body.folds, seed=body.seed, max_rows=body.max_rows,
    ).validate()
    try:
        search_id = state.jobs.submit(info.id, settings)
    except QueueFull as exc:
        raise HTTPException(status_code=429, detail=str(exc), headers={"Retry-After": "30"}) from None
    except ServiceStopping as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    response.headers["Location"] = f"/v1/searches/{search_id}"
    return {"id": search_id, "status": "queued", "dataset_id": info.id}


@router.get("/{search_id}", response_model=SearchStatus, summary="Status of a search",
            responses=error_responses(404, 422))
def get_search(search_id: SearchId, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Status, trials done, best trial so far and the trajectory (best score after each trial)."""
    search = search_or_404(state, search_id)
    return _status(state, search, _trials(state, search_id))


@router.get("/{search_id}/trials", response_model=TrialList, summary="Trials of a search",
            responses=error_responses(404, 422))
def get_trials(search_id: SearchId, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Every trial of the search (also while it runs), oldest first, with its configuration."""
    search = search_or_404(state, search_id)
    return {"search_id": search_id, "status": search["status"], "trials": _trials(state, search_id)}


@router.delete("/{search_id}", status_code=202, response_model=CancelResponse, summary="Cancel a search",
               responses={200: {"model": CancelResponse, "description": "Cancelled before it started."},
                          **error_responses(404, 409, 422)})
def cancel_search(search_id: SearchId, response: Response, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Cancel a queued (200, at once) or running search (202: it stops after the trial in progress and
    keeps the trials it finished). 409 when it has already finished."""
    search = search_or_404(state, search_id)
    if search["status"] not in ACTIVE:
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


def _model_path(state: AppState, search_id: int) -> Any:
    search = search_or_404(state, search_id)
    if search["status"] in ACTIVE:
        raise Conflict(f"search {search_id} is {search['status']}; its model is available once it has finished")
    path = state.store.model_path(search_id)
    if not path.is_file():
        why = f" ({search['error']})" if search.get("error") else ""
        raise NotFound(f"search {search_id} has no model on this server{why}")
    return path


@router.get("/{search_id}/model", summary="Download the fitted pipeline", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "A joblib file written by metalearn.model_io.save_model: "
                                            "{'format', 'model', 'metadata'}; read it with load_model."},
                       **error_responses(404, 409, 422)})
def download_model(search_id: SearchId, state: AppState = Depends(get_state)) -> FileResponse:
    """The best pipeline of a finished search, refitted on the whole dataset (joblib)."""
    path = _model_path(state, search_id)
    return FileResponse(path, media_type="application/octet-stream", filename=f"metalearn-search-{search_id}.joblib")


@router.post("/{search_id}/predict", response_model=PredictResponse, summary="Predict with a search's model",
             responses=error_responses(400, 404, 409, 413, 422))
def predict(search_id: SearchId, body: PredictRequest, state: AppState = Depends(get_state)) -> dict[str, Any]:
    """Predictions (and class probabilities when the model has them) for rows given as {column: value}.

    The model's feature columns must all be present; other keys (e.g. the target) are ignored.
    """
    import pandas as pd

    if len(body.rows) > state.settings.max_predict_rows:
        raise HTTPException(status_code=413, detail=f"{len(body.rows):,} rows, more than the limit of "
                                                    f"{state.settings.max_predict_rows:,} per request "
                                                    "(METALEARN_API_MAX_PREDICT_ROWS)")
    model, meta = state.models.get(_model_path(state, search_id))
    columns = list(meta.get("columns") or [])
    frame = pd.DataFrame.from_records(body.rows)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise HTTPException(status_code=400, detail=f"rows lack {len(missing)} column(s) the model needs: {shown}")
    X = _features(frame, columns, set(meta.get("categorical") or []))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictions = model.predict(X)
            probabilities = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    except (ValueError, TypeError, KeyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HTTPException(status_code=400, detail=f"cannot predict these rows: {detail}") from None
    classes = getattr(model, "classes_", None)
    return {"predictions": jsonable(predictions), "probabilities": None if probabilities is None else
            jsonable(probabilities), "classes": None if classes is None else jsonable(classes)}


def _features(frame: Any, columns: list[str], categorical: set[str]) -> Any:
    """The model's columns, typed as in training: categoricals as text (missing as NaN), the rest as floats."""
    import numpy as np
    import pandas as pd

    X = pd.DataFrame(index=frame.index)
    for column in columns:
        values = frame[column].astype(object)
        missing = values.map(lambda v: v is None or (isinstance(v, float) and math.isnan(v)))
        if column in categorical:
            X[column] = pd.Series([np.nan if m else str(v) for v, m in zip(values, missing, strict=True)],
                                  index=frame.index, dtype=object)
            continue
        invalid = [i for i, (v, m) in enumerate(zip(values, missing, strict=True))
                   if not m and not _is_number(v)]
        if invalid:
            raise HTTPException(status_code=400, detail=f"column {column!r} needs numbers; row {invalid[0]} has "
                                                        f"{values.iloc[invalid[0]]!r}")
        X[column] = pd.to_numeric(values.where(~missing, np.nan), errors="coerce").astype(float)
    return X


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


@router.get("/{search_id}/report", summary="Model report of a finished search",
            responses={200: {"content": {"text/html": {}, "application/json": {}},
                             "description": "Self-contained HTML (default) or, with `Accept: application/json`, "
                                            "the same figures as JSON: metrics, confusion matrix, calibration, "
                                            "permutation importance, partial dependence, SHAP, surrogate tree, "
                                            "the search's trajectory and neighbours."},
                       **error_responses(404, 409, 422)})
def get_report(search_id: SearchId, request: Request, state: AppState = Depends(get_state)) -> Response:
    """Evaluation, explanations and the search itself, built once per search and cached on the server.

    Without a kept test split the figures come from cross-validated predictions on the uploaded table.
    """
    import json

    from metalearn.model_io import load_model
    from metalearn.report import MEDIA_TYPES, build_report, render_report

    fmt = "json" if "application/json" in request.headers.get("accept", "") else "html"
    path = _model_path(state, search_id)
    cached = state.store.search_dir(search_id) / "report.json"
    if cached.is_file():
        data = json.loads(cached.read_text())
    else:
        search = search_or_404(state, search_id)
        model, meta = load_model(path)
        dataset = state.store.load_dataset(search["dataset_id"])
        report = build_report(model, dataset, kb=state.kb, search_id=search_id,
                              configuration=meta.get("configuration"))
        data = json.loads(render_report(report, "json"))
        tmp = cached.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(cached)
    return Response(render_report(data, fmt), media_type=MEDIA_TYPES[fmt])
