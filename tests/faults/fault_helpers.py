"""Helpers of the fault tests: real ``metalearn`` processes on one knowledge base, stopped the hard way."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from sklearn.datasets import make_classification

from metalearn.datasets import load_file
from metalearn.knowledge_base import KnowledgeBase
from metalearn.warmstart import SearchSettings, WarmStartSearch

API_KEY = "fault-key-93e1b7"
#: ``metalearn search`` options: trials of a second or more, of a fraction of a second or more
SLOW = ("--trials", "300", "--folds", "5", "--max-rows", "3000")
MEDIUM = ("--trials", "300", "--folds", "5", "--max-rows", "800")


def table(path: Path, rows: int, features: int = 20, seed: int = 0) -> Path:
    """A synthetic classification CSV: the more rows, the longer each trial."""
    X, y = make_classification(n_samples=rows, n_features=features, n_informative=8, random_state=seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(features)])
    frame["target"] = [f"c{v}" for v in y]
    frame.to_csv(path, index=False)
    return path


def unseeded_kb(db: str) -> KnowledgeBase:
    """A knowledge base that already holds a dataset, so a CLI search does not load the shipped seed into it."""
    kb = KnowledgeBase(db)
    kb.register_dataset(name="placeholder", content_hash="0" * 64, n_rows=2, n_features=1, n_classes=2)
    return kb


@dataclass
class CliSearch:
    """A ``metalearn search --json`` process; its standard output and error go to files."""

    process: subprocess.Popen
    stdout: Path
    stderr: Path

    @classmethod
    def start(cls, root: Path, db: str, csv: Path, *options: str) -> CliSearch:
        stamp = time.monotonic_ns()
        out, err = root / f"search-{stamp}.json", root / f"search-{stamp}.err"
        command = [sys.executable, "-m", "metalearn.cli", "search", str(csv), "--target", "target", "--strategy",
                   "random", "--db", db, "--json", *options]
        env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        with out.open("w") as stdout, err.open("w") as stderr:
            return cls(subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env), out, err)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    def result(self) -> dict[str, Any]:
        text = self.stdout.read_text()
        assert text.strip(), f"no JSON printed; stderr:\n{self.stderr.read_text()[-3000:]}"
        return json.loads(text)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """The first truthy value of ``condition()`` within ``timeout`` seconds (else the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(every)


def trial_in_flight(pid: int, min_age: float = 1.0, timeout: float = 120) -> psutil.Process:
    """A trial process of search process ``pid`` that has been running for ``min_age`` seconds."""

    def found() -> psutil.Process | None:
        try:
            children = psutil.Process(pid).children()
        except psutil.NoSuchProcess:
            raise AssertionError(f"the search process {pid} died") from None
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE and time.time() - child.create_time() >= min_age:
                    return child
            except psutil.NoSuchProcess:
                continue
        return None

    return wait_for(found, timeout, f"a trial of process {pid} running {min_age:g} s")


def gone(process: psutil.Process, timeout: float = 3.0) -> bool:
    """Whether ``process`` has ended (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def runs_of(kb: KnowledgeBase, search_id: int) -> pd.DataFrame:
    """The trials a search stored (its ensemble run left out), oldest first."""
    return kb.runs_frame(search_id=search_id)


def searches(kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Every stored search row."""
    with kb.engine.connect() as connection:
        ids = [row[0] for row in connection.exec_driver_sql("SELECT id FROM searches ORDER BY id")]
    return [kb.search(i) for i in ids]


def sqlite_intact(db: str) -> None:
    """``PRAGMA integrity_check`` is ok and no foreign key dangles."""
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        connection.close()


#: seconds from the signal to the end of the process (about 0.5 s measured; room for a loaded machine)
STOP_LATENCY = 3.0


def stopped_search(kb: KnowledgeBase, search: CliSearch, expected_code: int, signum: int) -> dict:
    """Signal the search while a trial runs; check the process ends fast and what it leaves behind."""
    trial = trial_in_flight(search.pid, min_age=1.0)
    sent = time.monotonic()
    search.process.send_signal(signum)
    code = search.wait(timeout=60)
    latency = time.monotonic() - sent
    assert code == expected_code, search.stderr.read_text()[-2000:]
    assert latency < STOP_LATENCY, f"the search took {latency:.2f} s to stop"
    assert gone(trial, 0.5), "the trial in flight outlived its search"
    result = search.result()
    runs = runs_of(kb, result["search_id"])
    assert result["status"] == "interrupted" == kb.search(result["search_id"])["status"]
    assert len(runs) == result["n_trials"] >= 1
    assert list(runs["status"]).count("cancelled") == 1 and runs["status"].iloc[-1] == "cancelled"
    assert [t["status"] for t in result["trials"]] == list(runs["status"])  # finished trials kept as they were
    return {"latency": latency, "finished": len(runs) - 1}


def search_of(kb: KnowledgeBase, search: CliSearch) -> int:
    """The id of the search row a CLI search process owns, once it exists."""
    return wait_for(lambda: [r["id"] for r in searches(kb) if r["owner_pid"] == search.pid], 90, "the search")[0]


def new_search_runs(kb: KnowledgeBase, csv: Path) -> None:
    """A short search on ``csv`` succeeds and stores its trials."""
    settings = SearchSettings(strategy="random", n_trials=2, folds=3, max_rows=200, ensemble_size=0)
    result = WarmStartSearch(kb, settings).run(load_file(csv, "target"))
    assert result.status == "succeeded" and len(runs_of(kb, result.search_id)) == 2

