"""The benchmark's checkpoint: JSON-lines files appended as results finish, and ``state.json``.

``results.jsonl`` holds one row per (dataset, seed, strategy, budget); a combination whose every
budget has a row is done and skipped when the run resumes. ``state.json`` holds the protocol (which
must not change between a run and its resumption), the knowledge base and the compute spent.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metalearn.benchmark.config import LEGACY_PROTOCOL, BenchmarkConfig
from metalearn.errors import MetalearnError
from metalearn.protocol import dumps_json

Done = set[tuple[str, int, str, int]]
#: Longest pause between two result rows still counted as compute by :func:`hours_from_rows`.
ROW_GAP_LIMIT = 3600.0


def now() -> str:
    """The current UTC time, ISO format to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records as one locked write (several worker processes share the file)."""
    text = "".join(dumps_json(r) + "\n" for r in records)
    if not text:
        return
    with path.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (killed mid-write) is ignored."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def done_combinations(records: Iterable[dict[str, Any]]) -> Done:
    """The (dataset key, seed, strategy, budget) combinations that have a result row."""
    return {(r["dataset_key"], int(r["seed"]), r["strategy"], int(r["budget"])) for r in records}


def is_done(done: Done, key: str, seed: int, strategy: str, config: BenchmarkConfig) -> bool:
    """Whether ``strategy`` on dataset ``key`` with ``seed`` has a row at every budget it runs at."""
    return all((key, seed, strategy, b) in done for b in config.budgets_of(strategy))


def stored_protocol(output: Path) -> dict[str, Any] | None:
    """The protocol in ``output/state.json`` (None without one), keys it predates filled from
    :data:`~metalearn.benchmark.config.LEGACY_PROTOCOL`."""
    path = output / "state.json"
    if not path.is_file():
        return None
    return LEGACY_PROTOCOL | json.loads(path.read_text()).get("protocol", {})


def load_state(output: Path, config: BenchmarkConfig) -> dict[str, Any]:
    """``state.json`` of ``output`` (a fresh state if there is none); refuses a different protocol or KB."""
    path = output / "state.json"
    protocol = config.protocol()
    if not path.is_file():
        return {"protocol": protocol, "db": config.db, "seconds": 0.0, "invocations": []}
    state = json.loads(path.read_text())
    stored = LEGACY_PROTOCOL | state.get("protocol", {})
    if stored != protocol:
        changed = sorted(k for k in protocol if stored.get(k) != protocol[k])
        raise MetalearnError(f"{output} holds a benchmark with a different protocol ({', '.join(changed)}); "
                             "use another --output or the same settings")
    if state.get("db") != config.db:
        raise MetalearnError(f"{output} was made from knowledge base {state.get('db') or 'seed snapshot'}, "
                             f"not {config.db or 'seed snapshot'}; use another --output")
    return state


def save_state(output: Path, state: dict[str, Any]) -> None:
    """Write ``state.json`` atomically."""
    tmp = output / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(output / "state.json")


@contextmanager
def compute_clock(output: Path, state: dict[str, Any], command: str, every: float = 60.0) -> Iterator[None]:
    """Record an invocation in ``state.json`` when it starts and keep its compute up to date every ``every``
    seconds (and at the end), so a run killed without warning (the end of a session) loses at most that."""
    base, start, lock, stop = float(state.get("seconds", 0.0)), time.perf_counter(), threading.Lock(), threading.Event()
    state.setdefault("invocations", []).append({"started": now(), "seconds": 0.0, "command": command})

    def record() -> None:
        with lock:
            spent = time.perf_counter() - start
            state["seconds"], state["invocations"][-1]["seconds"] = base + spent, spent
            save_state(output, state)

    def beat() -> None:
        while not stop.wait(every):
            record()

    record()
    thread = threading.Thread(target=beat, name="compute-clock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        record()


def hours_from_rows(records: Iterable[dict[str, Any]]) -> float:
    """Wall-clock hours a run's rows span, from their ``created`` times, not counting pauses longer than
    :data:`ROW_GAP_LIMIT` (the run was stopped): the compute of runs that predate :func:`compute_clock`."""
    times = sorted(dt.datetime.fromisoformat(r["created"]).timestamp() for r in records if r.get("created"))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return sum(g for g in gaps if g <= ROW_GAP_LIMIT) / 3600


def compute_hours(state: dict[str, Any], records: Iterable[dict[str, Any]]) -> tuple[float, bool]:
    """The compute of a run in hours, and whether it is an estimate: what ``state.json`` recorded, or the rows'
    span (:func:`hours_from_rows`) when that is larger (invocations killed before :func:`compute_clock`
    existed recorded nothing)."""
    recorded, spanned = float(state.get("seconds", 0.0)) / 3600, hours_from_rows(records)
    return (spanned, True) if spanned > recorded else (recorded, False)
