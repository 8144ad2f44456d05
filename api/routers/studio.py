"""The web studio at ``/``: the HTML shell and its static files (``/studio/static``); no data, no API key.

The page is a client of the public ``/v1`` API (it asks for the API key and sends it as any client does), so
the same authentication and limits apply. Client-side routes live in the URL's fragment (``/#/searches/17``),
so every page can be shared and reloaded.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from metalearn import __version__
from metalearn.api.studio import STATIC_DIR, TEMPLATES_DIR
from metalearn.protocol import (
    ACTIVE_STATUSES,
    CLASSIFICATION_METRICS,
    DEFAULTS,
    NEGATED_METRICS,
    REGRESSION_METRICS,
    STRATEGIES,
)

STATIC_PATH = "/studio/static"

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def studio_config() -> dict[str, Any]:
    """The choices the page offers, from :mod:`metalearn.protocol` (the lists the API validates against)."""
    return {"version": __version__, "strategies": list(STRATEGIES),
            "metrics": {"classification": list(CLASSIFICATION_METRICS), "regression": list(REGRESSION_METRICS)},
            "negated": list(NEGATED_METRICS), "active_statuses": list(ACTIVE_STATUSES),
            "defaults": {"strategy": DEFAULTS.strategy, "n_trials": DEFAULTS.n_trials, "top": DEFAULTS.top,
                         "k": DEFAULTS.k, "seed": DEFAULTS.seed, "folds": DEFAULTS.folds,
                         "ensemble_size": DEFAULTS.ensemble_size}}


@router.get("/", response_class=HTMLResponse)
def studio(request: Request) -> HTMLResponse:
    """The studio's single page."""
    response = templates.TemplateResponse(request, "index.html", {"config": studio_config(), "static": STATIC_PATH,
                                                                 "version": __version__})
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/studio", include_in_schema=False)
def studio_alias() -> RedirectResponse:
    return RedirectResponse("/")


def static_files() -> StaticFiles:
    """The studio's static files, mounted at :data:`STATIC_PATH`."""
    return StaticFiles(directory=str(STATIC_DIR))
