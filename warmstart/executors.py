"""Where trials run: in this process (serial) or in parallel on a Dask cluster.

Both executors expose ``submit(fn, *args, **kwargs)``, ``wait_any(futures, timeout)``, ``cancel(futures)``
and ``close()``, so the search loop is the same code whether trials run one at a time or on many workers.
Results come back to the search process, which alone writes to the knowledge base: no run is lost or
written twice however many workers there are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any


class SerialExecutor:
    """Runs each trial at submission, in this process."""

    workers = 1

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # KeyboardInterrupt must reach the search loop
            if not isinstance(exc, Exception):
                raise
            future.set_exception(exc)
        return future

    def scatter(self, value: Any) -> Any:
        return value

    def wait_any(self, futures: Sequence[Any], timeout: float | None = None) -> list[Any]:
        return list(futures)

    def cancel(self, futures: Sequence[Any]) -> None:
        pass

    def close(self) -> None:
        pass


class DaskExecutor:
    """Trials on a local Dask cluster of ``workers`` single-threaded processes, or on ``scheduler``."""

    def __init__(self, workers: int = 2, scheduler: str | None = None) -> None:
        import dask
        from distributed import Client, LocalCluster

        # non-daemonic workers, so a per-trial time limit can fork its child process
        dask.config.set({"distributed.worker.daemon": False})
        self._cluster = None
        if scheduler:
            self.client = Client(scheduler)
        else:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=50)
            self.client = Client(self._cluster)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})) or workers)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, **kwargs)

    def scatter(self, value: Any) -> Any:
        return self.client.scatter(value, broadcast=True)

    def wait_any(self, futures: Sequence[Any], timeout: float | None = None) -> list[Any]:
        """The finished futures once one has finished, or none after ``timeout`` seconds."""
        from distributed import wait

        try:
            done, _ = wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        return list(done)

    def cancel(self, futures: Sequence[Any]) -> None:
        if futures:
            self.client.cancel(list(futures))

    def close(self) -> None:
        """Disconnect; a local cluster is shut down, its running trials killed with their worker processes."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(workers: int = 1, scheduler: str | None = None) -> SerialExecutor | DaskExecutor:
    if scheduler or workers > 1:
        return DaskExecutor(workers, scheduler)
    return SerialExecutor()
