"""Tenants over real HTTP (a real ``metalearn serve``): each API key is an identity that sees only its own datasets,
searches, models and reports (another identity's answer exactly like a missing id: 404), admin keys see all, a
plain key still works, per-key quotas answer 429 with ``Retry-After``, and a server without keys is unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from servers import running_server
from sklearn.datasets import load_iris

from metalearn.errors import MetalearnError
from metalearn.knowledge_base import KnowledgeBase
from metalearn.settings import ServerSettings, derived_identity, hash_api_key, parse_api_keys

KEYS = {"alice": "alice-key-1f3e", "bob": "bob-key-77a0", "carol": "carol-key-9c21", "dave": "dave-key-04be"}
ADMIN_KEY = "root-key-5d6f"
PLAIN_KEY = "plain-key-e812"
TINY = {"strategy": "random", "n_trials": 2, "folds": 2, "seed": 0, "trial_time_limit": 60, "ensemble_size": 0}
LONG = TINY | {"n_trials": 500}
UPLOADS_PER_HOUR = 5


def iris_csv(rows: int = 150, seed: int = 0) -> bytes:
    iris = load_iris(as_frame=True)
    frame = iris.data.assign(target=iris.target).sample(frac=1.0, random_state=seed).head(rows)
    return frame.round(1).to_csv(index=False).encode()


STORED_BYTES = len(iris_csv()) + len(iris_csv(120, seed=3)) + 10  # two uploads fit, not a third


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(url: str, key: str | None, content: bytes, name: str = "iris") -> httpx.Response:
    return httpx.post(f"{url}/v1/datasets", data={"target": "target", "name": name}, timeout=120,
                      headers=auth(key) if key else {}, files={"file": (f"{name}.csv", content, "text/csv")})


def wait_done(url: str, key: str | None, search_id: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(f"{url}/v1/searches/{search_id}", headers=auth(key) if key else {}, timeout=30).json()
        if status["status"] not in ("queued", "running"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------------ settings


def test_api_keys_carry_identities() -> None:
    keys = parse_api_keys("alice:K1, K2 ,bob:sha256:" + "ab" * 32 + ",sha256:" + "cd" * 32)
    assert [(k.name, k.admin) for k in keys] == [("alice", False), (derived_identity(hash_api_key("K2")), False),
                                                  ("bob", False), ("key-cdcdcdcd", False)]
    assert keys[0].digest == hash_api_key("K1") and keys[1].name == "key-" + hash_api_key("K2").hex()[:8]
    env = {"METALEARN_API_KEYS": "alice:K1", "METALEARN_API_ADMIN_KEYS": "root:K9"}
    settings = ServerSettings.from_env(env, db_url="sqlite:///unused.sqlite")
    assert [(k.name, k.admin) for k in settings.api_keys] == [("alice", False), ("root", True)]
    assert settings.max_searches_per_key == 4  # half of 1 worker + 8 queued: one key cannot take every slot
    for bad in ({"METALEARN_API_KEYS": "alice:K1,bob:K1"}, {"METALEARN_API_KEYS": "anonymous:K1"},
                {"METALEARN_API_KEYS": "alice:"},
                {"METALEARN_API_KEYS": "alice:K1", "METALEARN_API_ADMIN_KEYS": "alice:K2"}):
        with pytest.raises(MetalearnError):
            ServerSettings.from_env(bad, db_url="sqlite:///unused.sqlite")


# ------------------------------------------------------------------------------------------------ with keys


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("tenants")
    db = root / "kb.sqlite"
    kb = KnowledgeBase(str(db))  # a search stored before owners existed: no owner
    legacy_dataset = kb.register_dataset(name="legacy", content_hash="legacy-hash", n_rows=10, n_features=2,
                                         n_classes=2)
    legacy = kb.start_search(legacy_dataset, "random", {})
    kb.finish_search(legacy, "succeeded")
    kb.dispose()
    env = {"METALEARN_DB": str(db), "METALEARN_DATA_DIR": str(root / "data"), "METALEARN_API_SEED": "0",
           "METALEARN_API_KEYS": ",".join(f"{name}:{key}" for name, key in KEYS.items()) + f",{PLAIN_KEY}",
           "METALEARN_API_ADMIN_KEYS": f"root:{ADMIN_KEY}", "METALEARN_API_SEARCH_WORKERS": "1",
           "METALEARN_API_SEARCH_QUEUE": "4", "METALEARN_API_MAX_SEARCHES_PER_KEY": "1",
           "METALEARN_API_UPLOADS_PER_HOUR": str(UPLOADS_PER_HOUR),
           "METALEARN_API_MAX_STORED_BYTES_PER_KEY": str(STORED_BYTES), "METALEARN_API_CANCEL_GRACE": "5"}
    with running_server(root, env) as running:
        yield SimpleNamespace(url=running.url, legacy=legacy, legacy_dataset=legacy_dataset)


@pytest.fixture(scope="module")
def alice_search(server) -> SimpleNamespace:
    """alice's dataset and a finished search on it (with a model)."""
    dataset = upload(server.url, KEYS["alice"], iris_csv(), name="alice_iris")
    assert dataset.status_code == 201, dataset.text
    started = httpx.post(f"{server.url}/v1/searches", json={"dataset_id": dataset.json()["id"], **TINY},
                         headers=auth(KEYS["alice"]), timeout=30)
    assert started.status_code == 202, started.text
    final = wait_done(server.url, KEYS["alice"], started.json()["id"])
    assert final["status"] == "succeeded" and final["model_available"] and final["owner"] == "alice", final
    return SimpleNamespace(dataset_id=dataset.json()["id"], search_id=final["id"])


def test_another_tenants_objects_are_404(server, alice_search) -> None:
    url, bob, d, s = server.url, auth(KEYS["bob"]), alice_search.dataset_id, alice_search.search_id
    missing = httpx.get(f"{url}/v1/datasets/999999", headers=bob, timeout=30)
    hidden = httpx.get(f"{url}/v1/datasets/{d}", headers=bob, timeout=30)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == f"no dataset with id {d}"  # the same answer as for an unknown id
    row = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}
    answers = {
        "search": httpx.get(f"{url}/v1/searches/{s}", headers=bob, timeout=30),
        "trials": httpx.get(f"{url}/v1/searches/{s}/trials", headers=bob, timeout=30),
        "model": httpx.get(f"{url}/v1/searches/{s}/model", headers=bob, timeout=30),
        "predict": httpx.post(f"{url}/v1/searches/{s}/predict", json={"rows": [row]}, headers=bob, timeout=30),
        "report": httpx.get(f"{url}/v1/searches/{s}/report", headers=bob, timeout=30),
        "cancel": httpx.delete(f"{url}/v1/searches/{s}", headers=bob, timeout=30),
        "recommend": httpx.post(f"{url}/v1/recommendations", json={"dataset_id": d}, headers=bob, timeout=60),
        "search on it": httpx.post(f"{url}/v1/searches", json={"dataset_id": d, **TINY}, headers=bob, timeout=30),
    }
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 404), \
        {name: a.text for name, a in answers.items()}
    # the owner still has all of it
    alice = auth(KEYS["alice"])
    assert httpx.get(f"{url}/v1/searches/{s}/model", headers=alice, timeout=30).status_code == 200
    predicted = httpx.post(f"{url}/v1/searches/{s}/predict", json={"rows": [row]}, headers=alice, timeout=60)
    assert predicted.status_code == 200 and len(predicted.json()["predictions"]) == 1
    assert httpx.post(f"{url}/v1/recommendations", json={"dataset_id": d}, headers=alice, timeout=60).status_code == 200
    # a search stored before owners existed: admin only
    assert httpx.get(f"{url}/v1/searches/{server.legacy}", headers=alice, timeout=30).status_code == 404
    legacy = httpx.get(f"{url}/v1/searches/{server.legacy}", headers=auth(ADMIN_KEY), timeout=30)
    assert legacy.status_code == 200 and legacy.json()["owner"] is None


def test_lists_are_disjoint_and_admin_sees_all(server, alice_search) -> None:
    url = server.url
    bob_upload = upload(url, KEYS["bob"], iris_csv(120, seed=1), name="bob_iris")
    assert bob_upload.status_code == 201 and bob_upload.json()["existing"] is False
    # bob uploads alice's very table: one dataset (one content hash), now his too, under his own name
    same = upload(url, KEYS["bob"], iris_csv(), name="bobs_copy")
    assert same.status_code == 201 and same.json()["id"] == alice_search.dataset_id
    assert same.json()["existing"] is False and same.json()["name"] == "bobs_copy"

    def listing(key: str) -> dict[int, str]:
        answer = httpx.get(f"{url}/v1/datasets", headers=auth(key), timeout=30).json()
        assert answer["total"] == len(answer["datasets"])
        return {d["id"]: d["name"] for d in answer["datasets"]}

    alice, bob, admin = listing(KEYS["alice"]), listing(KEYS["bob"]), listing(ADMIN_KEY)
    assert alice == {alice_search.dataset_id: "alice_iris"}
    assert bob == {bob_upload.json()["id"]: "bob_iris", alice_search.dataset_id: "bobs_copy"}
    assert set(admin) >= set(alice) | set(bob) | {server.legacy_dataset}
    assert listing(PLAIN_KEY) == {}  # a plain key is an identity of its own
    assert httpx.get(f"{url}/v1/datasets/{server.legacy_dataset}", headers=auth(KEYS["bob"]),
                     timeout=30).status_code == 404
    assert httpx.get(f"{url}/v1/searches/{alice_search.search_id}", headers=auth(ADMIN_KEY),
                     timeout=30).json()["owner"] == "alice"
    # the knowledge stays shared
    stats = [httpx.get(f"{url}/v1/knowledge-base/stats", headers=auth(k), timeout=30) for k in (KEYS["bob"], PLAIN_KEY)]
    assert [s.status_code for s in stats] == [200, 200] and stats[0].json()["datasets"] == len(admin)


def test_a_plain_key_still_works(server) -> None:
    answer = upload(server.url, PLAIN_KEY, iris_csv(90, seed=2), name="plain")
    assert answer.status_code == 201, answer.text
    mine = httpx.get(f"{server.url}/v1/datasets/{answer.json()['id']}", headers=auth(PLAIN_KEY), timeout=30)
    assert mine.status_code == 200 and mine.json()["name"] == "plain"
    assert httpx.get(f"{server.url}/v1/datasets/{answer.json()['id']}", headers=auth(KEYS["alice"]),
                     timeout=30).status_code == 404


def test_search_quota_per_key(server, alice_search) -> None:
    url, alice, bob = server.url, auth(KEYS["alice"]), auth(KEYS["bob"])
    body = {"dataset_id": alice_search.dataset_id, **LONG}
    assert upload(url, KEYS["bob"], iris_csv(), name="bobs_copy").json()["id"] == alice_search.dataset_id
    first = httpx.post(f"{url}/v1/searches", json=body, headers=alice, timeout=30)
    assert first.status_code == 202, first.text
    try:
        second = httpx.post(f"{url}/v1/searches", json=body, headers=alice, timeout=30)
        assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
        assert "METALEARN_API_MAX_SEARCHES_PER_KEY" in second.json()["detail"]
        # another key still gets a slot (bob owns the dataset too: he uploaded the same table)
        other = httpx.post(f"{url}/v1/searches", json=body, headers=bob, timeout=30)
        assert other.status_code == 202, other.text
        cancelled = httpx.delete(f"{url}/v1/searches/{other.json()['id']}", headers=bob, timeout=30)
        assert cancelled.status_code in (200, 202)
    finally:
        httpx.delete(f"{url}/v1/searches/{first.json()['id']}", headers=alice, timeout=30)
    assert wait_done(url, KEYS["alice"], first.json()["id"], timeout=60)["status"] == "cancelled"


def test_upload_quotas(server) -> None:
    url = server.url
    for _ in range(UPLOADS_PER_HOUR):  # refused uploads count too: each cost the server a parse
        assert upload(url, KEYS["carol"], b"\x00\x01garbage").status_code == 400
    limited = upload(url, KEYS["carol"], iris_csv())
    assert limited.status_code == 429 and 3000 <= int(limited.headers["retry-after"]) <= 3600
    assert "METALEARN_API_UPLOADS_PER_HOUR" in limited.json()["detail"]
    assert upload(url, KEYS["dave"], iris_csv(), name="first").status_code == 201
    assert upload(url, KEYS["dave"], iris_csv(120, seed=3), name="second").status_code == 201
    full = upload(url, KEYS["dave"], iris_csv(60, seed=4), name="third")
    assert full.status_code == 429 and int(full.headers["retry-after"]) >= 1
    assert "METALEARN_API_MAX_STORED" in full.json()["detail"]
    assert httpx.get(f"{url}/v1/datasets", headers=auth(KEYS["dave"]), timeout=30).json()["total"] == 2


# ------------------------------------------------------------------------------------------------ without keys


def test_without_keys_nothing_changes(tmp_path: Path) -> None:
    env = {"METALEARN_DB": str(tmp_path / "kb.sqlite"), "METALEARN_DATA_DIR": str(tmp_path / "data"),
           "METALEARN_API_SEED": "0", "METALEARN_API_KEYS": "", "METALEARN_API_ADMIN_KEYS": "",
           "METALEARN_API_SEARCH_QUEUE": "4", "METALEARN_API_UPLOADS_PER_HOUR": "1"}
    with running_server(tmp_path, env) as running:
        url = running.url
        assert httpx.get(f"{url}/v1/health", timeout=30).json()["auth_required"] is False
        first = upload(url, None, iris_csv())
        again = upload(url, None, iris_csv())  # no upload quota without keys
        assert first.status_code == again.status_code == 201 and again.json()["existing"] is True
        d = first.json()["id"]
        assert [x["id"] for x in httpx.get(f"{url}/v1/datasets", timeout=30).json()["datasets"]] == [d]
        ids = []
        for _ in range(3):  # beyond half the capacity: no per-key quota without keys
            answer = httpx.post(f"{url}/v1/searches", json={"dataset_id": d, **LONG}, timeout=30)
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        status = httpx.get(f"{url}/v1/searches/{ids[0]}", timeout=30).json()
        assert status["owner"] is None
        for search_id in reversed(ids):
            assert httpx.delete(f"{url}/v1/searches/{search_id}", timeout=30).status_code in (200, 202)
        assert wait_done(url, None, ids[0], timeout=60)["status"] == "cancelled"
