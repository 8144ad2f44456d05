"""``POST /v1/recommendations``: ranked pipelines for a dataset of the knowledge base, with evidence."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from metalearn.api.dependencies import CurrentUser, State
from metalearn.api.schemas import RecommendationReport, RecommendationRequest, error_responses
from metalearn.api.security import require_api_key

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"], dependencies=[Depends(require_api_key)],
                   responses=error_responses(401))


@router.post("", response_model=RecommendationReport, summary="Recommend pipelines for a dataset",
             responses=error_responses(404, 409, 422))
async def recommend(body: RecommendationRequest, state: State, user: CurrentUser) -> Response:
    """The body of ``metalearn recommend --json`` for the dataset with id ``dataset_id``.

    The dataset itself is left out of its neighbours (by content hash), as on the command line.
    The recommender is cached in the server process and rebuilt when runs were added to the
    knowledge base (checked at most every 0.2 s); the ``X-Metalearn-Cache`` header says whether the
    response was cached. ``include`` / ``exclude`` / ``interpretable`` keep only the pipelines they allow (a
    filtered-out one is replaced by the next; ``filtered`` says how many).
    """
    await state.access.require_dataset(user, body.dataset_id)  # another identity's dataset: 404
    service = state.recommendations
    control = (tuple(body.include), tuple(body.exclude), body.interpretable)
    known = service.known_metric(body.dataset_id, body.metric) if not any(control) else None
    content = service.peek(body.dataset_id, body.top, body.k, known) if known else None  # in memory, on the loop
    hit = content is not None
    if content is None:
        content, hit = await service.recommend_async(body.dataset_id, body.top, body.k, body.metric, control)
    return Response(content=content, media_type="application/json",
                    headers={"X-Metalearn-Cache": "hit" if hit else "miss"})
