"""Shared fixtures: small real datasets, temporary knowledge bases, the recorded OpenML cache, the CLI in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import openml
import pandas as pd
import pytest
from servers import running_server
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner

from metalearn.cli import app
from metalearn.knowledge_base import KnowledgeBase

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OPENML_FIXTURE = SHARED / "fixtures" / "openml-cache"
CORPUS = SHARED / "datasets"


@pytest.fixture(scope="session", autouse=True)
def _one_model_key(tmp_path_factory: pytest.TempPathFactory):
    """One model-signing key for the whole run (set before any fixture of a wider scope saves a model)."""
    os.environ["METALEARN_MODEL_KEY_FILE"] = str(tmp_path_factory.getbasetemp() / "model.key")
    yield


@pytest.fixture(scope="session")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One ``metalearn serve`` for the session's tests of endpoints that need no keys and no shipped seed: no API
    keys, an empty knowledge base, one search worker, reports without SHAP (``test_api`` builds one with it).
    Starting a server (and its first worker) takes seconds, so the modules share it; each test uploads its own
    dataset and asks only about its own searches. ``(url, log, process, root, data, db)``."""
    root = tmp_path_factory.mktemp("open-server")
    env = {"METALEARN_DB": str(root / "kb.sqlite"), "METALEARN_DATA_DIR": str(root / "data"),
           "METALEARN_CACHE_DIR": str(root / "cache"), "METALEARN_API_SEED": "0", "METALEARN_API_KEYS": "",
           "METALEARN_API_SEARCH_WORKERS": "1", "METALEARN_API_REPORT_SHAP": "0", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    with running_server(root, env) as running:
        yield SimpleNamespace(url=running.url, log=running.log, process=running.process, root=root,
                              data=root / "data", db=env["METALEARN_DB"])


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's knowledge base or cache: point METALEARN_DB at a temp dir and METALEARN_CACHE_DIR at
    one cache for the whole run (so the seeded knowledge base is copied, not loaded again, by every test)."""
    root = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("METALEARN_DB", str(root / "default-kb.sqlite"))
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def _worker_postgres_url(url: str | None) -> str | None:
    """The test database of this pytest-xdist worker: ``<database>_<worker>`` on the same server, created on first
    use, so that two workers never drop each other's tables (``url`` itself without xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


POSTGRES_URL = _worker_postgres_url(os.environ.get("METALEARN_TEST_POSTGRES_URL"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``metalearn ARGS`` run in this process (the typer app ``python -m metalearn.cli`` runs, without the seconds
    a new interpreter spends importing scikit-learn and SMAC), with ``env`` set meanwhile; an unexpected exception
    is exit code 1 with its traceback on stderr. Tests of signals, kills and processes use a real subprocess."""
    result = CliRunner().invoke(app, list(args), env=env)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["metalearn", *args], result.exit_code, result.stdout, stderr)


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def kb_path(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Knowledge base location: a SQLite file, and (when METALEARN_TEST_POSTGRES_URL is set) a clean
    PostgreSQL database; .ci/run starts a real server and sets it."""
    if request.param == "sqlite":
        return str(tmp_path / "kb.sqlite")
    if not POSTGRES_URL:
        pytest.skip("METALEARN_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server)")
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def kb(kb_path: str):
    base = KnowledgeBase(kb_path)
    yield base
    base.dispose()


def breast_cancer_frame(n: int = 150, seed: int = 0) -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    return frame.sample(n=n, random_state=seed).reset_index(drop=True)


def wine_frame() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def messy_iris_frame(seed: int = 0) -> pd.DataFrame:
    """Iris with injected NaNs, string categoricals (one with rare levels) and string labels."""
    rng = np.random.default_rng(seed)
    frame = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["colour"] = rng.choice(["red", "green", "blue", "violet"], size=len(frame), p=[0.5, 0.3, 0.17, 0.03])
    frame["size"] = pd.cut(frame["petal_length"], 3, labels=["small", "medium", "large"]).astype(str)
    mask = rng.random(frame.shape) < 0.08
    mask[:, list(frame.columns).index("target")] = False
    frame = frame.mask(mask)
    frame["target"] = frame["target"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    return frame


@pytest.fixture
def openml_cache(tmp_path: Path):
    """A temp copy of the recorded OpenML cache, with openml pointed at it (offline)."""
    if not OPENML_FIXTURE.is_dir():
        pytest.skip("../shared/fixtures/openml-cache is not present")
    target = tmp_path / "openml-cache"
    shutil.copytree(OPENML_FIXTURE, target)
    old_server, old_retries = openml.config.server, openml.config.connection_n_retries
    openml.config.set_root_cache_directory(str(target))
    openml.config.server = "https://test.openml.org/api/v1/xml"
    openml.config.connection_n_retries = 1  # what the cache lacks fails at once, not after retries with pauses
    yield target
    openml.config.server, openml.config.connection_n_retries = old_server, old_retries
