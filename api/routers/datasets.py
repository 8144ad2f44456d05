"""``/v1/datasets``: upload a table (registered with its meta-features and kept for searches), list, get, delete.

An upload is checked before anything is written: size (413 beyond ``max_upload_bytes``), format
(parquet by its magic bytes, otherwise UTF-8 CSV text or ARFF; binary garbage is refused), shape
(rows, columns and cells, 413 beyond the limits) and size in memory once decoded (413 beyond
``max_uncompressed_bytes``, or for a text cell longer than :data:`metalearn.tables.MAX_CELL_BYTES`): parquet
and ARFF are checked by :mod:`metalearn.tables` from the footer / while the header and rows stream by,
before they are loaded, so a compression or sparse-format bomb costs the server next to nothing. Then the
rules of :func:`metalearn.datasets.from_frame` (target present, two classes or more, ...). Only a table
that passes all of them is registered in the knowledge base and stored in the data directory as parquet,
keyed by dataset id; concurrent uploads of the same table register it once (the others get ``existing``).

Tenants: an upload records the caller's identity as an owner of the dataset (the same data uploaded by two
identities is one dataset with two owners, each seeing the name it gave); lists and reads show a caller only
the datasets it uploaded (another identity's is a 404, see :mod:`metalearn.api.tenants`), admin keys all.
Uploads count against the caller's quotas: uploads per hour before anything is read, stored bytes before the
meta-features are computed. Deleting an upload (:func:`delete_dataset`) frees its bytes; what the knowledge base
learned from it stays.
"""

from __future__ import annotations

import codecs
import csv
import re
import shutil
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile

from metalearn.api.dependencies import AppState, CurrentUser, DatasetPathId, State, owned_path_objects
from metalearn.api.schemas import (
    MAX_ID,
    DatasetCreated,
    DatasetDeleted,
    DatasetDetail,
    DatasetList,
    Task,
    error_responses,
)
from metalearn.api.security import require_api_key
from metalearn.api.tenants import Identity
from metalearn.datasets import Dataset, detect_task, from_frame, read_table
from metalearn.errors import DatasetError, NotFound, http_status
from metalearn.knowledge_base import DatasetInfo, KnowledgeBase
from metalearn.metafeatures import EXTRACTOR_VERSIONS, extract_metafeatures
from metalearn.protocol import to_jsonable
from metalearn.restriction import split_names
from metalearn.settings import Limits, ServerSettings
from metalearn.tables import TableBudget

router = APIRouter(prefix="/v1/datasets", tags=["datasets"],
                   dependencies=[Depends(require_api_key), Depends(owned_path_objects)], responses=error_responses(401))

PARQUET_MAGIC = b"PAR1"
CSV_SUFFIXES = ("", ".csv", ".txt", ".data")
PARQUET_SUFFIXES = (".parquet", ".pq")
HEAD_BYTES = 4 * 2**20
API_SETTINGS = {"rows": "METALEARN_API_MAX_ROWS", "columns": "METALEARN_API_MAX_COLUMNS",
                "cells": "METALEARN_API_MAX_CELLS", "bytes": "METALEARN_API_MAX_UNCOMPRESSED_MB"}
# uploads of the same table (same content hash) register it one at a time: striped locks, a fixed number
_REGISTER_LOCKS = tuple(threading.Lock() for _ in range(64))


def _bad(detail: str, status: int = 400) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


def _safe_stem(filename: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).stem).strip("._")
    return stem[:100] or "upload"


def _sniff(filename: str, head: bytes) -> str:
    """``parquet``, ``csv`` or ``arff`` from the first bytes and the file name; 400 for anything else."""
    suffix = Path(filename).suffix.lower()
    if head[:4] == PARQUET_MAGIC:
        return "parquet"
    if suffix in PARQUET_SUFFIXES:
        raise _bad(f"{filename} is named like a parquet file but is not one (no parquet magic bytes)")
    if suffix not in CSV_SUFFIXES + (".arff",):
        raise _bad(f"unsupported file type {suffix!r} for {filename}; upload CSV (UTF-8 text), parquet or ARFF")
    kind = "arff" if suffix == ".arff" else "CSV"
    if b"\x00" in head:
        raise _bad(f"{filename} does not look like {kind} text (it contains NUL bytes); upload UTF-8 {kind} "
                   "text or a parquet file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise _bad(f"{filename} is not UTF-8 text (invalid byte at offset {exc.start}); upload UTF-8 {kind} "
                   "text or a parquet file") from None
    return "arff" if suffix == ".arff" else "csv"


def _check_csv_header(filename: str, head: bytes, settings: ServerSettings) -> None:
    """Refuse a CSV whose header line alone names more columns than allowed (before pandas reads it)."""
    line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    try:
        n_columns = len(next(csv.reader([line])))
    except (csv.Error, StopIteration):
        n_columns = line.count(",") + 1
    if n_columns - 1 > settings.max_columns:
        raise _bad(f"{filename} has {n_columns:,} columns, more than the limit of {settings.max_columns:,} feature "
                   "columns (METALEARN_API_MAX_COLUMNS)", 413)


def _check_shape(filename: str, n_rows: int, n_columns: int, settings: ServerSettings) -> None:
    if n_rows > settings.max_rows:
        raise _bad(f"{filename} has more than {settings.max_rows:,} rows, the limit (METALEARN_API_MAX_ROWS)", 413)
    if n_columns - 1 > settings.max_columns:
        raise _bad(f"{filename} has {n_columns - 1:,} feature columns, more than the limit of "
                   f"{settings.max_columns:,} (METALEARN_API_MAX_COLUMNS)", 413)
    if n_rows * n_columns > settings.max_cells:
        raise _bad(f"{filename} has {n_rows:,} x {n_columns:,} cells, more than the limit of {settings.max_cells:,} "
                   "(METALEARN_API_MAX_CELLS)", 413)


def _limits(settings: ServerSettings) -> Limits:
    return Limits(max_rows=settings.max_rows, max_columns=settings.max_columns,
                  max_file_bytes=settings.max_upload_bytes)


def _budget(settings: ServerSettings) -> TableBudget:
    return TableBudget(max_rows=settings.max_rows, max_columns=settings.max_columns, max_cells=settings.max_cells,
                       max_bytes=settings.max_uncompressed_bytes, settings=API_SETTINGS)


def _head(filename: str, stream: BinaryIO, size: int | None, settings: ServerSettings) -> bytes:
    """The first bytes of the upload, after checking its size (400 when empty, 413 when too large)."""
    stream.seek(0, 2)
    actual = stream.tell()
    stream.seek(0)
    size = actual if size is None else max(size, actual)
    if size == 0:
        raise _bad(f"the uploaded file {filename} is empty")
    if size > settings.max_upload_bytes:
        raise _bad(f"{filename} is {size:,} bytes, more than the limit of {settings.max_upload_bytes:,} bytes "
                   "(METALEARN_API_MAX_UPLOAD_BYTES)", 413)
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    return head


def read_upload(filename: str, stream: BinaryIO, size: int | None, settings: ServerSettings) -> pd.DataFrame:
    """The uploaded table as a DataFrame, or an HTTP 400/413 saying what is wrong with it."""
    head = _head(filename, stream, size, settings)
    kind = _sniff(filename, head)
    if kind == "csv":
        _check_csv_header(filename, head, settings)
    with tempfile.TemporaryDirectory(prefix="metalearn-upload-") as folder:
        path = Path(folder) / f"{_safe_stem(filename)}.{kind}"
        with path.open("wb") as out:
            shutil.copyfileobj(stream, out, length=2**20)
        try:
            frame = read_table(path, _limits(settings), _budget(settings))  # parquet / ARFF: bounded readers
        except DatasetError as exc:  # TableTooLarge is a 413
            raise _bad(str(exc).replace(path.name, filename), http_status(exc)) from None
    _check_shape(filename, int(frame.shape[0]), int(frame.shape[1]), settings)
    return frame


def _summary(state: AppState, info: DatasetInfo) -> dict[str, Any]:
    return info.to_json() | {"stored": state.store.has_table(info.id, info.content_hash)}


@router.post("", status_code=201, response_model=DatasetCreated, summary="Upload a dataset",
             responses=error_responses(400, 413, 422, 429))
def upload_dataset(
    file: Annotated[UploadFile, File(description="The table: CSV (UTF-8, comma-separated, header row), parquet "
                                                 "or ARFF.")],
    target: Annotated[str, Form(min_length=1, max_length=255, description="Name of the target column.")],
    state: State,
    user: CurrentUser,
    name: Annotated[str | None, Form(max_length=255, description="Dataset name (default: the file's stem).")] = None,
    categorical: Annotated[str | None, Form(max_length=100_000, description="Comma-separated columns to treat as "
                                                                            "categorical (text columns always "
                                                                            "are).")] = None,
    task: Annotated[Task | None, Form(description="classification or regression (default: detected from the "
                                                  "target).")] = None,
) -> dict[str, Any]:
    """Validate the table, register it with its meta-features and keep it for searches.

    The same data uploaded again (same content hash) gets the same id, with ``existing: true`` (with API keys:
    when the caller had uploaded it before). Nothing is registered when the upload is refused; 429 (with
    ``Retry-After``) beyond the caller's upload quotas.
    """
    settings = state.settings
    filename = Path(file.filename or "upload.csv").name or "upload.csv"
    state.quotas.count_upload(user)  # 429 beyond the uploads per hour, before anything is read
    size = _upload_size(file)
    frame = read_upload(filename, file.file, size, settings)
    columns = split_names(categorical)
    dataset_name = (name or "").strip() or Path(filename).stem or "dataset"
    dataset = from_frame(frame, target, dataset_name, columns, task=task, limits=_limits(settings))  # 400 if bad
    state.quotas.check_storage(user, size, dataset.content_hash)  # before the meta-features are computed
    with _REGISTER_LOCKS[zlib.crc32(dataset.content_hash.encode()) % len(_REGISTER_LOCKS)]:
        dataset_id, features, existing = _register(state.kb, dataset)
        state.store.save_dataset(dataset_id, dataset, owner=user.owner)
        if user.owner is not None:  # with keys, "existing" means: this caller had uploaded it
            existing = not state.kb.add_dataset_owner(dataset_id, user.owner, size, dataset_name)
    state.recommendations.forget(dataset_id)
    info = state.access.dataset(user, dataset_id)
    reason = detect_task(dataset.y)[1] if task is None else "forced by the request"
    return {"id": dataset_id, "name": info.name, "n_rows": dataset.n_rows, "n_features": dataset.n_features,
            "n_classes": dataset.n_classes, "task": dataset.task, "task_reason": reason,
            "target": dataset.target, "categorical": list(dataset.categorical),
            "content_hash": dataset.content_hash, "existing": existing,
            "meta_features": to_jsonable(features)}


def _upload_size(file: UploadFile) -> int:
    """Bytes of the uploaded file (as spooled by the server)."""
    file.file.seek(0, 2)
    size = file.file.tell()
    file.file.seek(0)
    return max(size, file.size or 0)


def _register(kb: KnowledgeBase, dataset: Dataset) -> tuple[int, dict[str, float | None], bool]:
    """The dataset's id and meta-features, registering both unless known; and whether it was known."""
    existing = kb.dataset_by_hash(dataset.content_hash)
    extractor = EXTRACTOR_VERSIONS[dataset.task]
    features = kb.metafeatures(existing.id, extractor) if existing is not None else None
    if existing is not None and features is not None:
        return existing.id, features, True
    mf = extract_metafeatures(dataset.X, dataset.y, dataset.categorical, seed=0, task=dataset.task)  # first
    dataset_id = kb.register(dataset)
    kb.store_metafeatures(dataset_id, mf.extractor, mf.features, mf.seconds)
    return dataset_id, mf.features, existing is not None


@router.get("", response_model=DatasetList, summary="List datasets", responses=error_responses(422))
def list_datasets(state: State, user: CurrentUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> dict[str, Any]:
    """Datasets of the knowledge base, oldest first; ``stored`` tells which ones searches can run on. With API
    keys: the datasets the caller uploaded (admin keys: all)."""
    infos, total = state.access.datasets(user, limit, offset)
    return {"datasets": [_summary(state, info) for info in infos], "total": total, "limit": limit, "offset": offset}


@router.get("/{dataset_id}", response_model=DatasetDetail, summary="Get a dataset",
            responses=error_responses(404, 422))
def get_dataset(dataset_id: DatasetPathId, state: State, user: CurrentUser) -> dict[str, Any]:
    """A dataset with its meta-feature vector."""
    info = dataset_or_404(state, dataset_id, user)
    extractor = EXTRACTOR_VERSIONS[info.task]
    features = state.kb.metafeatures(dataset_id, extractor)
    return _summary(state, info) | {"extractor": extractor,
                                    "meta_features": None if features is None else to_jsonable(features)}


@router.delete("/{dataset_id}", response_model=DatasetDeleted, summary="Delete an uploaded dataset",
               responses=error_responses(404, 409, 422))
def delete_dataset(dataset_id: DatasetPathId, state: State, user: CurrentUser) -> dict[str, Any]:
    """Delete the caller's upload of a dataset: its owner record (the upload stops counting against the key's
    stored-bytes quota), the server's copy of the table once no other identity that uploaded the same table keeps
    it, and the model files and cached reports of the caller's searches on it (a model is fitted on the rows and
    may contain them: a nearest-neighbour model stores them all). Admin keys, and a server without keys, delete it
    for every owner. 409 while such a search is queued or running (cancel it first); 404 for another identity's
    dataset.

    What the knowledge base learned from it stays, as anonymous shared knowledge (like AutoML meta-data): the
    dataset's row (name, shape, content hash), its meta-features, and the searches with their trials and scores.
    They keep ranking recommendations for every key, and the searches' statuses and trials stay readable; their
    models, reports and predictions are gone, and continuing them is a 409. Uploading the same table again works
    as a first upload (the same id, its meta-features already known).
    """
    info = dataset_or_404(state, dataset_id, user)
    with _REGISTER_LOCKS[zlib.crc32(info.content_hash.encode()) % len(_REGISTER_LOCKS)]:  # not during its upload
        table, models = state.jobs.delete_upload(dataset_id, None if user.sees_all else user.name)
    for search_id in models:
        state.models.forget(state.store.model_path(search_id))
    state.access.forget_dataset(dataset_id)
    state.recommendations.forget(dataset_id)
    whose = "every owner's upload" if user.sees_all else f"{user.name}'s upload"
    kept = "the table" if table else "not the table (another identity that uploaded it keeps it)"
    return {"id": dataset_id, "table_deleted": table, "models_deleted": models,
            "detail": f"deleted {whose} of dataset {dataset_id}: {kept}, and the models of {len(models)} searches "
                      "on it; its meta-features and runs stay in the knowledge base"}


def dataset_or_404(state: AppState, dataset_id: int, user: Identity) -> DatasetInfo:
    """The dataset's row as ``user`` sees it, or :class:`NotFound` (404; also for another identity's dataset). The
    ownership is read from the knowledge base, not from a cache: an owner may have deleted its upload."""
    if not (user.sees_all or state.kb.owns_dataset(dataset_id, user.name)):
        raise NotFound(f"no dataset with id {dataset_id}")
    return state.access.dataset(user, dataset_id)

