"""Fairness mitigation through the HTTP API and the Python client (issue #21), over a real ``metalearn serve``
(the session's ``open_server``).

``POST /v1/searches`` with ``sensitive`` + ``fairness`` is checked like ``metalearn search --sensitive --fairness``
(400 before anything is queued), the worker post-processes the final model, the status carries the before /
after figures, the model predicts, and ``GET /v1/searches/{id}/report`` has a fairness section: by default for
the mitigated column, else for the ``sensitive`` columns asked for (repeatable or comma-separated; cached per
list of columns). Data: ``tests/data/titanic_sex.csv`` (600 rows, sensitive column ``sex``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pandas as pd
import pytest

from metalearn.client import APIError, Client

TITANIC = Path(__file__).resolve().parent / "data" / "titanic_sex.csv"
HEADER = "X-Metalearn-Report"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def server(open_server: SimpleNamespace) -> Iterator[SimpleNamespace]:
    """The session's open server (no keys), with the Titanic sample uploaded, once the searches of earlier tests
    have left its queue."""
    with Client(open_server.url, timeout=300) as client:
        dataset = client.upload_dataset(TITANIC, target="survived", name="titanic_sex")
        deadline = time.monotonic() + 60
        while (queue := client.health()["searches"])["running"] or queue["queued"]:
            assert time.monotonic() < deadline, f"the open server stays busy: {queue}"
            time.sleep(0.2)
        yield SimpleNamespace(url=open_server.url, log=open_server.log, client=client, dataset_id=dataset["id"],
                              data=open_server.data)


@pytest.fixture(scope="module")
def fair(server: SimpleNamespace) -> SimpleNamespace:
    """A finished search (3 random trials) whose final model was made fair for ``sex``."""
    search = server.client.start_search(server.dataset_id, strategy="random", n_trials=3, folds=3, ensemble_size=0,
                                        seed=0, sensitive="sex", fairness="demographic_parity")
    final = server.client.wait(search["id"], progress=False, timeout=600)
    assert final["status"] == "succeeded", final
    return SimpleNamespace(id=search["id"], status=final)


def test_unusable_fairness_requests_are_400_before_anything_is_queued(server: SimpleNamespace) -> None:
    cases = [({"sensitive": "gender", "fairness": "demographic_parity"}, "not a column"),
             ({"sensitive": "sex", "fairness": "parity"}, "unknown fairness constraint"),
             ({"sensitive": "survived", "fairness": "equalized_odds"}, "is the target"),
             ({"sensitive": "sex"}, "both a sensitive column and a constraint"),
             ({"fairness": "equalized_odds"}, "both a sensitive column and a constraint")]
    searches = server.client.stats()["searches"]
    for fields, message in cases:
        with pytest.raises(APIError) as refused:
            server.client.start_search(server.dataset_id, strategy="random", n_trials=1, **fields)
        assert refused.value.status_code == 400 and message in refused.value.detail, (fields, refused.value)
    queue = server.client.health()["searches"]
    assert queue["queued"] == queue["running"] == 0
    assert server.client.stats()["searches"] == searches  # no search row was created


def test_mitigated_search_reports_before_and_after_and_predicts(server: SimpleNamespace, fair: SimpleNamespace) -> None:
    status = fair.status
    assert status["settings"]["fairness"] == {"sensitive": "sex", "constraint": "demographic_parity"}
    assert "sex" in status["columns"] and "survived" not in status["columns"]
    figures = status["fairness"]
    assert figures["sensitive"] == "sex" and figures["constraint"] == "demographic_parity"
    before, after = figures["before"], figures["after"]
    assert before["demographic_parity_difference"] > 0.3  # the unmitigated model follows sex closely
    assert after["demographic_parity_difference"] < before["demographic_parity_difference"] / 2
    assert {g["group"] for g in after["groups"]} == {"female", "male"}

    rows = pd.read_csv(TITANIC).head(20)
    answer = server.client.predict(fair.id, rows)
    assert len(answer["predictions"]) == 20 and set(answer["predictions"]) <= {0, 1}
    assert all(abs(sum(p) - 1) < 1e-6 for p in answer["probabilities"])
    with pytest.raises(APIError) as refused:
        server.client.predict(fair.id, rows.drop(columns="sex"))
    assert refused.value.status_code == 400 and "sex" in refused.value.detail


def test_report_fairness_section_defaults_to_the_mitigated_column_and_is_cached_per_columns(
        server: SimpleNamespace, fair: SimpleNamespace) -> None:
    url = f"{server.url}/v1/searches/{fair.id}/report"
    unknown = httpx.get(url, params={"sensitive": "gender"}, headers=JSON, timeout=60)
    assert unknown.status_code == 400 and "gender" in unknown.json()["detail"]

    first = httpx.get(url, headers=JSON, timeout=600)
    assert first.status_code == 200 and first.headers[HEADER] == "built", first.text[:300]
    section = first.json()["sections"]["fairness"]
    assert [a["attribute"] for a in section["attributes"]] == ["sex"]  # the mitigated column, not asked for
    assert section["mitigation"]["after"]["demographic_parity_difference"] < \
        section["mitigation"]["before"]["demographic_parity_difference"]
    same = httpx.get(url, params={"sensitive": "sex"}, headers=JSON, timeout=60)
    assert same.headers[HEADER] == "cached" and same.content == first.content  # the same columns, the same report

    both = server.client.report(fair.id, sensitive=["pclass", "sex"])  # repeated parameter: another report
    assert [a["attribute"] for a in both["sections"]["fairness"]["attributes"]] == ["pclass", "sex"]
    commas = httpx.get(url, params={"sensitive": "pclass, sex"}, headers=JSON, timeout=60)
    assert commas.headers[HEADER] == "cached" and commas.json() == both
    html = httpx.get(url, params={"sensitive": "sex"}, timeout=60)
    assert html.headers[HEADER] == "cached" and "Mitigation: demographic_parity on sex" in html.text
    assert "Traceback" not in Path(server.log).read_text()


def test_studio_offers_the_fairness_fields(server: SimpleNamespace) -> None:
    results = httpx.get(f"{server.url}/studio/static/js/results.js", timeout=30)
    dataset = httpx.get(f"{server.url}/studio/static/js/dataset.js", timeout=30)
    assert results.status_code == dataset.status_code == 200
    assert "'Sensitive column'" in results.text and "?sensitive=" in results.text
    assert "'Sensitive column'" in dataset.text and "'Fairness constraint'" in dataset.text


def test_a_continued_search_is_mitigated_again_and_its_cached_reports_dropped(
        server: SimpleNamespace, fair: SimpleNamespace) -> None:
    reports = server.data / "searches" / str(fair.id)
    assert len(list(reports.glob("report*.json"))) == 2  # the reports of the test above: (sex) and (pclass, sex)
    server.client.continue_search(fair.id, n_trials=1)
    final = server.client.wait(fair.id, progress=False, timeout=600)
    assert final["status"] == "succeeded" and final["trials_done"] == 4, final
    assert final["settings"]["fairness"] == {"sensitive": "sex", "constraint": "demographic_parity"}
    assert final["fairness"]["after"]["demographic_parity_difference"] < \
        final["fairness"]["before"]["demographic_parity_difference"]
    assert not list(reports.glob("report*.json"))  # the model changed: no stale report is served
