"""``GET /v1/searches/{id}/report`` builds each search's report once, outside the server process (issue #19.5).

A real ``metalearn serve`` (the session's ``open_server``): one small search, then three concurrent report
requests. Exactly one of them builds the report (``X-Metalearn-Report: built``), the others wait for that build
(``waited``) and every answer carries the same bytes; later requests read the cached file (``cached``). While the
build runs, the server keeps answering and spends (almost) no CPU of its own on it: the build runs in a worker
process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from conftest import breast_cancer_frame

from metalearn.api.reports import ReportService
from metalearn.api.storage import DataStore
from metalearn.client import Client
from metalearn.errors import MetalearnError
from metalearn.knowledge_base import KnowledgeBase

HEADER = "X-Metalearn-Report"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks (USER_HZ = 100)


@pytest.fixture(scope="module")
def finished(open_server: SimpleNamespace) -> SimpleNamespace:
    """One finished search (2 trials on 120 rows) on the session's open server."""
    with Client(open_server.url, timeout=120) as client:
        dataset = client.upload_dataset(breast_cancer_frame(120, seed=4), target="target", name="bc120")
        search = client.start_search(dataset["id"], n_trials=2, folds=2, max_rows=200, ensemble_size=0, seed=0)
        final = client.wait(search["id"], progress=False, timeout=300)
    assert final["status"] == "succeeded", final
    return SimpleNamespace(url=open_server.url, log=open_server.log, search_id=search["id"], data=open_server.data,
                           pid=open_server.process.pid)


def test_concurrent_report_requests_build_it_once(finished: SimpleNamespace) -> None:
    url = f"{finished.url}/v1/searches/{finished.search_id}/report"
    start = threading.Barrier(3)

    def fetch(_: int) -> httpx.Response:
        start.wait()
        return httpx.get(url, headers={"Accept": "application/json"}, timeout=300)

    cpu_before, started = _cpu_seconds(finished.pid), time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(fetch, i) for i in range(3)]
        time.sleep(0.5)  # the build is under way: the server still answers at once
        health_started = time.monotonic()
        assert httpx.get(f"{finished.url}/v1/health", timeout=30).status_code == 200
        health_seconds = time.monotonic() - health_started
        responses = [p.result() for p in pending]
    build_seconds, server_cpu = time.monotonic() - started, _cpu_seconds(finished.pid) - cpu_before
    print(f"report built in {build_seconds:.1f} s; server CPU meanwhile {server_cpu:.2f} s; "
          f"/v1/health during the build {health_seconds * 1000:.0f} ms")

    assert [r.status_code for r in responses] == [200] * 3, [r.text[:300] for r in responses]
    how = sorted(r.headers[HEADER] for r in responses)
    assert how.count("built") == 1 and set(how) <= {"built", "waited", "cached"}, how
    assert len({r.content for r in responses}) == 1  # the same bytes for everyone
    figures = responses[0].json()
    assert figures["sections"]["confusion-matrix"]["matrix"]
    # the open server runs with METALEARN_API_REPORT_SHAP=0: LIME explains the individual predictions instead
    assert "skipped" in figures["sections"]["shap"] and figures["sections"]["lime"]["used"]
    assert health_seconds < 1.0
    assert server_cpu < 0.5 * build_seconds  # the build ran in another process
    assert (finished.data / "searches" / str(finished.search_id) / "report.json").is_file()

    again = httpx.get(url, headers={"Accept": "application/json"}, timeout=60)
    assert again.status_code == 200 and again.headers[HEADER] == "cached" and again.content == responses[0].content
    html = httpx.get(url, timeout=60)
    assert html.headers[HEADER] == "cached" and html.text.lstrip().lower().startswith("<!doctype html")
    leftovers = [p.name for p in (finished.data / "searches" / str(finished.search_id)).iterdir()
                 if p.name.endswith(".tmp")]
    assert not leftovers


def test_report_of_unknown_or_unfinished_searches(finished: SimpleNamespace) -> None:
    response = httpx.get(f"{finished.url}/v1/searches/99999/report", timeout=30)
    assert response.status_code == 404 and "99999" in response.json()["detail"]
    text = Path(finished.log).read_text()
    assert "Traceback" not in text and "unhandled error" not in text, text[-3000:]


def test_a_failed_build_reaches_every_waiting_request_and_is_not_cached(tmp_path: Path) -> None:
    """The worker's error (here: no such search) comes back with its HTTP status to all concurrent requests."""
    kb = KnowledgeBase(str(tmp_path / "kb.sqlite"))
    service = ReportService(DataStore(tmp_path / "data").ensure(), kb.url, niceness=0)

    async def both() -> list[BaseException | tuple]:
        return await asyncio.gather(service.get(424242), service.get(424242), return_exceptions=True)

    try:
        outcomes = asyncio.run(both())
        assert all(isinstance(o, MetalearnError) and o.http_status == 404 and "424242" in str(o) for o in outcomes)
        assert service.builds == 0 and not service.store.has_report(424242)
        again = asyncio.run(both())  # nothing stuck: the next request builds (and fails) again
        assert all(isinstance(o, MetalearnError) for o in again)
    finally:
        kb.dispose()
