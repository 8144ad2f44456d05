"""Uploads that are small on the wire but huge in memory are refused early and cheaply (issue #19.1, #19.2),
and concurrent uploads of the same table all succeed (#19.6).

A real ``metalearn serve`` in a subprocess; for each bomb the test measures the answer's latency and the
server's peak resident memory (``VmHWM`` after resetting it through ``/proc/<pid>/clear_refs``, with a
``VmRSS`` sampler as a fallback). The bounded readers themselves (:mod:`metalearn.tables`) are checked
without a server: they refuse the same bombs with small budgets, and read ordinary tables exactly as
``pandas.read_parquet`` / liac-arff do (so content hashes, hence dataset ids, do not change).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import arff
import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import breast_cancer_frame, messy_iris_frame
from servers import running_server

from metalearn.datasets import from_frame, read_table
from metalearn.settings import Limits
from metalearn.tables import TableBudget, TableTooLarge, read_arff, read_parquet

MiB = 2**20
UPLOAD_MB = 16
UNCOMPRESSED_MB = 64
MAX_CELLS = 5_000_000
RSS_GROWTH = 100 * MiB  # the most a refused bomb may cost the server
ANSWER_SECONDS = 3.0  # "about a second", with room for a loaded machine


# ------------------------------------------------------------------------------------------------ bombs


def _parquet(table: pa.Table, **kwargs) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", **kwargs)
    return buffer.getvalue()


def parquet_string_bomb(rows: int = 300, cell: int = MiB) -> bytes:
    """#19.1 as reported: ``rows`` rows whose text cell holds ``cell`` bytes (one dictionary value)."""
    return _parquet(pa.table({"text": ["a" * cell] * rows, "target": [0, 1] * (rows // 2)}))


def parquet_distinct_bomb(rows: int = 80, cell: int = MiB) -> bytes:
    """Distinct long strings: the footer's uncompressed sizes give them away before anything is read."""
    return _parquet(pa.table({"text": [f"{i}" + "b" * cell for i in range(rows)], "target": [0, 1] * (rows // 2)}))


def parquet_dictionary_bomb(rows: int = 4000, cell: int = 32 * 1024) -> bytes:
    """One short-enough value repeated: tiny on disk and in the footer, ``rows * cell`` bytes once decoded."""
    return _parquet(pa.table({"text": ["c" * cell] * rows, "x": np.arange(rows, dtype=float),
                              "target": np.arange(rows) % 2}))


def parquet_footer_bomb(columns: int = 60_000) -> bytes:
    """An empty table of many columns: an 8 MB footer that takes ~190 MB to parse."""
    return _parquet(pa.table({f"c{i}": pa.array([], pa.int8()) for i in range(columns)}))


def sparse_arff(n_attributes: int, n_rows: int) -> bytes:
    """#19.2: a sparse ARFF whose declared dimensions dwarf its size on disk."""
    lines = ["@relation bomb"] + [f"@attribute a{i} numeric" for i in range(n_attributes - 1)]
    lines += ["@attribute class {x,y}", "@data"]
    lines += [f"{{0 {i % 7}, {n_attributes - 1} {'xy'[i % 2]}}}" for i in range(n_rows)]
    return ("\n".join(lines) + "\n").encode()


# ------------------------------------------------------------------------------------------------ server


def _server_pid(url: str) -> int:
    """The pid of the ``metalearn serve`` listening on ``url``'s port (its command line names the port)."""
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in args and b"--port" in args and port.encode() in args:
            return int(proc.name)
    raise AssertionError(f"no server process for {url}")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class PeakMemory:
    """The server's peak resident memory during a block: ``VmHWM`` after resetting it, or sampled ``VmRSS``."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.before = pid, 0, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kb(self.pid, "VmRSS"))
            time.sleep(0.01)

    def __enter__(self) -> PeakMemory:
        self.before = _status_kb(self.pid, "VmRSS")
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self.hwm = True
        except OSError:
            self.hwm = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.hwm:
            self.peak = max(self.peak, _status_kb(self.pid, "VmHWM"))

    @property
    def growth(self) -> int:
        return self.peak - self.before


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("bombs")
    env = {"METALEARN_DB": str(root / "kb.sqlite"), "METALEARN_DATA_DIR": str(root / "data"),
           "METALEARN_CACHE_DIR": str(root / "cache"), "METALEARN_API_SEED": "0", "METALEARN_API_KEYS": "",
           "METALEARN_API_MAX_UPLOAD_MB": str(UPLOAD_MB), "METALEARN_API_MAX_UNCOMPRESSED_MB": str(UNCOMPRESSED_MB),
           "METALEARN_API_MAX_CELLS": str(MAX_CELLS), "METALEARN_API_SEARCH_WORKERS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with running_server(root, env) as running:
        http = httpx.Client(base_url=running.url, timeout=120)
        http.get("/v1/datasets")  # the first request imports lazily loaded modules: not the bombs' cost
        yield SimpleNamespace(url=running.url, log=running.log, pid=_server_pid(running.url), http=http)
        http.close()


def _upload(server: SimpleNamespace, filename: str, content: bytes, target: str = "target") -> httpx.Response:
    return server.http.post("/v1/datasets", files={"file": (filename, content)}, data={"target": target})


BOMBS: dict[str, tuple[Callable[[], bytes], str, str, str]] = {
    # name: (content, filename, target, what the 413's detail names)
    "parquet 300 x 1 MiB (#19.1)": (parquet_string_bomb, "bomb.parquet", "target", "bytes in one cell"),
    "parquet distinct strings": (parquet_distinct_bomb, "distinct.parquet", "target",
                                 "METALEARN_API_MAX_UNCOMPRESSED_MB"),
    "parquet dictionary": (parquet_dictionary_bomb, "dictionary.parquet", "target",
                           "METALEARN_API_MAX_UNCOMPRESSED_MB"),
    "parquet footer, 60k columns": (parquet_footer_bomb, "footer.parquet", "c0", "METALEARN_API_MAX_UNCOMPRESSED_MB"),
    "sparse arff, 20k attributes (#19.2)": (lambda: sparse_arff(20_000, 2_000), "wide.arff", "class",
                                            "METALEARN_API_MAX_COLUMNS"),
    "sparse arff, 40M cells": (lambda: sparse_arff(2_000, 20_000), "tall.arff", "class",
                               "METALEARN_API_MAX_CELLS"),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_bomb_is_refused_fast_and_cheaply(server: SimpleNamespace, bomb: str) -> None:
    make, filename, target, setting = BOMBS[bomb]
    content = make()
    assert len(content) < UPLOAD_MB * MiB  # within the upload limit
    with PeakMemory(server.pid) as memory:
        started = time.monotonic()
        response = _upload(server, filename, content, target)
        seconds = time.monotonic() - started
    print(f"{bomb}: {len(content):,} bytes -> {response.status_code} in {seconds:.2f} s, "
          f"server RSS +{memory.growth / MiB:.1f} MiB: {response.json().get('detail')}")
    assert response.status_code == 413, response.text
    assert setting in response.json()["detail"]
    assert seconds < ANSWER_SECONDS
    assert memory.growth < RSS_GROWTH, f"server grew by {memory.growth / MiB:.0f} MiB"


def test_ordinary_parquet_and_arff_uploads_still_work(server: SimpleNamespace) -> None:
    iris = messy_iris_frame()
    expected = from_frame(iris, "target", "iris").content_hash
    buffer = io.BytesIO()
    iris.to_parquet(buffer, index=False)
    response = _upload(server, "iris.parquet", buffer.getvalue())
    assert response.status_code == 201, response.text
    assert response.json()["content_hash"] == expected  # read exactly as pandas.read_parquet reads it
    sparse = sparse_arff(30, 200)
    response = _upload(server, "sparse.arff", sparse, "class")
    assert response.status_code == 201, response.text
    dense = arff.loads(sparse.decode())
    frame = pd.DataFrame(dense["data"], columns=[name for name, _ in dense["attributes"]])
    assert response.json()["content_hash"] == from_frame(frame, "class", "sparse").content_hash


def test_concurrent_uploads_of_the_same_table_all_succeed(server: SimpleNamespace) -> None:
    """#19.6: one upload registers the table, the others find it (``existing: true``); none fails."""
    content = breast_cancer_frame(120, seed=11).to_csv(index=False).encode()
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: _upload(server, "same.csv", content), range(6)))
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert len({b["id"] for b in bodies}) == 1
    assert sorted(b["existing"] for b in bodies) == [False] + [True] * 5
    listed = server.http.get(f"/v1/datasets/{bodies[0]['id']}").json()
    assert listed["stored"] is True and listed["meta_features"] == bodies[0]["meta_features"]


def test_the_server_logged_no_unhandled_error(server: SimpleNamespace) -> None:
    text = Path(server.log).read_text()
    assert "Traceback" not in text and "unhandled error" not in text, text[-3000:]


# ------------------------------------------------------------------------------------------------ readers


SMALL = TableBudget(max_rows=10_000, max_columns=100, max_cells=200_000, max_bytes=4 * MiB,
                    max_cell_bytes=64 * 1024)


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(("name", "make", "fragment"), [
    ("cell.parquet", lambda: parquet_string_bomb(300, MiB), "bytes in one cell"),
    ("distinct.parquet", lambda: parquet_distinct_bomb(40, MiB), "uncompressed"),
    ("dictionary.parquet", lambda: parquet_dictionary_bomb(4000, 8 * 1024), "in memory"),
    ("groups.parquet", lambda: _parquet(pa.table({"x": range(10_001), "target": range(10_001)}),
                                        row_group_size=1), "row groups"),  # (read with room for the footer)
    ("footer.parquet", lambda: parquet_footer_bomb(3_000), "footer"),
    ("wide.arff", lambda: sparse_arff(5_000, 10), "columns"),
    ("tall.arff", lambda: sparse_arff(5, 20_000), "rows"),
    ("cells.arff", lambda: sparse_arff(100, 5_000), "cells"),
])
def test_bounded_readers_refuse_bombs(tmp_path: Path, name: str, make: Callable[[], bytes], fragment: str) -> None:
    path = _write(tmp_path, name, make())
    reader = read_parquet if name.endswith(".parquet") else read_arff
    budget = replace(SMALL, max_bytes=256 * MiB, max_rows=10**5) if name == "groups.parquet" else SMALL
    with pytest.raises(TableTooLarge) as caught:
        reader(path, budget)
    assert fragment in str(caught.value) and caught.value.http_status == 413


def test_bounded_readers_read_tables_as_before(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 2500
    frame = pd.DataFrame({
        "num": rng.normal(size=n), "int": rng.integers(0, 9, n), "flag": rng.random(n) > 0.5,
        "text": rng.choice(["red", "green", None, "a longer value"], n),
        "cat": pd.Categorical(rng.choice(["x", "y", "z"], n)),
        "sparse_num": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
        "target": rng.choice(["yes", "no"], n),
    })
    path = tmp_path / "mixed.parquet"
    frame.to_parquet(path, index=False, row_group_size=700)
    got = read_parquet(path, SMALL)
    pd.testing.assert_frame_equal(got, pd.read_parquet(path))
    assert read_table(path, Limits()).equals(got)

    text = sparse_arff(12, 300).decode().replace("{0 3, ", "{0 3, 2 ?, ")  # a missing value
    dense = ("@relation d\n@attribute n numeric\n@attribute i integer\n@attribute s string\n"
             "@attribute c {p,q}\n@data\n" + "".join(f"{i / 3},{i},'v {i % 4}',{'pq'[i % 2]}\n" for i in range(40))
             + "?,?,?,?\n" * 6 + "% a comment\n\n1.5,2,'w',q\n")
    for name, content in (("sparse.arff", text), ("dense.arff", dense)):
        path = _write(tmp_path, name, content.encode())
        loaded = arff.loads(content)
        expected = pd.DataFrame(loaded["data"], columns=[a for a, _ in loaded["attributes"]])
        pd.testing.assert_frame_equal(read_arff(path, SMALL), expected)
        pd.testing.assert_frame_equal(read_arff(path, SMALL, chunk_cells=20), expected)  # chunks of 5 rows
        assert read_table(path, Limits()).equals(expected)
