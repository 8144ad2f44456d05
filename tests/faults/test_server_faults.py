"""``kill -9`` of the API server while a search runs, then a restart on the same knowledge base, with a CLI search
running on that knowledge base all along: the worker dies with its server (no orphan finishes the search or
writes its model), the finished trials stay, the search ends ``interrupted``, the queue is empty, the knowledge
base is intact, a new search runs -- and the restart leaves the live CLI search alone, which SIGTERM then stops
at once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psutil
from fault_helpers import (
    API_KEY,
    SLOW,
    CliSearch,
    gone,
    runs_of,
    search_of,
    sqlite_intact,
    stopped_search,
    table,
    trial_in_flight,
    unseeded_kb,
    wait_for,
)
from servers import kill_hard, running_server

from metalearn.client import Client

SEARCH = {"strategy": "random", "folds": 5, "max_rows": 800, "trial_time_limit": 60}


def _search_worker(server_pid: int) -> psutil.Process:
    """The server's search worker process (a ``spawn`` child; not multiprocessing's resource tracker)."""
    def found() -> psutil.Process | None:
        for child in psutil.Process(server_pid).children():
            command = " ".join(child.cmdline())
            if "spawn_main" in command and "resource_tracker" not in command:
                return child
        return None

    return wait_for(found, 30, "the search worker")


def test_kill_9_of_the_server_during_a_search_then_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "kb.sqlite")
    kb = unseeded_kb(db)
    csv = table(tmp_path / "medium.csv", 800)
    # an admin key: the search a CLI process started has no API owner, and only an admin sees it over HTTP
    env = {"METALEARN_DB": db, "METALEARN_DATA_DIR": str(tmp_path / "data"), "METALEARN_API_ADMIN_KEYS": API_KEY,
           "METALEARN_API_SEED": "0", "METALEARN_API_WORKER_NICE": "0", "PYTHONUNBUFFERED": "1"}
    cli = CliSearch.start(tmp_path, db, table(tmp_path / "slow.csv", 3000, seed=1), *SLOW)
    with running_server(tmp_path, env) as server, Client(server.url, api_key=API_KEY, timeout=60) as client:
        dataset = client.upload_dataset(csv, target="target")
        search_id = client.start_search(dataset["id"], n_trials=500, **SEARCH)["id"]
        wait_for(lambda: client.search(search_id)["trials_done"] >= 2, 120, "two finished trials", every=0.3)
        worker = _search_worker(server.process.pid)
        trial = trial_in_flight(worker.pid, min_age=0.2)
        kill_hard(server)
        assert gone(worker, 2.0) and gone(trial, 2.0), "the search worker outlived its server"
    finished = len(runs_of(kb, search_id))
    assert finished >= 2 and kb.search(search_id)["status"] == "running"
    time.sleep(1.0)  # an orphan would write now: nothing must change
    assert len(runs_of(kb, search_id)) == finished and kb.search(search_id)["status"] == "running"
    cli_search = search_of(kb, cli)

    with running_server(tmp_path, env) as server, Client(server.url, api_key=API_KEY, timeout=60) as client:
        state = client.search(search_id)
        assert state["status"] == "interrupted" and not state["model_available"] and "is gone" in state["error"]
        assert state["trials_done"] == finished == len(client.trials(search_id))
        queue = client.health()["searches"]
        assert queue["running"] == 0 == queue["queued"]
        assert client.search(cli_search)["status"] == "running"  # alive: the restart's recovery left it alone
        stopped_search(kb, cli, 143, signal.SIGTERM)
        sqlite_intact(db)
        again = client.start_search(dataset["id"], n_trials=2, **(SEARCH | {"folds": 3, "max_rows": 200}),
                                    ensemble_size=0)
        final = client.wait(again["id"], progress=False, timeout=120)
        assert final["status"] == "succeeded" and final["model_available"] and final["trials_done"] == 2
        kill_hard(server)  # once more, with nothing running (and no slow shutdown to wait for)
    assert kb.search(search_id)["status"] == "interrupted" and len(runs_of(kb, search_id)) == finished
    sqlite_intact(db)
