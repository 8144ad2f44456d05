"""Listing searches (``GET /v1/searches``) and deleting uploads (``DELETE /v1/datasets/{id}``) over real HTTP (a real
``metalearn serve`` with API keys): each key lists and deletes only its own, another key's dataset is a 404 like an
unknown id, an active search blocks the delete (409), deleting frees the key's stored-bytes quota, the models of
the caller's searches go while the knowledge base keeps the dataset's meta-features and runs (no dangling rows),
and the same table uploaded again works.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from servers import running_server
from test_tenants import ADMIN_KEY, KEYS, LONG, STORED_BYTES, TINY, auth, iris_csv, upload, wait_done

from metalearn.client import APIError, Client
from metalearn.knowledge_base import KnowledgeBase
from metalearn.metafeatures import EXTRACTOR_VERSIONS

ALICE, BOB = KEYS["alice"], KEYS["bob"]
SUMMARY_FIELDS = ("id", "dataset_id", "dataset", "owner", "strategy", "status", "metric", "n_trials", "trials_done",
                  "best_score", "started_at", "finished_at", "model_available")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A server with keys for alice and bob, an admin key, and a stored-bytes quota of two small uploads per key;
    alice and bob each have a finished 2-trial search on their own upload."""
    root = tmp_path_factory.mktemp("listing")
    env = {"METALEARN_DB": str(root / "kb.sqlite"), "METALEARN_DATA_DIR": str(root / "data"),
           "METALEARN_API_SEED": "0", "METALEARN_API_KEYS": f"alice:{ALICE},bob:{BOB}",
           "METALEARN_API_ADMIN_KEYS": f"root:{ADMIN_KEY}", "METALEARN_API_SEARCH_WORKERS": "1",
           "METALEARN_API_UPLOADS_PER_HOUR": "0", "METALEARN_API_MAX_STORED_BYTES_PER_KEY": str(STORED_BYTES),
           "METALEARN_API_CANCEL_GRACE": "5", "OMP_NUM_THREADS": "1"}
    with running_server(root, env) as running:
        ids = {}
        for who, key, content in (("alice", ALICE, iris_csv()), ("bob", BOB, iris_csv(120, seed=1))):
            dataset = upload(running.url, key, content, name=f"{who}_iris")
            assert dataset.status_code == 201, dataset.text
            started = httpx.post(f"{running.url}/v1/searches", json={"dataset_id": dataset.json()["id"], **TINY},
                                 headers=auth(key), timeout=30)
            assert started.status_code == 202, started.text
            assert wait_done(running.url, key, started.json()["id"])["status"] == "succeeded"
            ids[who] = SimpleNamespace(dataset=dataset.json()["id"], search=started.json()["id"])
        yield SimpleNamespace(url=running.url, db=root / "kb.sqlite", alice=ids["alice"], bob=ids["bob"])


def listing(server: SimpleNamespace, key: str, **params: object) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/searches", params=params, headers=auth(key), timeout=30)


def test_each_key_lists_its_own_searches_newest_first(server) -> None:
    alice, bob = server.alice, server.bob
    mine = listing(server, ALICE).json()
    assert mine["total"] == 1 and [s["id"] for s in mine["searches"]] == [alice.search]
    item = mine["searches"][0]
    status = httpx.get(f"{server.url}/v1/searches/{alice.search}", headers=auth(ALICE), timeout=30).json()
    assert {name: status[name] for name in SUMMARY_FIELDS} == item  # an item is the start of the search's status
    assert item["dataset"] == "alice_iris" and item["status"] == "succeeded" and item["strategy"] == "random"
    assert item["trials_done"] == 2 and item["best_score"] == status["best"]["score"] and item["model_available"]
    assert item["finished_at"] >= item["started_at"]
    assert [s["id"] for s in listing(server, BOB).json()["searches"]] == [bob.search]
    # filters: another key's dataset filters to nothing (no 404 that would confirm it exists)
    assert listing(server, ALICE, status="running").json() == {"searches": [], "total": 0, "limit": 50, "offset": 0}
    assert listing(server, ALICE, dataset_id=bob.dataset).json()["total"] == 0
    assert listing(server, ALICE, dataset_id=alice.dataset, status="succeeded").json()["total"] == 1
    # admin: everyone's, newest first, paged
    everyone = listing(server, ADMIN_KEY).json()
    assert [s["id"] for s in everyone["searches"]] == [bob.search, alice.search] and everyone["total"] == 2
    page = listing(server, ADMIN_KEY, limit=1, offset=1).json()
    assert [s["id"] for s in page["searches"]] == [alice.search] and page["total"] == 2
    assert page["searches"][0]["owner"] == "alice" and page["searches"][0]["dataset"] == "alice_iris"
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"status": "finished"}, {"dataset_id": 0}):
        assert listing(server, ALICE, **bad).status_code == 422, bad
    with Client(server.url, api_key=BOB) as client:
        assert [s["id"] for s in client.list_searches(status="succeeded")["searches"]] == [bob.search]
        assert client.list_searches(dataset_id=alice.dataset)["total"] == 0


def test_delete_is_the_owners_and_blocked_while_a_search_runs(server) -> None:
    url, d, bob = server.url, server.alice.dataset, server.bob
    for key, dataset_id in ((BOB, d), (ALICE, 999_999)):  # another key's dataset answers like an unknown id
        answer = httpx.delete(f"{url}/v1/datasets/{dataset_id}", headers=auth(key), timeout=30)
        assert answer.status_code == 404 and answer.json()["detail"] == f"no dataset with id {dataset_id}"
    running = httpx.post(f"{url}/v1/searches", json={"dataset_id": d, **LONG}, headers=auth(ALICE), timeout=30)
    assert running.status_code == 202, running.text
    try:
        busy = httpx.delete(f"{url}/v1/datasets/{d}", headers=auth(ALICE), timeout=30)
        assert busy.status_code == 409 and "queued or running" in busy.json()["detail"]
    finally:
        httpx.delete(f"{url}/v1/searches/{running.json()['id']}", headers=auth(ALICE), timeout=30)
    assert wait_done(url, ALICE, running.json()["id"], timeout=60)["status"] == "cancelled"
    assert httpx.get(f"{url}/v1/datasets/{d}", headers=auth(ALICE), timeout=30).json()["stored"]  # nothing deleted
    # an admin key deletes for every owner: bob's table and his search's model
    by_admin = httpx.delete(f"{url}/v1/datasets/{bob.dataset}", headers=auth(ADMIN_KEY), timeout=30)
    assert by_admin.status_code == 200, by_admin.text
    assert by_admin.json()["table_deleted"] is True and by_admin.json()["models_deleted"] == [bob.search]
    assert httpx.get(f"{url}/v1/datasets/{bob.dataset}", headers=auth(BOB), timeout=30).status_code == 404
    assert not httpx.get(f"{url}/v1/searches/{bob.search}", headers=auth(BOB), timeout=30).json()["model_available"]
    again = httpx.delete(f"{url}/v1/datasets/{bob.dataset}", headers=auth(ADMIN_KEY), timeout=30)
    assert again.status_code == 409 and "no upload" in again.json()["detail"]  # nothing left to delete


def test_delete_keeps_the_knowledge_and_frees_the_quota(server, tmp_path: Path) -> None:
    url, d, s = server.url, server.alice.dataset, server.alice.search
    # bob uploads alice's very table (one dataset, two owners); alice fills her quota with a second upload
    assert upload(url, BOB, iris_csv(), name="bobs_copy").json()["id"] == d
    assert upload(url, ALICE, iris_csv(120, seed=3), name="second").status_code == 201
    assert upload(url, ALICE, iris_csv(60, seed=4), name="third").status_code == 429
    assert httpx.post(f"{url}/v1/recommendations", json={"dataset_id": d}, headers=auth(ALICE),
                      timeout=60).status_code == 200  # the server now remembers that alice may see d
    with Client(url, api_key=ALICE) as client:
        deleted = client.delete_dataset(d)
        assert deleted["table_deleted"] is False and deleted["models_deleted"] == [s]  # bob keeps the table
        with pytest.raises(APIError) as gone:
            client.dataset(d)
        assert gone.value.status_code == 404 and d not in [x["id"] for x in client.datasets()["datasets"]]
        for call in (lambda: client.recommend(d), lambda: client.start_search(d, n_trials=1),
                     lambda: client.download_model(s, tmp_path / "m.joblib"), lambda: client.report(s)):
            with pytest.raises(APIError) as hidden:
                call()
            assert hidden.value.status_code == 404
        # alice's searches stay hers, with their trials; the model is gone and it cannot go on on bob's table
        status = client.search(s)
        assert status["status"] == "succeeded" and status["trials_done"] == 2 and not status["model_available"]
        names = [x["dataset"] for x in client.list_searches(dataset_id=d)["searches"]]
        assert names and set(names) == {None}  # the name it gave is gone with its upload
        with pytest.raises(APIError) as refused:
            client.continue_search(s, n_trials=1)
        assert refused.value.status_code == 409 and "deleted" in refused.value.detail
    assert upload(url, ALICE, iris_csv(60, seed=4), name="third").status_code == 201  # the freed bytes take it
    bobs = httpx.get(f"{url}/v1/datasets/{d}", headers=auth(BOB), timeout=30).json()
    assert bobs["stored"] and bobs["name"] == "bobs_copy"
    # the last owner deletes: the table goes; the knowledge base keeps the dataset, its meta-features and runs
    last = httpx.delete(f"{url}/v1/datasets/{d}", headers=auth(BOB), timeout=30).json()
    assert last["table_deleted"] is True and last["models_deleted"] == []
    kb = KnowledgeBase(str(server.db), create=False)
    assert kb.dataset(d).n_rows == 150 and kb.metafeatures(d, EXTRACTOR_VERSIONS["classification"])
    assert kb.dataset_owners(d) == [] and len(kb.runs_frame(search_id=s)) == 2
    kb.dispose()
    with sqlite3.connect(server.db) as db:
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert httpx.get(f"{url}/v1/datasets/{d}", headers=auth(ADMIN_KEY), timeout=30).json()["stored"] is False
    # the same table uploaded again is a first upload again: same id, stored, searchable
    back = upload(url, BOB, iris_csv(), name="back")
    assert back.status_code == 201 and back.json()["id"] == d and back.json()["existing"] is False
    bobs = httpx.get(f"{url}/v1/datasets/{d}", headers=auth(BOB), timeout=30).json()
    assert bobs["stored"] and bobs["name"] == "back" and bobs["meta_features"]
