"""CLI searches stopped by SIGINT and by ``kill -9`` (SIGTERM: ``test_server_faults``): finished trials stay, the
trial in flight is killed at once (stored ``cancelled`` after a signal), the search ends ``interrupted`` -- at
once after a signal, by knowledge base maintenance after a ``kill -9`` -- the knowledge base stays intact, and a
new search runs."""

from __future__ import annotations

import signal
from pathlib import Path

from fault_helpers import (
    MEDIUM,
    SLOW,
    CliSearch,
    gone,
    new_search_runs,
    runs_of,
    search_of,
    sqlite_intact,
    stopped_search,
    table,
    trial_in_flight,
    unseeded_kb,
    wait_for,
)


def test_sigint_and_kill_9_of_cli_searches(tmp_path: Path) -> None:
    db = str(tmp_path / "kb.sqlite")
    kb = unseeded_kb(db)
    slow, medium = table(tmp_path / "slow.csv", 3000), table(tmp_path / "medium.csv", 800, seed=1)
    interrupted = CliSearch.start(tmp_path, db, slow, *SLOW)
    killed = CliSearch.start(tmp_path, db, medium, *MEDIUM)  # both at once, on one knowledge base
    stopped_search(kb, interrupted, 130, signal.SIGINT)

    search_id = search_of(kb, killed)
    wait_for(lambda: len(runs_of(kb, search_id)) >= 2, 120, "two finished trials")
    trial = trial_in_flight(killed.pid, min_age=0.3)
    killed.process.kill()
    killed.wait()
    assert gone(trial, 1.0), "the trial process outlived a kill -9 of its search"
    finished = len(runs_of(kb, search_id))
    assert finished >= 2 and kb.search(search_id)["status"] == "running"  # nobody could say otherwise yet
    # maintenance: the search's owner is gone, so it is interrupted (a live search would be left alone)
    assert kb.interrupt_orphaned_searches() == 1
    row = kb.search(search_id)
    assert row["status"] == "interrupted" and "is gone" in row["error"]
    assert len(runs_of(kb, search_id)) == finished and kb.interrupt_orphaned_searches() == 0
    sqlite_intact(db)
    new_search_runs(kb, medium)
