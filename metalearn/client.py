"""Python client of the metalearn HTTP API (``metalearn serve``), on httpx.

Example::

    from metalearn import Client

    with Client("http://127.0.0.1:8000", api_key="...") as client:
        dataset = client.upload_dataset("train.csv", target="label")
        report = client.recommend(dataset["id"], top=5)
        search = client.start_search(dataset["id"], n_trials=30)
        final = client.wait(search["id"])                 # progress bar while it runs
        client.download_model(search["id"], "model.joblib")
        client.predict(search["id"], frame.head())       # {"predictions", "probabilities", "classes"}

Every error answer of the server raises :class:`APIError` with its status code and message.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from metalearn.protocol import DEFAULTS, TERMINAL_STATUSES, to_jsonable

TERMINAL = TERMINAL_STATUSES


class APIError(Exception):
    """An error answer of the server (or no answer at all: ``status_code`` 0)."""

    def __init__(self, status_code: int, detail: str, response: httpx.Response | None = None) -> None:
        super().__init__(f"{status_code}: {detail}" if status_code else detail)
        self.status_code = status_code
        self.detail = detail
        self.response = response


class Client:
    """Client of a metalearn server at ``base_url`` (e.g. ``http://127.0.0.1:8000``).

    ``api_key`` is sent as ``Authorization: Bearer <key>``; ``timeout`` (seconds) applies to each
    request (uploads compute meta-features on the server and may take a while).
    """

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Accept": "application/json", "User-Agent": "metalearn-client"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}".encode()  # UTF-8: httpx refuses non-ASCII str headers
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0),
                                  transport=transport)

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise APIError(0, f"no answer from {self.base_url} in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise APIError(0, f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise APIError(response.status_code, self._detail(response), response)
        return response

    @staticmethod
    def _detail(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text.strip()[:500] or response.reason_phrase
        if isinstance(body, dict) and "detail" in body:
            detail = body["detail"]
            return detail if isinstance(detail, str) else str(detail)
        return str(body)[:500]

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # ------------------------------------------------------------------ service

    def health(self) -> dict[str, Any]:
        """``GET /v1/health``: status, counts, search queue and upload limits (no key needed)."""
        return self._json("GET", "/v1/health")

    def stats(self) -> dict[str, Any]:
        """``GET /v1/knowledge-base/stats``: the counts of ``metalearn kb stats``."""
        return self._json("GET", "/v1/knowledge-base/stats")

    # ------------------------------------------------------------------ datasets

    def upload_dataset(self, frame_or_path: Any, target: str, name: str | None = None,
                       categorical: Iterable[str] | None = None, task: str | None = None) -> dict[str, Any]:
        """Upload a DataFrame (sent as parquet) or a CSV / parquet / ARFF file; returns
        ``{"id", "name", "n_rows", "n_features", "task", "meta_features", ...}``. ``task`` (classification or
        regression) is detected from the target when not given."""
        data = {"target": target}
        if task is not None:
            data["task"] = task
        if name is not None:
            data["name"] = name
        if categorical:
            data["categorical"] = ",".join(categorical)
        if isinstance(frame_or_path, str | os.PathLike):
            path = Path(frame_or_path)
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
            with path.open("rb") as handle:
                files = {"file": (path.name, handle, "application/octet-stream")}
                return self._json("POST", "/v1/datasets", data=data, files=files)
        filename, payload = self._serialise_frame(frame_or_path, name)
        files = {"file": (filename, payload, "application/octet-stream")}
        return self._json("POST", "/v1/datasets", data=data, files=files)

    @staticmethod
    def _serialise_frame(frame: Any, name: str | None) -> tuple[str, bytes]:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"upload_dataset takes a pandas DataFrame or a file path, not {type(frame).__name__}")
        stem = name or "dataset"
        frame = frame.rename(columns=str).reset_index(drop=True)
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer, index=False)
            return f"{stem}.parquet", buffer.getvalue()
        except Exception as exc:  # pyarrow refuses e.g. mixed-type object columns
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TypeError(f"cannot send this DataFrame as parquet ({detail}); give mixed-type columns one type "
                            "(e.g. frame[col].astype(str)) or upload a file") from None

    def datasets(self, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """``GET /v1/datasets``: ``{"datasets": [...], "total", "limit", "offset"}``."""
        return self._json("GET", "/v1/datasets", params={"limit": limit, "offset": offset})

    def dataset(self, dataset_id: int) -> dict[str, Any]:
        """``GET /v1/datasets/{id}``, with its meta-features."""
        return self._json("GET", f"/v1/datasets/{int(dataset_id)}")

    def delete_dataset(self, dataset_id: int) -> dict[str, Any]:
        """``DELETE /v1/datasets/{id}``: delete your upload of a dataset (its table on the server, and the models and
        reports of your searches on it; the knowledge base keeps its meta-features and runs): ``{"id",
        "table_deleted", "models_deleted", "detail"}``. 409 while one of those searches is queued or running."""
        return self._json("DELETE", f"/v1/datasets/{int(dataset_id)}")

    # ------------------------------------------------------------------ recommendations

    def recommend(self, dataset_id: int, top: int = DEFAULTS.top, k: int = DEFAULTS.k,
                  metric: str | None = None, include: Iterable[str] = (), exclude: Iterable[str] = (),
                  interpretable: bool = False) -> dict[str, Any]:
        """Recommended pipelines with evidence (the body of ``metalearn recommend --json``); ``include`` /
        ``exclude`` / ``interpretable`` keep only what they allow (``filtered`` counts the others)."""
        return self._json("POST", "/v1/recommendations",
                          json={"dataset_id": int(dataset_id), "top": top, "k": k, "metric": metric,
                                "include": list(include), "exclude": list(exclude), "interpretable": interpretable})

    # ------------------------------------------------------------------ searches

    def start_search(self, dataset_id: int, strategy: str = DEFAULTS.strategy, n_trials: int | None = DEFAULTS.n_trials,
                     time_budget: float | None = None, metric: str | None = None, seed: int = DEFAULTS.seed,
                     sensitive: str | None = None, fairness: str | None = None, **options: Any) -> dict[str, Any]:
        """Queue a search (``{"id", "status", "dataset_id"}``). ``sensitive`` + ``fairness``
        (``demographic_parity`` or ``equalized_odds``) make the final model fair for that column (binary
        classification; the figures before / after are in the final status's ``fairness``). ``options``:
        ``trial_time_limit``, ``folds``, ``max_rows``, ``ensemble_size``, ``include`` / ``exclude`` (lists of
        names), ``interpretable``, ``grid`` (``strategy="grid"``: hyperparameter -> values; ``n_trials=None`` runs
        it whole), ``max_grid_size``."""
        body = {"dataset_id": int(dataset_id), "strategy": strategy, "n_trials": n_trials,
                "time_budget": time_budget, "metric": metric, "seed": seed, **options}
        if sensitive is not None or fairness is not None:  # only when asked: older servers refuse unknown fields
            body |= {"sensitive": sensitive, "fairness": fairness}
        return self._json("POST", "/v1/searches", json=to_jsonable(body))

    def continue_search(self, search_id: int, n_trials: int | None = None,
                        time_budget: float | None = None) -> dict[str, Any]:
        """Add trials (and/or seconds) to a finished or interrupted search; it is queued again (``{"id", "status",
        "dataset_id"}``): follow it with :meth:`wait`."""
        body = {"n_trials": n_trials, "time_budget": time_budget}
        return self._json("POST", f"/v1/searches/{int(search_id)}/continue", json=to_jsonable(body))

    def list_searches(self, status: str | None = None, dataset_id: int | None = None, limit: int = 50,
                      offset: int = 0) -> dict[str, Any]:
        """``GET /v1/searches``: your searches, newest first, optionally only those with ``status`` or on
        ``dataset_id``: ``{"searches": [{"id", "dataset_id", "dataset", "status", "strategy", "trials_done",
        "best_score", "started_at", "finished_at", ...}], "total", "limit", "offset"}``."""
        params = {"limit": limit, "offset": offset, "status": status, "dataset_id": dataset_id}
        return self._json("GET", "/v1/searches", params={k: v for k, v in params.items() if v is not None})

    def search(self, search_id: int) -> dict[str, Any]:
        """Status, trials done, best trial so far and trajectory of a search."""
        return self._json("GET", f"/v1/searches/{int(search_id)}")

    def trials(self, search_id: int) -> list[dict[str, Any]]:
        """Every trial of a search so far, oldest first."""
        return self._json("GET", f"/v1/searches/{int(search_id)}/trials")["trials"]

    def cancel(self, search_id: int) -> dict[str, Any]:
        """Cancel a search: ``status`` is ``cancelled`` (had not started) or ``cancelling``."""
        return self._json("DELETE", f"/v1/searches/{int(search_id)}")

    def wait(self, search_id: int, progress: bool = True, timeout: float | None = None,
             poll_interval: float = 1.0) -> dict[str, Any]:
        """Poll until the search has finished and return its final status (``succeeded``, ``failed`` or
        ``cancelled``; a failed search does not raise). ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.search(search_id)
        bar = _ProgressBar(search_id, status) if progress else None
        try:
            while status["status"] not in TERMINAL:
                if bar is not None:
                    bar.update(status)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"search {search_id} is still {status['status']} after {timeout:g} s "
                                       f"({status['trials_done']} trials done)")
                sleep = poll_interval if deadline is None else max(0.0, min(poll_interval,
                                                                            deadline - time.monotonic()))
                time.sleep(sleep)
                status = self.search(search_id)
            if bar is not None:
                bar.update(status)
        finally:
            if bar is not None:
                bar.close()
        return status

    def download_model(self, search_id: int, path: str | os.PathLike[str]) -> Path:
        """Save the fitted pipeline of a finished search (read it with :func:`metalearn.model_io.load_model`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        try:
            with self._http.stream("GET", f"/v1/searches/{int(search_id)}/model") as response:
                if response.status_code >= 400:
                    response.read()
                    raise APIError(response.status_code, self._detail(response), response)
                with tmp.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
            os.replace(tmp, path)
        except httpx.TransportError as exc:
            raise APIError(0, f"cannot reach {self.base_url}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def predict(self, search_id: int, rows_or_frame: Any) -> dict[str, Any]:
        """Predict with a finished search's model: rows as a DataFrame, a list of ``{column: value}``
        dicts or one dict; returns ``{"predictions", "probabilities", "classes"}``."""
        if isinstance(rows_or_frame, Mapping):
            rows = [dict(rows_or_frame)]
        elif hasattr(rows_or_frame, "to_dict") and hasattr(rows_or_frame, "columns"):
            rows = rows_or_frame.rename(columns=str).to_dict(orient="records")
        else:
            rows = list(rows_or_frame)
        return self._json("POST", f"/v1/searches/{int(search_id)}/predict", json={"rows": to_jsonable(rows)})


    def report(self, search_id: int, fmt: str = "json", sensitive: str | Iterable[str] = ()) -> Any:
        """The model report of a finished search: its figures as a dict (``fmt="json"``) or HTML text; with a
        fairness section for the ``sensitive`` columns (default: a mitigated search's column)."""
        accept = "application/json" if fmt == "json" else "text/html"
        columns = [sensitive] if isinstance(sensitive, str) else list(sensitive)
        params = {"sensitive": columns} if columns else None
        response = self._request("GET", f"/v1/searches/{int(search_id)}/report", headers={"Accept": accept},
                                 params=params)
        return response.json() if fmt == "json" else response.text


class _ProgressBar:
    """A rich progress bar of trials done (of ``n_trials`` when the search has a trial budget)."""

    def __init__(self, search_id: int, status: dict[str, Any]) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.fields[total_text]}"),
                                 TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), transient=False)
        total = status.get("n_trials")
        self.task = self.progress.add_task(f"search {search_id} [{status['status']}]", total=total,
                                           total_text=total if total is not None else "?", best="—")
        self.progress.start()

    def update(self, status: dict[str, Any]) -> None:
        best = (status.get("best") or {}).get("score")
        self.progress.update(self.task, completed=status.get("trials_done", 0),
                             description=f"search {status['id']} [{status['status']}]",
                             best=f"{best:.4f}" if isinstance(best, int | float) else "—")

    def close(self) -> None:
        self.progress.stop()
