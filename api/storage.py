"""The server's files: uploaded tables with their sidecars, models of searches, cancel flags, cached reports.

Layout under the data directory::

    datasets/<id>.parquet       the validated table (features and target)
    datasets/<id>.json          its sidecar: target, categorical columns, content hash, owners, ...
    datasets/<id>.lock          held (flock) while the table or its sidecar is written
    searches/<id>/model.joblib  the refitted best pipeline (a metalearn.model_io.ModelBundle)
    searches/<id>/cancel        a cancellation request, checked by the worker between trials
    searches/<id>/report.json   the model report, built once
    searches/<id>/report-<key>.json  the same for other sensitive columns (key: a hash of them)
    searches/<id>/report.lock   held (flock) by the process building the report, so it is built once

Every file is written atomically: a uniquely named temporary file in the same folder, then
:func:`os.replace`, so concurrent writers never share a temporary file and readers never see half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from metalearn.datasets import Dataset, from_frame
from metalearn.errors import MetalearnError
from metalearn.settings import Limits


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a unique temporary file next to ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


class DataStore:
    """Files of the server under ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def ensure(self) -> DataStore:
        (self.root / "datasets").mkdir(parents=True, exist_ok=True)
        (self.root / "searches").mkdir(parents=True, exist_ok=True)
        return self

    # ------------------------------------------------------------------ datasets

    def table_path(self, dataset_id: int) -> Path:
        return self.root / "datasets" / f"{int(dataset_id)}.parquet"

    def sidecar_path(self, dataset_id: int) -> Path:
        return self.root / "datasets" / f"{int(dataset_id)}.json"

    def sidecar(self, dataset_id: int) -> dict[str, Any] | None:
        try:
            return json.loads(self.sidecar_path(dataset_id).read_text())
        except (OSError, ValueError):
            return None

    def has_table(self, dataset_id: int, content_hash: str) -> bool:
        meta = self.sidecar(dataset_id)
        return bool(meta and meta.get("content_hash") == content_hash and self.table_path(dataset_id).is_file())

    def save_dataset(self, dataset_id: int, dataset: Dataset, owner: str | None = None) -> None:
        """Write the table, then its sidecar (each atomically), unless already stored; add ``owner`` (the
        identity that uploaded it, ``None`` for a server without keys) to the sidecar's ``owners``.

        Holds the dataset's lock, so concurrent uploads (in any server process) neither write the table twice
        nor lose an owner."""
        with _flock(self.root / "datasets" / f"{int(dataset_id)}.lock"):
            meta = self.sidecar(dataset_id)
            stored = self.has_table(dataset_id, dataset.content_hash)
            if stored and meta is not None and (owner is None or owner in meta.get("owners", [])):
                return
            if not stored or meta is None:
                frame = dataset.X.copy()
                frame[dataset.target] = dataset.y.to_numpy()
                atomic_write(self.table_path(dataset_id), lambda tmp: frame.to_parquet(tmp, index=False))
                meta = {"id": int(dataset_id), "name": dataset.name, "target": dataset.target,
                        "categorical": list(dataset.categorical), "columns": list(dataset.X.columns),
                        "content_hash": dataset.content_hash, "n_rows": dataset.n_rows, "stored_at": time.time(),
                        "owners": []}
            if owner is not None:
                meta["owners"] = [*meta.get("owners", []), owner]
            atomic_write_text(self.sidecar_path(dataset_id), json.dumps(meta))

    def delete_table(self, dataset_id: int) -> bool:
        """Delete the stored table and its sidecar (under the dataset's lock); whether there was a table."""
        with _flock(self.root / "datasets" / f"{int(dataset_id)}.lock"):
            existed = self.table_path(dataset_id).is_file()
            self.table_path(dataset_id).unlink(missing_ok=True)
            self.sidecar_path(dataset_id).unlink(missing_ok=True)
            return existed

    def load_dataset(self, dataset_id: int) -> Dataset:
        """The stored table as a :class:`Dataset` (the same content hash as when it was uploaded)."""
        meta = self.sidecar(dataset_id)
        if meta is None or not self.table_path(dataset_id).is_file():
            raise MetalearnError(f"dataset {dataset_id} has no stored table on this server")
        frame = pd.read_parquet(self.table_path(dataset_id))
        dataset = from_frame(frame, meta["target"], meta["name"], meta["categorical"], limits=Limits.unlimited())
        if dataset.content_hash != meta["content_hash"]:
            raise MetalearnError(f"stored table of dataset {dataset_id} does not match its content hash")
        return dataset

    # ------------------------------------------------------------------ searches

    def search_dir(self, search_id: int) -> Path:
        return self.root / "searches" / str(int(search_id))

    def model_path(self, search_id: int) -> Path:
        return self.search_dir(search_id) / "model.joblib"

    def cancel_path(self, search_id: int) -> Path:
        return self.search_dir(search_id) / "cancel"

    def request_cancel(self, search_id: int) -> None:
        atomic_write_text(self.cancel_path(search_id), str(time.time()))

    def cancel_requested(self, search_id: int) -> bool:
        return self.cancel_path(search_id).exists()

    def report_path(self, search_id: int, variant: str = "") -> Path:
        """The cached report; a ``variant`` (a report for other sensitive columns) has a file of its own."""
        return self.search_dir(search_id) / (f"report-{variant}.json" if variant else "report.json")

    def load_report(self, search_id: int, variant: str = "") -> dict[str, Any] | None:
        """The cached report of a search, or ``None``."""
        try:
            return json.loads(self.report_path(search_id, variant).read_text())
        except (OSError, ValueError):
            return None

    def has_report(self, search_id: int, variant: str = "") -> bool:
        return self.report_path(search_id, variant).is_file()

    def save_report(self, search_id: int, data: dict[str, Any], variant: str = "") -> None:
        atomic_write_text(self.report_path(search_id, variant), json.dumps(data))

    def drop_reports(self, search_id: int) -> None:
        """Forget every cached report of a search (it is continued: its model changes)."""
        for path in self.search_dir(search_id).glob("report*.json"):
            path.unlink(missing_ok=True)

    def delete_model(self, search_id: int) -> bool:
        """Delete a finished search's model file and cached reports (once a report being built is done, so none is
        written afterwards); whether it had a model."""
        if not self.search_dir(search_id).is_dir():
            return False
        with self.report_lock(search_id):
            existed = self.model_path(search_id).is_file()
            self.model_path(search_id).unlink(missing_ok=True)
            self.drop_reports(search_id)
            return existed

    @contextmanager
    def report_lock(self, search_id: int) -> Iterator[None]:
        """Hold the exclusive lock on building the report of a search, across processes (``flock``); it is
        released when the holder ends, even when it is killed."""
        with _flock(self.search_dir(search_id) / "report.lock"):
            yield


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing), across processes; released when the holder
    ends, even when it is killed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
