"""Searches submitted over HTTP: a bounded queue and worker processes, never the event loop.

Lifecycle of a search (its status lives in the knowledge base, so any server process can read it):

* ``POST /v1/searches`` -> :meth:`JobManager.submit` creates the search row at once
  (``kb.start_search(..., status="queued")``) and appends it to the queue, or refuses with
  :class:`QueueFull` (HTTP 429) when ``search_workers + search_queue`` searches are already active, or when
  the caller's identity already has its quota of searches queued or running (``max_searches_per_key``, counted
  in the knowledge base, so over every server process), so one key cannot take every slot. The row records
  the identity as the search's ``owner``.
* A scheduler thread starts up to ``search_workers`` searches at a time, each in a fresh ``spawn``
  process (own interpreter: no state shared with the server, memory returned when it ends, and it
  can be killed without harming the server). The row goes ``queued -> running`` atomically, so a
  search cancelled while queued never starts.
* The worker (:func:`run_search_job`) runs :meth:`WarmStartSearch.run` with the search id and
  ``finish=False``, so every trial is written to the knowledge base as it finishes
  (``GET /v1/searches/{id}`` reads them from there), saves the refitted model to the data directory
  (post-processed first for the search's fairness request, if any: :func:`metalearn.service.apply_fairness`)
  and only then sets the final status itself
  (``succeeded``, ``failed`` or ``cancelled``): a client that sees ``succeeded`` can download the model.
* Cancellation writes a flag file; a thread of the worker sees it within half a second and kills the
  running trial (stored ``cancelled``), and the search stops before its next trial. A worker still busy
  ``cancel_grace`` seconds later is killed and the search marked cancelled. Trials finished before stay
  in the knowledge base in every case.
* Every status change goes through the knowledge base's repository (``set_search_status``,
  ``finish_search``, ``interrupt_orphaned_searches``), which only moves a search forward.
* Honest states: the scheduler beats for its queued and running searches and the worker's search for
  itself, so another process can tell a live search from an orphan. A worker that dies marks nothing:
  the scheduler sees its exit code and marks the search failed. At shutdown, queued and running
  searches are marked ``interrupted`` and worker processes are killed. A worker dies with its server
  (``PR_SET_PDEATHSIG``, and it checks its parent), so after a ``kill -9`` of the server no orphan
  finishes a search or writes its model; at the next startup the searches whose owner is gone are
  marked ``interrupted`` (:func:`metalearn.service.recover_searches`), and a search another live
  process runs (a CLI search on the same knowledge base) is left alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from metalearn.api.storage import DataStore
from metalearn.api.tenants import RETRY_SEARCH, quota_exceeded
from metalearn.errors import Conflict, MetalearnError, QueueFull, ServiceStopping
from metalearn.evaluation import cancel_running_trials, die_with_parent
from metalearn.knowledge_base import KnowledgeBase
from metalearn.knowledge_base.searches import HEARTBEAT_INTERVAL
from metalearn.mitigation import FairnessRequest
from metalearn.service import (
    STOPPED_QUEUED,
    STOPPED_RUNNING,
    apply_fairness,
    continuation,
    finish_tracking,
    save_search_model,
    training_rows,
)
from metalearn.settings import ServerSettings, mlflow_uri
from metalearn.tracking import MlflowTracker
from metalearn.warmstart.continued import FAIRNESS, stored_fairness
from metalearn.warmstart.result import SearchResult
from metalearn.warmstart.search import SearchSettings, WarmStartSearch

log = logging.getLogger("metalearn.api.jobs")

CANCELLED_QUEUED = "cancelled before it started"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Job:
    search_id: int
    dataset_id: int
    settings: dict[str, Any]


@dataclass
class _Running:
    job: Job
    process: Any
    started: float
    cancel_deadline: float | None = None


@dataclass
class JobManager:
    """Bounded queue + scheduler thread + one worker process per running search."""

    settings: ServerSettings
    kb: KnowledgeBase
    store: DataStore
    on_finished: Callable[[int], None] | None = None
    _queue: deque[Job] = field(default_factory=deque)
    _running: dict[int, _Running] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")

    # ------------------------------------------------------------------ public

    @property
    def capacity(self) -> int:
        return self.settings.search_workers + self.settings.search_queue

    def counts(self) -> dict[str, int]:
        with self._cond:
            return {"workers": self.settings.search_workers, "running": len(self._running),
                    "queued": len(self._queue), "queue_limit": self.settings.search_queue}

    def start(self) -> JobManager:
        self._thread = threading.Thread(target=self._loop, name="metalearn-search-scheduler", daemon=True)
        self._thread.start()
        return self

    def submit(self, dataset_id: int, search_settings: SearchSettings, owner: str | None = None,
               owner_limit: int | None = None, fairness: FairnessRequest | None = None) -> int:
        """Create the search row (status ``queued``, owned by ``owner``) and enqueue it; :class:`QueueFull` when
        the queue is full or ``owner`` has ``owner_limit`` searches queued or running already. ``fairness`` (a
        checked request) is stored with the settings, and the worker mitigates the final model for it."""
        with self._cond:
            if self._closed:
                raise ServiceStopping("the server is shutting down; submit the search again later")
            self._check_owner_quota(owner, owner_limit)
            active = len(self._queue) + len(self._running)
            if active >= self.capacity:
                raise QueueFull(f"the search queue is full ({len(self._running)} running, {len(self._queue)} "
                                f"waiting, limit {self.capacity}); retry when a search has finished")
            values = asdict(search_settings) | ({FAIRNESS: asdict(fairness)} if fairness is not None else {})
            search_id = self.kb.start_search(dataset_id, search_settings.strategy,
                                             values | {"submitted_at": _now().isoformat() + "Z"},
                                             status="queued", owner=owner)
            self._queue.append(Job(search_id, dataset_id, values))
            self._cond.notify_all()
        return search_id

    def _check_owner_quota(self, owner: str | None, owner_limit: int | None) -> None:
        """429 when ``owner`` has ``owner_limit`` searches queued or running (in any server process)."""
        if owner is None or owner_limit is None:
            return
        mine = self.kb.count_active_searches(owner)
        if mine >= owner_limit:
            raise quota_exceeded(f"{owner} has {mine} searches queued or running, the limit per key "
                                 "(METALEARN_API_MAX_SEARCHES_PER_KEY); retry when one has finished", RETRY_SEARCH)

    def submit_continue(self, search_id: int, dataset_id: int, n_trials: int | None,
                        time_budget: float | None, owner: str | None = None, owner_limit: int | None = None,
                        holder: str | None = None) -> None:
        """Queue a finished search again to add trials (``POST /v1/searches/{id}/continue``): its row goes back to
        ``queued`` (:func:`metalearn.service.continuation`), its old cancel flag and cached report are dropped, and
        the worker continues it (:meth:`WarmStartSearch.run` with its id loads its trials). ``holder``, an identity
        that sees only its own datasets, must still hold the search's dataset (:class:`Conflict` once it deleted
        its upload; checked under the queue's lock, as :meth:`delete_upload` checks for active searches)."""
        with self._cond:
            if self._closed:
                raise ServiceStopping("the server is shutting down; submit the search again later")
            self._check_owner_quota(owner, owner_limit)  # the per-key quota, as for a new search
            if holder is not None and not self.kb.owns_dataset(dataset_id, holder):
                raise Conflict(f"{holder} deleted its upload of dataset {dataset_id}, the data of search {search_id}; "
                               "upload the table again to continue it")
            if len(self._queue) + len(self._running) >= self.capacity:
                raise QueueFull(f"the search queue is full (limit {self.capacity}); retry when a search has finished")
            fairness = stored_fairness(self.kb.search(search_id)["settings"])  # mitigated again at the end
            settings = continuation(self.kb, search_id, None, n_trials=n_trials, time_budget=time_budget,
                                    status="queued")
            self.store.cancel_path(search_id).unlink(missing_ok=True)
            self.store.drop_reports(search_id)
            values = asdict(settings) | ({FAIRNESS: fairness} if fairness else {})
            self._queue.append(Job(search_id, dataset_id, values))
            self._cond.notify_all()

    def delete_upload(self, dataset_id: int, owner: str | None) -> tuple[bool, list[int]]:
        """Delete ``owner``'s upload of a dataset (``None``: every owner's): its owner records, the stored table once
        no owner is left, and the model files and reports of the searches on it that it started (``None``: all);
        returns (whether the table was deleted, the searches whose model was deleted). The knowledge base keeps
        the dataset's row, meta-features, searches and runs. :class:`Conflict` while one of those searches (or,
        when the table goes, any search on it) is queued or running; checked under the queue's lock, as
        :meth:`submit_continue` checks that the caller still holds the dataset."""
        with self._cond:
            owners = self.kb.dataset_owners(dataset_id)
            last = owner is None or set(owners) <= {owner}
            if self.kb.count_active_searches(None if last else owner, dataset_id):
                raise Conflict(f"a search on dataset {dataset_id} is queued or running; cancel it or wait until it "
                               "has finished, then delete the dataset")
            if not (owners or self.store.sidecar(dataset_id) or self.store.table_path(dataset_id).is_file()):
                raise Conflict(f"dataset {dataset_id} has no upload on this server to delete (it came from the "
                               "knowledge base)")
            self.kb.remove_dataset_owners(dataset_id, owner)
            table = last and self.store.delete_table(dataset_id)
        searches, _ = self.kb.list_searches(owner=owner, dataset_id=dataset_id)
        return table, [row["id"] for row in searches if self.store.delete_model(row["id"])]

    def cancel(self, search_id: int) -> str:
        """``cancelled`` (it had not started), ``cancelling`` (it stops after the current trial), or the
        status it already had."""
        with self._cond:
            for job in list(self._queue):
                if job.search_id == search_id:
                    self._queue.remove(job)
                    self.kb.set_search_status(search_id, "cancelled", error=CANCELLED_QUEUED)
                    return "cancelled"
            # queued by another server process, or still queued here in a race: the row decides
            if self.kb.set_search_status(search_id, "cancelled", when=("queued",), error=CANCELLED_QUEUED):
                self.store.request_cancel(search_id)
                return "cancelled"
            status = self.kb.search(search_id)["status"]
            if status != "running":
                return status
            self.store.request_cancel(search_id)
            running = self._running.get(search_id)
            if running is not None and running.cancel_deadline is None:
                running.cancel_deadline = time.monotonic() + self.settings.cancel_grace
            self._cond.notify_all()
            return "cancelling"

    def close(self) -> None:
        """Stop scheduling; kill the workers and mark their searches and the queued ones interrupted."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            queued, running = list(self._queue), dict(self._running)
            self._queue.clear()
            self._running.clear()
            self._cond.notify_all()
        for job in queued:
            self.kb.set_search_status(job.search_id, "interrupted", error=STOPPED_QUEUED)
        for search_id, run in running.items():
            _kill(run.process)
            self.kb.set_search_status(search_id, "interrupted", error=STOPPED_RUNNING)
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------ scheduler

    def _loop(self) -> None:
        beaten = time.monotonic()
        while True:
            finished: list[int] = []
            with self._cond:
                if self._closed:
                    return
                try:
                    finished = self._reap()
                    self._launch()
                    if time.monotonic() - beaten >= HEARTBEAT_INTERVAL:
                        beaten = time.monotonic()
                        self.kb.beat([job.search_id for job in self._queue] + list(self._running))
                except Exception:  # keep scheduling whatever happens to one search
                    log.exception("search scheduler error")
                self._cond.wait(timeout=0.25)
            for search_id in finished:
                if self.on_finished is not None:
                    self.on_finished(search_id)

    def _launch(self) -> None:
        while len(self._running) < self.settings.search_workers and self._queue:
            job = self._queue.popleft()
            if not self.kb.set_search_status(job.search_id, "running", when=("queued",)):
                continue  # cancelled meanwhile
            payload = {"search_id": job.search_id, "dataset_id": job.dataset_id, "settings": job.settings,
                       "db_url": self.kb.url, "data_dir": str(self.store.root),
                       "niceness": self.settings.worker_niceness, "parent": os.getpid()}
            process = self._ctx.Process(target=run_search_job, args=(payload,),
                                        name=f"metalearn-search-{job.search_id}", daemon=False)
            try:
                process.start()
            except Exception as exc:
                self.kb.set_search_status(job.search_id, "failed", error=f"cannot start a worker process: {exc}")
                continue
            self._running[job.search_id] = _Running(job, process, time.monotonic())

    def _reap(self) -> list[int]:
        finished = []
        for search_id, run in list(self._running.items()):
            process = run.process
            code = process.exitcode
            if code is None:
                if run.cancel_deadline is not None and time.monotonic() > run.cancel_deadline:
                    _kill(process)
                    self.kb.set_search_status(search_id, "cancelled",
                                              error=f"cancelled; stopped after {self.settings.cancel_grace:g} s "
                                                    "in a trial (trials finished before are kept)")
                    del self._running[search_id]
                    finished.append(search_id)
                continue
            process.join()
            if code != 0:
                self.kb.set_search_status(search_id, "failed",
                                          error=f"the search worker exited unexpectedly (exit code {code})")
            del self._running[search_id]
            process.close()
            finished.append(search_id)
        return finished


def _kill(process: Any) -> None:
    """Kill a worker and the trial processes it forked (its own process group)."""
    pid = process.pid
    try:
        if pid is not None and os.getpgid(pid) == pid:  # the worker leads its own group (never ours)
            os.killpg(pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass
    process.join(timeout=10)



# --------------------------------------------------------------------------------------------- worker


def _detach(niceness: int | None) -> None:
    """Lead an own process group (trial processes join it and are killed with it) at a lower priority."""
    try:
        os.setpgrp()
    except OSError:
        pass
    if niceness:
        try:
            os.nice(int(niceness))
        except OSError:
            pass


def _finish(engine: WarmStartSearch, result: SearchResult) -> None:
    """Record the final status of a search that ran to its end (after its model was saved)."""
    best = result.best
    if result.status == "cancelled":
        engine.finish(result, "cancelled by request" + ("" if best is not None else "; no trial had succeeded"))
    else:
        engine.finish(result)


def _watch_cancel(store: DataStore, search_id: int, done: threading.Event) -> None:
    """Kill the running trial as soon as the search is cancelled (the loop then stops before the next one)."""
    while not done.wait(0.5):
        if store.cancel_requested(search_id):
            cancel_running_trials()
            return


def _search(kb: KnowledgeBase, payload: dict[str, Any]) -> None:
    """Run the search of ``payload``, save its model, then record its final status.

    An orphan (its server died: it should have died with it) stops, saves nothing and leaves the search
    ``interrupted``, the state the next server's startup gives it too.
    """
    search_id = int(payload["search_id"])
    store = DataStore(Path(payload["data_dir"]))
    dataset = store.load_dataset(int(payload["dataset_id"]))
    engine = WarmStartSearch(kb, SearchSettings.from_dict(payload["settings"]))
    parent = os.getppid()

    def orphaned() -> bool:
        return os.getppid() != parent

    def should_stop() -> str | bool:
        return "interrupted" if orphaned() else store.cancel_requested(search_id)

    done = threading.Event()
    threading.Thread(target=_watch_cancel, args=(store, search_id, done), daemon=True).start()
    tracker = MlflowTracker() if mlflow_uri() else None  # the server's METALEARN_MLFLOW_URI, as for the CLI
    if tracker is not None:
        tracker.start(dataset, engine.settings)
    try:
        result = engine.run(dataset, should_stop=should_stop, search_id=search_id, finish=False,
                            callback=tracker.on_trial if tracker is not None else None)
    except BaseException:
        if tracker is not None:
            tracker.fail()
        raise
    finally:
        done.set()
    if orphaned():
        engine.kb.finish_search(search_id, "interrupted", error=STOPPED_RUNNING)
        return
    if result.model is not None:
        fairness = stored_fairness(payload["settings"])
        if fairness:  # as service.search: the final model post-processed, figures in result.extra["fairness"]
            apply_fairness(result, training_rows(dataset, result), FairnessRequest(**fairness))
        save_search_model(result, dataset, store.model_path(search_id), engine.kb)  # with its drift profile
    if tracker is not None:
        finish_tracking(tracker, result, training_rows(dataset, result))
    _finish(engine, result)


def _failure_message(exc: BaseException) -> str:
    known = isinstance(exc, MetalearnError)
    detail = str(exc).splitlines()[0] if str(exc) else ""
    if not known:
        traceback.print_exc(file=sys.stderr)
    message = detail if known and detail else f"{type(exc).__name__}: {detail}".rstrip(": ")
    return f"search failed: {message}"[:2000]


def run_search_job(payload: dict[str, Any]) -> None:
    """Entry point of a worker process: run one search, save its model, set its final status."""
    die_with_parent(payload.get("parent"))
    _detach(payload.get("niceness"))
    warnings.simplefilter("ignore")
    kb: KnowledgeBase | None = None
    try:
        kb = KnowledgeBase(payload["db_url"], create=False)
        _search(kb, payload)
    except BaseException as exc:  # record why, then exit non-zero
        message = _failure_message(exc)
        try:
            (kb or KnowledgeBase(payload["db_url"], create=False)).set_search_status(
                int(payload["search_id"]), "failed", error=message)
        except Exception:
            pass
        raise SystemExit(1) from None
