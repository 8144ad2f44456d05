"""#19.8 / #19.10: no database password in any output, one-line errors for a file that is not a knowledge
base, duplicate column names refused, non-ASCII API keys, and a limit on failed authentications."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import POSTGRES_URL
from servers import free_port, running_server
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from metalearn.api.security import FailureLimiter
from metalearn.cli import app
from metalearn.knowledge_base import KnowledgeBase
from metalearn.settings import redact_url

runner = CliRunner()
PASSWORD = "s3cret-Pa55"


@pytest.fixture
def secret_url() -> str:
    """A PostgreSQL URL with a password, on a loopback port where nothing listens."""
    return f"postgresql+psycopg://alice:{PASSWORD}@127.0.0.1:{free_port()}/kb?connect_timeout=3"


def test_redact_url() -> None:
    assert redact_url("postgresql://alice:pw@db:5432/kb") == "postgresql://alice:***@db:5432/kb"
    assert redact_url("sqlite:////tmp/kb.sqlite") == "sqlite:////tmp/kb.sqlite"
    assert redact_url("/tmp/kb.sqlite") == "/tmp/kb.sqlite"
    assert "pw" not in redact_url("postgresql://alice:pw@[::1/kb")  # not even parseable


def test_kb_commands_never_print_the_password(tmp_path: Path, secret_url: str) -> None:
    manifest = tmp_path / "corpus"
    manifest.mkdir()
    (manifest / "manifest.json").write_text(json.dumps([{"name": "x", "file": "x.csv", "target": "y"}]))
    (manifest / "x.csv").write_text("a,y\n1,0\n2,1\n")
    snapshot = tmp_path / "snap.json"
    snapshot.write_text("{}")
    commands = [["kb", "init"], ["kb", "stats"], ["kb", "upgrade"], ["kb", "export", str(tmp_path / "out.json")],
                ["kb", "import", str(snapshot)], ["kb", "seed", "--manifest", str(manifest)]]
    for command in commands:
        result = runner.invoke(app, [*command, "--db", secret_url])
        assert result.exit_code == 2, (command, result.output)
        assert PASSWORD not in result.output, command
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.output
        assert "alice:***@127.0.0.1" in result.stderr or command[1] == "import", result.output
    assert PASSWORD not in repr(KnowledgeBase(secret_url, create=False))


def test_serve_never_prints_the_password(tmp_path: Path, secret_url: str) -> None:
    env = os.environ | {"METALEARN_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "metalearn.cli", "serve", "--db", secret_url, "--port",
                           str(free_port()), "--log-level", "info"], env=env, capture_output=True, text=True,
                          timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "alice:***@127.0.0.1" in output, output
    assert PASSWORD not in output


@pytest.mark.skipif(not POSTGRES_URL or not make_url(POSTGRES_URL).password,
                    reason="METALEARN_TEST_POSTGRES_URL with a password not set")
def test_kb_init_on_real_postgres_hides_the_password() -> None:
    result = runner.invoke(app, ["kb", "init", "--no-seed", "--db", POSTGRES_URL])
    assert result.exit_code == 0, result.output
    secret = make_url(POSTGRES_URL).password  # CI's user and password are both "metalearn": look for ":<pw>@"
    assert f":{secret}@" not in result.output and ":***@" in result.output


def test_a_file_that_is_not_sqlite_is_one_error_line(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("these are my notes, not a database\n" * 40)
    data = tmp_path / "d.csv"
    data.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    for command in (["kb", "stats"], ["kb", "init"], ["kb", "upgrade"], ["recommend", str(data), "-t", "y"]):
        result = runner.invoke(app, [*command, "--db", str(bogus)])
        assert result.exit_code == 2, (command, result.output)
        lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("task: ")]
        assert lines == [
            f"error: cannot open knowledge base sqlite:///{bogus}: file is not a database "
            "(is it a SQLite knowledge base?)"], result.output


def test_a_knowledge_base_under_a_file_is_one_error_line(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    for command in (["kb", "stats"], ["kb", "init"]):
        result = runner.invoke(app, [*command, "--db", str(blocker / "kb.sqlite")])
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.strip().splitlines() == [
            f"error: cannot create the folder of knowledge base sqlite:///{blocker}/kb.sqlite: {blocker} is a file, "
            "not a folder"], result.output
    assert blocker.read_text() == "a file, not a folder\n"


def test_duplicate_column_names_are_refused(tmp_path: Path) -> None:
    csv = tmp_path / "dup.csv"
    csv.write_text("a,b,a,y\n" + "".join(f"{i},{i},{i},{i % 2}\n" for i in range(20)))
    parquet = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array(range(20)), pa.array(range(20)), pa.array([i % 2 for i in range(20)])],
                            names=["b", "b", "y"]), parquet)
    for path, name in [(csv, "'a'"), (parquet, "'b'")]:
        result = runner.invoke(app, ["metafeatures", str(path), "-t", "y"])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (f"error: {path.name} has duplicate column names: {name}; give every "
                                          "column its own name")
    fine = tmp_path / "fine.csv"  # a column really named "a.1" is no duplicate
    fine.write_text("a,a.1,y\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20)))
    assert runner.invoke(app, ["metafeatures", str(fine), "-t", "y", "--json"]).exit_code == 0


def test_failure_limiter_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(limit=3, window=10.0, clock=lambda: now[0])
    for t in (0.0, 1.0, 2.0):
        now[0] = t
        assert limiter.retry_after("1.2.3.4") is None
        limiter.record("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == 8 and limiter.retry_after("5.6.7.8") is None
    now[0] = 10.5  # the first failure aged out
    assert limiter.retry_after("1.2.3.4") is None


def test_api_keys_non_ascii_and_failed_authentication_limit(tmp_path: Path) -> None:
    key = "clé-secrète-ü-42"
    env = {"METALEARN_API_KEYS": f"other-key,{key}", "METALEARN_API_SEED": "0",
           "METALEARN_DB": str(tmp_path / "kb.sqlite")}
    with running_server(tmp_path, env) as server:
        stats = f"{server.url}/v1/knowledge-base/stats"
        for encoding in ("utf-8", "latin-1"):  # the key's UTF-8 bytes, or latin-1 from an older client
            answer = httpx.get(stats, headers={"Authorization": f"Bearer {key}".encode(encoding)}, timeout=30)
            assert answer.status_code == 200, (encoding, answer.text)
        upload = httpx.post(f"{server.url}/v1/datasets", data={"target": "y"}, timeout=60,
                            headers={"Authorization": f"Bearer {key}".encode()},
                            files={"file": ("dup.csv", b"a,a,y\n" + b"1,2,0\n3,4,1\n" * 10, "text/csv")})
        assert upload.status_code == 400 and "duplicate column names: 'a'" in upload.json()["detail"]
        assert httpx.get(stats, timeout=30).status_code == 401  # no key at all: not counted as a guess
        for _ in range(10):
            assert httpx.get(stats, headers={"Authorization": "Bearer guess"}, timeout=30).status_code == 401
        blocked = httpx.get(stats, headers={"Authorization": f"Bearer {key}".encode()}, timeout=30)
        assert blocked.status_code == 429 and 1 <= int(blocked.headers["retry-after"]) <= 60
        assert "too many failed authentications" in blocked.json()["detail"]
        assert httpx.get(f"{server.url}/v1/health", timeout=30).status_code == 200  # open paths stay open
