"""Which searches count as orphaned: an owner process gone from this host (or its pid reused since), or no
heartbeat for longer than the stale limit (an owner on another host, a search stored before heartbeats); a live
owner on this host keeps its search however old its last beat (suspended, or starved on a busy database).
SQLite, and PostgreSQL when the CI provides one (the ``kb`` fixture)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import update

from metalearn.knowledge_base import KnowledgeBase
from metalearn.knowledge_base.models import SearchRow, utcnow
from metalearn.knowledge_base.searches import STALE_AFTER


def _set(kb: KnowledgeBase, search_id: int, **values: object) -> None:
    with kb.writing() as session:
        session.execute(update(SearchRow).where(SearchRow.id == search_id).values(**values))


def test_only_searches_whose_owner_is_gone_are_interrupted(kb: KnowledgeBase) -> None:
    later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _check_orphans(kb, later)
    finally:
        later.kill()
        later.wait()


def _check_orphans(kb: KnowledgeBase, later: subprocess.Popen) -> None:
    dataset = kb.register_dataset(name="d", content_hash="1" * 64, n_rows=10, n_features=2, n_classes=2)
    ids = {name: kb.start_search(dataset, "random", {}) for name in ("mine", "dead_pid", "reused_pid", "far_fresh",
                                                                     "far_stale", "legacy_old", "legacy_new",
                                                                     "queued_dead", "done")}
    old = utcnow() - timedelta(seconds=STALE_AFTER + 5)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _set(kb, ids["mine"], heartbeat_at=old)  # alive here: kept
    _set(kb, ids["dead_pid"], owner_pid=dead.pid)
    _set(kb, ids["reused_pid"], owner_pid=later.pid, heartbeat_at=old)  # a process younger than the last beat
    _set(kb, ids["far_fresh"], owner_host="elsewhere", owner_pid=1)
    _set(kb, ids["far_stale"], owner_host="elsewhere", owner_pid=1, heartbeat_at=old)
    _set(kb, ids["legacy_old"], owner_host=None, owner_pid=None, heartbeat_at=None, started_at=old)
    _set(kb, ids["legacy_new"], owner_host=None, owner_pid=None, heartbeat_at=None)
    _set(kb, ids["queued_dead"], status="queued", owner_pid=dead.pid)
    assert kb.finish_search(ids["done"], "succeeded")

    orphans = dict(kb.orphaned_searches())
    assert set(orphans) == {ids[n] for n in ("dead_pid", "reused_pid", "far_stale", "legacy_old", "queued_dead")}
    assert "is gone" in orphans[ids["dead_pid"]] and "no heartbeat for" in orphans[ids["far_stale"]]
    assert kb.interrupt_orphaned_searches() == 5 and kb.interrupt_orphaned_searches() == 0
    status = {name: kb.search(i)["status"] for name, i in ids.items()}
    assert status == {"mine": "running", "dead_pid": "interrupted", "reused_pid": "interrupted", "far_fresh": "running",
                      "far_stale": "interrupted", "legacy_old": "interrupted", "legacy_new": "running",
                      "queued_dead": "interrupted", "done": "succeeded"}
    # forward only: an interrupted search stays interrupted whoever finishes it late
    assert not kb.finish_search(ids["dead_pid"], "succeeded")
    assert kb.search(ids["dead_pid"])["status"] == "interrupted"


def test_keep_alive_beats_while_the_block_runs(kb: KnowledgeBase) -> None:
    dataset = kb.register_dataset(name="d", content_hash="2" * 64, n_rows=10, n_features=2, n_classes=2)
    search_id = kb.start_search(dataset, "random", {})
    _set(kb, search_id, owner_host="elsewhere", heartbeat_at=utcnow() - timedelta(hours=1))
    with kb.keep_alive(search_id, interval=0.1):
        claimed = kb.search(search_id)
        time.sleep(0.35)
        beaten = kb.search(search_id)["heartbeat_at"]
    assert claimed["owner_host"] != "elsewhere" and beaten > claimed["heartbeat_at"]
    assert kb.orphaned_searches() == []
    assert kb.finish_search(search_id, "succeeded") and kb.beat([search_id]) == 0  # a finished search is not beaten
