"""The endpoints behind the studio's knowledge-base page, over real HTTP: ``GET /v1/knowledge-base/datasets`` and
``GET /v1/knowledge-base/map``, the HTML shell at ``/`` with its static files, and the package data that ships
them."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from servers import running_server

REPO = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": "Bearer kb-admin-key"}
ALICE = {"Authorization": "Bearer kb-alice-key"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("studio-kb")
    # the session's cache dir (conftest): the shipped seed is loaded once per run, then copied
    env = {"METALEARN_DB": str(root / "kb.sqlite"), "METALEARN_DATA_DIR": str(root / "data"),
           "METALEARN_API_ADMIN_KEYS": "admin:kb-admin-key",
           "METALEARN_API_KEYS": "alice:kb-alice-key", "METALEARN_API_SEARCH_WORKERS": "1", "OMP_NUM_THREADS": "1"}
    with running_server(root, env) as running:
        # the first answer waits for the server's warm-up of the recommenders (seconds on a busy machine)
        assert httpx.get(f"{running.url}/v1/knowledge-base/datasets", headers=ADMIN, timeout=120).status_code == 200
        yield running


def test_datasets_with_best_pipelines(server: SimpleNamespace) -> None:
    stats = httpx.get(f"{server.url}/v1/knowledge-base/stats", headers=ADMIN).json()
    body = httpx.get(f"{server.url}/v1/knowledge-base/datasets", headers=ADMIN).json()
    assert body["total"] == stats["datasets"] == len(body["datasets"])
    scored = [d for d in body["datasets"] if d["best_score"] is not None]
    assert len(scored) == stats["datasets"]  # every seed dataset has successful runs
    assert all(d["best_pipeline"].startswith(d["best_algorithm"]) and 0 < d["best_score"] <= 1 for d in scored)
    found = httpx.get(f"{server.url}/v1/knowledge-base/datasets", params={"q": "WDBC"}, headers=ADMIN).json()
    assert [d["name"] for d in found["datasets"]] == ["wdbc"] and found["total"] == 1
    page = httpx.get(f"{server.url}/v1/knowledge-base/datasets", params={"limit": 5, "offset": 5}, headers=ADMIN).json()
    assert [d["id"] for d in page["datasets"]] == [d["id"] for d in body["datasets"][5:10]]
    # another identity sees the datasets it uploaded only (none), as GET /v1/datasets
    assert httpx.get(f"{server.url}/v1/knowledge-base/datasets", headers=ALICE).json()["total"] == 0
    assert httpx.get(f"{server.url}/v1/knowledge-base/datasets").status_code == 401
    assert httpx.get(f"{server.url}/v1/knowledge-base/datasets", params={"task": "image"},
                     headers=ADMIN).status_code == 422


def test_map_projects_the_neighbour_vectors(server: SimpleNamespace) -> None:
    body = httpx.get(f"{server.url}/v1/knowledge-base/map", headers=ADMIN).json()
    stats = httpx.get(f"{server.url}/v1/knowledge-base/stats", headers=ADMIN).json()
    assert body["task"] == "classification" and len(body["points"]) == stats["by_task"]["classification"]["datasets"]
    first, second = body["explained_variance"]
    assert 0 < second <= first < 1
    assert len({(round(p["x"], 6), round(p["y"], 6)) for p in body["points"]}) > 0.9 * len(body["points"])
    # a dataset placed with ?dataset_id= lands where its own point is (same scaler, same PCA)
    point = body["points"][3]
    placed = httpx.get(f"{server.url}/v1/knowledge-base/map", params={"dataset_id": point["dataset_id"]},
                       headers=ADMIN).json()["query"]
    assert placed["name"] == point["name"]
    assert placed["x"] == pytest.approx(point["x"], abs=1e-9) and placed["y"] == pytest.approx(point["y"], abs=1e-9)
    # the map is shared knowledge, but only one's own dataset can be placed on it
    assert len(httpx.get(f"{server.url}/v1/knowledge-base/map", headers=ALICE).json()["points"]) == len(body["points"])
    url = f"{server.url}/v1/knowledge-base/map"
    assert httpx.get(url, params={"dataset_id": point["dataset_id"]}, headers=ALICE).status_code == 404
    assert httpx.get(url, params={"dataset_id": 10**9}, headers=ADMIN).status_code == 404
    # the regression datasets (of the shipped seed) are a map of their own; a classification dataset is not on it
    regression = httpx.get(url, params={"task": "regression"}, headers=ADMIN).json()
    assert regression["task"] == "regression" and regression["query"] is None
    assert len(regression["points"]) == stats["by_task"]["regression"]["datasets"] > 50
    assert not {p["dataset_id"] for p in regression["points"]} & {p["dataset_id"] for p in body["points"]}


def test_studio_shell_and_static_files_need_no_key(server: SimpleNamespace) -> None:
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="studio-config"' in page.text and "balanced_accuracy" in page.text
    assert "http://" not in page.text.replace(server.url, "") and "https://" not in page.text  # no CDN
    for path in ("js/app.js", "vendor/chart.umd.min.js", "vendor/papaparse.min.js", "vendor/hyparquet.min.js",
                 "studio.css"):
        assert httpx.get(f"{server.url}/studio/static/{path}").status_code == 200, path


def test_every_studio_file_is_package_data() -> None:
    """A non-editable install ships every template and static file (the globs of pyproject.toml cover them)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "metalearn.api.studio" in config["packages"]
    globs = config["package-data"]["metalearn.api.studio"]
    studio = REPO / "api" / "studio"
    files = [p.relative_to(studio).as_posix() for p in studio.rglob("*")
             if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert len(files) > 10
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"not declared as package data: {missing}"
