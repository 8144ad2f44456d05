"""Bounded readers of parquet and ARFF files: what would not fit in memory is refused before it is loaded.

Both formats can be far larger in memory than on disk: a parquet column of one long string repeated
(dictionary encoding plus compression) or a sparse ARFF declaring a million zero cells weighs a few
kilobytes. The readers here check a :class:`TableBudget` as early as the format allows and raise
:class:`TableTooLarge` (HTTP 413):

- parquet: from the footer before reading any data (rows, columns, cells, the uncompressed size of the
  row groups, the decoded size of fixed-width columns, the average bytes per text cell), then row group by
  row group with text columns kept dictionary-encoded, so that their decoded size and longest cell are
  known before anything is decoded, against a running budget;
- ARFF: the declared attributes while the header streams in (before liac-arff parses it), the data rows
  while the data section streams by (line by line, bounded lines), then the rows in chunks against a
  running budget of their size in memory.

A table within the budget comes back exactly as ``pandas.read_parquet`` / ``liac-arff`` read it, so its
content hash does not change. :func:`metalearn.datasets.read_table` and the HTTP upload both use them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import arff  # liac-arff, a dependency of openml
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metalearn.errors import DatasetError
from metalearn.settings import Limits

__all__ = ["MAX_CELL_BYTES", "MEMORY_PER_FILE_BYTE", "TableBudget", "TableTooLarge", "read_arff", "read_parquet"]

MAX_CELL_BYTES = 64 * 1024  # the longest text cell of a table (a feature value, not a document)
MEMORY_PER_FILE_BYTE = 4  # the library's in-memory budget: this many times its largest file (METALEARN_MAX_FILE_MB)
ARFF_LINE_BYTES = 2**20  # lines of an ARFF file are scanned in pieces of at most this many bytes
ARFF_CHUNK_CELLS = 1_000_000  # ARFF rows are parsed and converted this many cells at a time
CELL_BYTES = 8  # the smallest in-memory size of a cell (a float64)
MAX_ROW_GROUPS = 10_000  # each row group costs time to read whatever its size: more are refused
BATCH_BYTES = 16 * 2**20  # parquet row groups are read together up to this many bytes (uncompressed)
FOOTER_MEMORY = 20  # parsing a parquet footer takes about this many times its size in memory
MiB = 2**20


class TableTooLarge(DatasetError):
    """The table exceeds a size limit (HTTP 413); nothing of it was loaded beyond what the check needed."""

    http_status = 413


@dataclass(frozen=True)
class TableBudget:
    """Limits of a table to read: rows, feature columns, cells, bytes in memory (decoded), bytes in one cell.

    ``settings`` names, for each limit (``rows``, ``columns``, ``cells``, ``bytes``), the setting that sets it,
    quoted in error messages.
    """

    max_rows: int = Limits.max_rows
    max_columns: int = Limits.max_columns
    max_cells: int = 2**62
    max_bytes: int = MEMORY_PER_FILE_BYTE * Limits.max_file_bytes
    max_cell_bytes: int = MAX_CELL_BYTES
    settings: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_limits(cls, limits: Limits) -> TableBudget:
        """The budget of the library and CLI: :class:`Limits`, and memory a few times the largest file."""
        return cls(max_rows=limits.max_rows, max_columns=limits.max_columns,
                   max_cells=limits.max_rows * (limits.max_columns + 1),
                   max_bytes=MEMORY_PER_FILE_BYTE * limits.max_file_bytes,
                   settings={"rows": "METALEARN_MAX_ROWS", "columns": "METALEARN_MAX_COLUMNS",
                             "bytes": f"{MEMORY_PER_FILE_BYTE} x METALEARN_MAX_FILE_MB"})

    def refuse(self, name: str, what: str, limit: str, value: int) -> TableTooLarge:
        """The error for ``name`` exceeding ``limit`` (rows, columns, cells, bytes or cell_bytes); ``what`` says
        how, with ``{}`` standing for ``value``."""
        bound = {"rows": self.max_rows, "columns": self.max_columns, "cells": self.max_cells,
                 "bytes": self.max_bytes, "cell_bytes": self.max_cell_bytes}[limit]
        if limit == "bytes":
            shown, bound_shown = f"{value / MiB:,.1f} MiB", f"{bound / MiB:,.0f} MiB"
        else:
            shown, bound_shown = f"{value:,}", f"{bound:,}" + (" bytes in one cell" if limit == "cell_bytes" else "")
        setting = self.settings.get(limit)
        return TableTooLarge(f"{name} {what.format(shown)}, more than the limit of {bound_shown}"
                             + (f" ({setting})" if setting else ""))

    def check_shape(self, name: str, n_rows: int, n_columns: int) -> None:
        """Rows, feature columns (``n_columns`` counts the target too) and cells."""
        if n_rows > self.max_rows:
            raise self.refuse(name, "has {} rows", "rows", n_rows)
        if n_columns - 1 > self.max_columns:
            raise self.refuse(name, "has {} feature columns", "columns", n_columns - 1)
        if n_rows * n_columns > self.max_cells:
            raise self.refuse(name, f"has {n_rows:,} x {n_columns:,} = {{}} cells", "cells", n_rows * n_columns)

    def check_bytes(self, name: str, what: str, n_bytes: int) -> None:
        if n_bytes > self.max_bytes:
            raise self.refuse(name, what, "bytes", n_bytes)

    def check_cell(self, name: str, column: str, n_bytes: int) -> None:
        if n_bytes > self.max_cell_bytes:
            raise self.refuse(name, f"has a text cell of {{}} bytes in column {column!r}", "cell_bytes", n_bytes)


def _unreadable(name: str, kind: str, exc: BaseException) -> DatasetError:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DatasetError(f"cannot read {name} as {kind}: {detail}")


# --------------------------------------------------------------------------- parquet


def _is_text(kind: pa.DataType) -> bool:
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind))


def _fixed_width(kind: pa.DataType) -> int | None:
    """Bytes per value of a fixed-width type (booleans count one byte, as numpy stores them), else None."""
    if pa.types.is_dictionary(kind) or _is_text(kind):
        return None
    try:
        return max(1, kind.bit_width // 8)
    except ValueError:
        return None


def _footer_length(path: Path) -> int:
    """The length of the footer a parquet file declares in its last 8 bytes (0 when it is no parquet file)."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() < 12:
            return 0
        handle.seek(-8, os.SEEK_END)
        tail = handle.read(8)
    return int.from_bytes(tail[:4], "little") if tail[4:] == b"PAR1" else 0


def _check_footer(name: str, meta: pq.FileMetaData, schema: pa.Schema, budget: TableBudget) -> None:
    """Everything the footer tells before any data page is read."""
    nested = [f for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise DatasetError(f"{name}: column {nested[0].name!r} has the nested type {nested[0].type}; upload a flat "
                           "table (one value per cell)")
    budget.check_shape(name, int(meta.num_rows), len(schema))
    if meta.num_row_groups > MAX_ROW_GROUPS:
        raise TableTooLarge(f"{name} has {meta.num_row_groups:,} row groups, more than the limit of "
                            f"{MAX_ROW_GROUPS:,}; write it with larger row groups")
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    budget.check_bytes(name, "needs {} uncompressed", sum(g.total_byte_size for g in groups))
    widths = [_fixed_width(f.type) for f in schema]
    fixed = int(meta.num_rows) * sum(w for w in widths if w)
    variable = sum(g.column(j).total_uncompressed_size for g in groups for j in range(g.num_columns)
                   if j >= len(widths) or widths[j] is None)
    budget.check_bytes(name, "needs at least {} in memory", fixed + variable)
    for group in groups:
        for j in range(group.num_columns):
            chunk = group.column(j)
            if chunk.num_values and chunk.total_uncompressed_size // chunk.num_values > budget.max_cell_bytes:
                raise budget.refuse(name, f"has {{}} bytes per cell on average in column {chunk.path_in_schema!r}",
                                    "cell_bytes", chunk.total_uncompressed_size // chunk.num_values)


def _decoded_size(name: str, table: pa.Table, budget: TableBudget) -> int:
    """Bytes of ``table`` once its dictionary columns are decoded; checks the longest text cell on the way."""
    total = 0
    for column_name, column in zip(table.column_names, table.columns, strict=True):
        for chunk in column.chunks:
            values = chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk
            if not _is_text(values.type):
                total += chunk.nbytes if values is chunk else len(chunk) * CELL_BYTES
                continue
            lengths = pc.binary_length(values)
            longest = pc.max(lengths).as_py() or 0
            budget.check_cell(name, column_name, longest)
            if values is chunk:
                total += chunk.nbytes
            else:
                total += (pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) + 8 * (len(chunk) + 1)
    return total


def _decode(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Text columns read as dictionaries back to the type the file declares."""
    for index, target in enumerate(schema):
        column = table.column(index)
        if pa.types.is_dictionary(column.type) and not pa.types.is_dictionary(target.type):
            chunks = [chunk.dictionary_decode().cast(target.type) for chunk in column.chunks]
            table = table.set_column(index, target, pa.chunked_array(chunks, type=target.type))
    return table


def _batches(meta: pq.FileMetaData) -> Iterator[list[int]]:
    """Consecutive row groups, at most :data:`BATCH_BYTES` uncompressed together (a larger one alone)."""
    batch: list[int] = []
    size = 0
    for index in range(meta.num_row_groups):
        group = meta.row_group(index).total_byte_size
        if batch and size + group > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(index)
        size += group
    if batch:
        yield batch


def _read_row_groups(source: pq.ParquetFile, name: str, budget: TableBudget) -> pa.Table:
    """Every row group (text kept as dictionaries), a batch at a time, checking the running decoded size."""
    parts, used = [], 0
    for batch in _batches(source.metadata):
        part = source.read_row_groups(batch, use_pandas_metadata=True)
        used += _decoded_size(name, part, budget)
        budget.check_bytes(name, "needs more than {} in memory once decoded", used)
        parts.append(part)
    return pa.concat_tables(parts) if parts else source.schema_arrow.empty_table()


def read_parquet(path: str | os.PathLike[str], budget: TableBudget, name: str | None = None) -> pd.DataFrame:
    """The parquet file as ``pandas.read_parquet`` reads it, or :class:`TableTooLarge` before it is loaded.

    ``name`` is the file's name in messages (default: the path's)."""
    path = Path(path)
    name = name or path.name
    budget.check_bytes(name, "has a footer needing about {} in memory to parse",
                       FOOTER_MEMORY * _footer_length(path))
    try:
        with pq.ParquetFile(path) as footer:
            meta, schema = footer.metadata, footer.schema_arrow
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        raise _unreadable(name, "parquet", exc) from None
    _check_footer(name, meta, schema, budget)
    text = [f.name for f in schema if _is_text(f.type)]
    try:
        with pq.ParquetFile(path, metadata=meta, read_dictionary=text) as source:
            table = _read_row_groups(source, name, budget)
        return _decode(table, schema).to_pandas()
    except DatasetError:
        raise
    except Exception as exc:  # pyarrow raises its own types for corrupt pages
        raise _unreadable(name, "parquet", exc) from None


# --------------------------------------------------------------------------- ARFF


def _lines(handle: BinaryIO) -> Iterator[bytes]:
    """The lines of ``handle``, stripped; a line longer than :data:`ARFF_LINE_BYTES` gives only its start."""
    continuing = False
    while piece := handle.readline(ARFF_LINE_BYTES):
        if not continuing:
            yield piece.strip()
        continuing = not piece.endswith(b"\n")


def _scan_arff(path: Path, name: str, budget: TableBudget) -> tuple[int, int]:
    """Declared attributes and data rows, counted while streaming (refused as soon as a limit is passed)."""
    attributes = rows = 0
    with path.open("rb") as handle:
        lines = _lines(handle)
        for line in lines:
            upper = line[:10].upper()
            if upper.startswith(b"@ATTRIBUTE"):
                attributes += 1
                if attributes - 1 > budget.max_columns:
                    raise budget.refuse(name, "declares {} feature columns or more", "columns", attributes - 1)
            elif upper.startswith(b"@DATA"):
                break
        for line in lines:
            if line and not line.startswith(b"%"):
                rows += 1
                if rows > budget.max_rows:
                    raise budget.refuse(name, "has {} data rows or more", "rows", rows)
                if rows * attributes > budget.max_cells:
                    raise budget.refuse(name, f"has {attributes:,} columns and {{}} cells or more", "cells",
                                        rows * attributes)
                budget.check_bytes(name, "needs at least {} in memory", rows * attributes * CELL_BYTES)
    return attributes, rows


def _reconcile(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks as one frame with the dtypes one ``DataFrame(rows)`` over all rows would infer."""
    frame = pd.concat(parts, ignore_index=True)
    for column in frame.columns:
        if len({str(part[column].dtype) for part in parts}) > 1:
            values = [[v] for part in parts for v in part[column].astype(object)]
            frame[column] = pd.DataFrame(values, columns=[column])[column]
    return frame


def _text_cells(name: str, part: pd.DataFrame, budget: TableBudget) -> None:
    for column in part.columns:
        if not pd.api.types.is_numeric_dtype(part[column]):
            lengths = part[column].map(lambda v: len(v.encode()) if isinstance(v, str) else 0)
            budget.check_cell(name, column, int(lengths.max()) if len(lengths) else 0)


def read_arff(path: str | os.PathLike[str], budget: TableBudget, name: str | None = None,
              chunk_cells: int = ARFF_CHUNK_CELLS) -> pd.DataFrame:
    """The ARFF file (dense or sparse) as liac-arff reads it, or :class:`TableTooLarge` before it is loaded."""
    path = Path(path)
    name = name or path.name
    _scan_arff(path, name, budget)
    decoder = arff.ArffDecoder()
    try:
        with path.open(encoding="utf-8") as handle:
            loaded: dict[str, Any] = decoder.decode(handle, return_type=arff.DENSE_GEN)
            columns = [attribute for attribute, _ in loaded["attributes"]]
            rows, size, used, parts = loaded["data"], max(1, chunk_cells // max(1, len(columns))), 0, []
            while batch := list(itertools.islice(rows, size)):
                part = pd.DataFrame(batch, columns=columns)
                _text_cells(name, part, budget)
                used += int(part.memory_usage(deep=True, index=False).sum())
                budget.check_bytes(name, "needs more than {} in memory", used)
                parts.append(part)
    except DatasetError:
        raise
    except arff.ArffException as exc:  # raised while rows stream: name the line as arff.load does
        exc.line = getattr(decoder, "_current_line", exc.line)
        raise _unreadable(name, "arff", exc) from None
    except Exception as exc:  # liac-arff raises its own types
        raise _unreadable(name, "arff", exc) from None
    return _reconcile(parts) if parts else pd.DataFrame(columns=columns)
