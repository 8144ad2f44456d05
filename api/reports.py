"""Model reports of finished searches: built once each, in a worker process, and cached on disk."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import queue
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from metalearn.api.storage import DataStore
from metalearn.errors import KnowledgeBaseError, MetalearnError, NotFound, QueueFull
from metalearn.evaluation import die_with_parent
from metalearn.knowledge_base import KnowledgeBase
from metalearn.model_io import ModelBundle
from metalearn.report import build_report, render_report
from metalearn.service import attach_mitigation

log = logging.getLogger(__name__)


REPORT_QUEUE = 8  # reports that may be building or waiting to build at once; beyond that 429
ReportKey = tuple[int, tuple[str, ...]]  # a search, the sensitive columns of its report


def report_variant(sensitive: Sequence[str]) -> str:
    """The cache key of a report with a fairness section for ``sensitive`` columns ("": none, ``report.json``)."""
    return hashlib.sha256(json.dumps(list(sensitive)).encode()).hexdigest()[:16] if sensitive else ""


def write_report(kb: KnowledgeBase, store: DataStore, search_id: int, sensitive: Sequence[str] = (),
                 shap: bool = True) -> bool:
    """Build the report of a finished search (with the fairness section of the ``sensitive`` columns, and a
    mitigated model's before / after figures; SHAP values unless not ``shap``) and cache it; False when it was
    cached already.

    Holds the search's report lock, so processes that share the data directory build it once."""
    variant = report_variant(sensitive)
    with store.report_lock(search_id):
        if store.has_report(search_id, variant):
            return False
        try:
            search = kb.search(search_id)
        except KnowledgeBaseError:
            raise NotFound(f"no search with id {search_id}") from None
        bundle = ModelBundle.load(store.model_path(search_id))
        dataset = store.load_dataset(search["dataset_id"])
        report = build_report(bundle.model, dataset, kb=kb, search_id=search_id, sensitive=list(sensitive) or None,
                              configuration=bundle.metadata.get("configuration"), shap=shap)
        attach_mitigation(report, bundle.metadata.get("fairness"))
        store.save_report(search_id, json.loads(render_report(report, "json")), variant)
        return True


def report_worker(db_url: str, data_dir: str, search_id: int, niceness: int, parent: int, answer: Any,
                  sensitive: Sequence[str] = (), shap: bool = True) -> None:
    """Entry point of a report process: :func:`write_report`, then ``("ok", built)``, ``("error", status,
    message)`` or ``("crash", message)`` on the ``answer`` pipe."""
    die_with_parent(parent)
    with contextlib.suppress(OSError):
        os.nice(niceness)
    warnings.simplefilter("ignore")
    kb = None
    try:
        kb = KnowledgeBase(db_url, create=False)
        answer.send(("ok", write_report(kb, DataStore(Path(data_dir)), search_id, sensitive, shap)))
    except MetalearnError as exc:
        answer.send(("error", exc.http_status, str(exc)))
    except Exception as exc:  # a bug: its traceback goes to the server's log
        traceback.print_exc()
        answer.send(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        answer.close()
        if kb is not None:
            kb.dispose()


class ReportService:
    """Model reports of finished searches: each built once, in a worker process, and cached on disk (one report
    per search and list of sensitive columns).

    :meth:`get` returns the cached ``report.json`` when there is one (``cached``); otherwise the first
    request for a search queues its build (``built``) and concurrent requests for the same search wait
    for that build (``waited``) without a thread of their own. One thread runs the builds one at a time,
    each in a fresh ``spawn`` process at a lower priority: the report's cross-validation and explanations
    never take the server's CPU, memory or GIL, and a crash or a kill of the build leaves the server
    untouched. At most :data:`REPORT_QUEUE` searches build or wait at once (beyond: :class:`QueueFull`).
    """

    def __init__(self, store: DataStore, db_url: str, niceness: int = 10, max_pending: int = REPORT_QUEUE,
                 shap: bool = True) -> None:
        self.store, self.db_url, self.niceness, self.max_pending = store, db_url, niceness, max_pending
        self.shap = shap  # SHAP values in the reports (ServerSettings.report_shap)
        self.builds = 0  # reports this service built
        self._lock = threading.Lock()
        self._pending: dict[ReportKey, concurrent.futures.Future[bool]] = {}
        self._queue: queue.SimpleQueue[tuple[ReportKey, concurrent.futures.Future[bool]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def get(self, search_id: int, sensitive: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
        """The report's data (with the fairness section of the ``sensitive`` columns) and how it was obtained:
        ``cached``, ``built`` or ``waited``."""
        variant = report_variant(sensitive)
        data = await run_in_threadpool(self.store.load_report, search_id, variant)
        if data is not None:
            return data, "cached"
        future, how = self._join((search_id, sensitive))
        built = await asyncio.wrap_future(future)
        data = await run_in_threadpool(self.store.load_report, search_id, variant)
        if data is None:
            raise RuntimeError(f"the report of search {search_id} was built but cannot be read back")
        return data, how if built or how == "waited" else "cached"

    def _join(self, key: ReportKey) -> tuple[concurrent.futures.Future[bool], str]:
        """The pending build of the report (``waited``), or a new one (``built``)."""
        with self._lock:
            future = self._pending.get(key)
            if future is not None:
                return future, "waited"
            if len(self._pending) >= self.max_pending:
                raise QueueFull(f"{len(self._pending)} reports are being built; retry later")
            future = concurrent.futures.Future()
            self._pending[key] = future
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="metalearn-reports", daemon=True)
                self._thread.start()
        self._queue.put((key, future))
        return future, "built"

    def _run(self) -> None:
        while True:
            key, future = self._queue.get()
            try:
                built = self._build(*key)
            except BaseException as exc:  # handed to every waiting request
                outcome: tuple[bool, BaseException | None] = (False, exc)
            else:
                outcome = (built, None)
            with self._lock:  # forget the build first: a request after this one finds the file
                del self._pending[key]
            if outcome[1] is not None:
                future.set_exception(outcome[1])
            else:
                future.set_result(outcome[0])

    def _build(self, search_id: int, sensitive: tuple[str, ...]) -> bool:
        """Run :func:`report_worker` in a fresh process and wait for its answer."""
        if self.store.has_report(search_id, report_variant(sensitive)):
            return False
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=report_worker, name=f"metalearn-report-{search_id}", daemon=True,
                                  args=(self.db_url, str(self.store.root), search_id, self.niceness, os.getpid(),
                                        send, sensitive, self.shap))
        started = time.monotonic()
        process.start()
        send.close()
        try:
            answer = receive.recv()
        except EOFError:
            answer = ("crash", "the report process ended without an answer")
        finally:
            receive.close()
            process.join()
        if answer[0] == "ok":
            self.builds += int(answer[1])
            log.info("report of search %d %s in %.1f s", search_id, "built" if answer[1] else "found cached",
                     time.monotonic() - started)
            return bool(answer[1])
        if answer[0] == "error":
            error = MetalearnError(answer[2])
            error.http_status = int(answer[1])
            raise error
        raise RuntimeError(f"building the report of search {search_id} failed (exit code {process.exitcode}): "
                           f"{answer[1]}")
