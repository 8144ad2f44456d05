"""Soak test of the HTTP API: N clients x D minutes of mixed traffic from two tenants, bombs and bad input included.

Usage::

    python benchmarks/soak/soak.py [--clients 8] [--minutes 10] [--output benchmarks/results/soak]
    python benchmarks/soak/soak.py --clients 2 --minutes 1        # smoke run

The script starts ``metalearn serve`` itself on a free loopback port, on a fresh knowledge base (loaded with the
shipped seed) in a temporary folder, with two tenants (``alice`` and ``bob``, one API key each; clients alternate
between them) and one search worker. Every client loops over a weighted mix of actions (see :data:`ACTIONS`):
upload a small table (a new variant or one it uploaded before), upload a bomb or bad input (parquet and sparse
ARFF decompression bombs, garbage bytes, a missing target, one class, bad JSON), recommend, start a tiny search
(random, 3 trials), follow it, predict with a finished one, get its report, download its model, read the stats,
and probe the *other* tenant's datasets and searches (every read, prediction, report or cancel must be a 404).

Reported (``results.json`` and ``summary.md`` in ``--output``): latency p50/p95/p99 per endpoint, answers by
status per endpoint, *unexpected* answers (a 5xx anywhere, a 4xx other than 429 for a valid request, a 2xx for
a bomb), peak RSS of the server process and of its worker processes (psutil, sampled every 0.5 s), runs lost
(trial run ids the API reported that the knowledge base does not hold after the server stopped; must be 0) and
cross-tenant reads that succeeded (must be 0). Exit status 1 when either is not 0 or a 5xx was seen.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_breast_cancer, load_iris, load_wine

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "results" / "soak"
TENANTS = {"alice": "soak-alice-6b1e0c", "bob": "soak-bob-93d2f7"}
SEARCH = {"strategy": "random", "n_trials": 3, "folds": 2, "max_rows": 200, "ensemble_size": 0,
          "trial_time_limit": 30}
ACTIONS = {  # weights of a client's next action
    "upload": 10, "upload_bad": 8, "recommend": 20, "search_start": 8, "search_status": 14, "predict": 12,
    "report": 3, "model": 4, "stats": 6, "cross_tenant": 15,
}
MiB = 2**20


# ------------------------------------------------------------------------------------------------ inputs


def _tables() -> list[pd.DataFrame]:
    frames = []
    for loader, rows in ((load_iris, 150), (load_wine, 178), (load_breast_cancer, 200)):
        data = loader(as_frame=True)
        frame = data.data.iloc[:rows, :4].copy()  # the same 4 feature columns: any model predicts any table
        frame.columns = [f"f{i}" for i in range(frame.shape[1])]
        frame["target"] = data.target.iloc[:rows].to_numpy()
        frames.append(frame)
    return frames


BASE_TABLES = _tables()


def table_csv(tenant: str, variant: int) -> bytes:
    """A small table of ``tenant`` (its own column names, so two tenants never upload the same content)."""
    rng = np.random.default_rng(variant)
    frame = BASE_TABLES[variant % len(BASE_TABLES)].copy()
    features = [c for c in frame.columns if c != "target"]
    frame[features] = frame[features] + rng.normal(0, 1e-3, size=(len(frame), len(features))).round(4)
    frame.columns = [f"{tenant}_{c}" if c != "target" else c for c in frame.columns]
    return frame.to_csv(index=False).encode()


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _sparse_arff(n_attributes: int, n_rows: int) -> bytes:
    lines = ["@relation bomb"] + [f"@attribute a{i} numeric" for i in range(n_attributes - 1)]
    lines += ["@attribute class {x,y}", "@data"]
    lines += [f"{{0 {i % 7}, {n_attributes - 1} {'xy'[i % 2]}}}" for i in range(n_rows)]
    return ("\n".join(lines) + "\n").encode()


def bad_uploads() -> list[tuple[str, str, bytes, str]]:
    """(kind, filename, content, target): inputs the server must refuse with a 4xx."""
    # #19.1: 300 rows of one 1 MiB string, dictionary-encoded: a few kB on the wire, 300 MiB once decoded
    bomb = pa.DictionaryArray.from_arrays(pa.array([0] * 300, pa.int32()), pa.array(["a" * MiB]))
    return [
        ("parquet_bomb", "bomb.parquet", _parquet(pa.table({"text": bomb, "target": [0, 1] * 150})), "target"),
        ("arff_bomb", "bomb.arff", _sparse_arff(20_000, 2_000), "class"),
        ("garbage", "garbage.csv", bytes(range(256)) * 64, "target"),
        ("missing_target", "t.csv", b"a,b\n1,2\n3,4\n", "target"),
        ("one_class", "one.csv", b"a,target\n" + b"1,0\n" * 30, "target"),
        ("empty", "empty.csv", b"", "target"),
    ]


# ------------------------------------------------------------------------------------------------ records


@dataclass
class Shared:
    """What the clients record, and the objects each tenant owns (for the cross-tenant probes)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    datasets: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    searches: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    finished: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    reported_runs: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    cross_tenant_ok: list[dict[str, Any]] = field(default_factory=list)
    cross_tenant_probes: int = 0

    def record(self, endpoint: str, status: int, seconds: float, expected: bool, detail: str = "") -> None:
        with self.lock:
            self.latencies[endpoint].append(seconds)
            self.statuses[endpoint][str(status)] += 1
            if not expected:
                self.unexpected.append({"endpoint": endpoint, "status": status, "detail": detail[:300]})


class Client:
    """One simulated user of one tenant, with its own HTTP connection."""

    def __init__(self, url: str, tenant: str, shared: Shared, seed: int) -> None:
        self.tenant, self.shared, self.rng = tenant, shared, random.Random(seed)
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TENANTS[tenant]}"}, timeout=300)
        self.variants: list[int] = []
        self.seed = seed

    def call(self, endpoint: str, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any
             ) -> httpx.Response | None:
        """Send a request and record its latency; ``ok`` are the statuses expected (429 always is)."""
        started = time.perf_counter()
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.shared.record(endpoint, 599, time.perf_counter() - started, False, f"{type(exc).__name__}: {exc}")
            return None
        seconds = time.perf_counter() - started
        expected = response.status_code in ok or response.status_code == 429
        self.shared.record(endpoint, response.status_code, seconds, expected, response.text)
        return response

    def owned(self, kind: str) -> int | None:
        with self.shared.lock:
            items = list(getattr(self.shared, kind)[self.tenant])
        return self.rng.choice(items) if items else None

    # ---------------------------------------------------------------------------------------- actions

    def upload(self) -> None:
        if self.variants and self.rng.random() < 0.4:
            variant = self.rng.choice(self.variants)  # the same table again: registered once
        else:
            variant = self.seed * 100_000 + len(self.variants)
            self.variants.append(variant)
        content = table_csv(self.tenant, variant)
        response = self.call("upload", "POST", "/v1/datasets", ok=(201,), data={"target": "target"},
                             files={"file": (f"t{variant}.csv", content, "text/csv")})
        if response is not None and response.status_code == 201:
            with self.shared.lock:
                if response.json()["id"] not in self.shared.datasets[self.tenant]:
                    self.shared.datasets[self.tenant].append(response.json()["id"])

    def upload_bad(self) -> None:
        if self.rng.random() < 0.2:  # malformed JSON and an impossible search
            self.call("bad_json", "POST", "/v1/searches", ok=(400, 404, 422), content=b"{not json",
                      headers={"Content-Type": "application/json"})
            return
        kind, filename, content, target = self.rng.choice(BAD_UPLOADS)
        self.call(f"upload_{kind}", "POST", "/v1/datasets", ok=(400, 413, 422), data={"target": target},
                  files={"file": (filename, content, "application/octet-stream")})

    def recommend(self) -> None:
        dataset = self.owned("datasets")
        if dataset is not None:
            self.call("recommend", "POST", "/v1/recommendations", json={"dataset_id": dataset, "top": 5})

    def search_start(self) -> None:
        dataset = self.owned("datasets")
        if dataset is None:
            return
        response = self.call("search_start", "POST", "/v1/searches", ok=(202,),
                             json={"dataset_id": dataset, "seed": self.rng.randrange(1000), **SEARCH})
        if response is not None and response.status_code == 202:
            with self.shared.lock:
                self.shared.searches[self.tenant].append(response.json()["id"])

    def search_status(self, search_id: int | None = None) -> None:
        search_id = search_id or self.owned("searches")
        if search_id is None:
            return
        status = self.call("search_status", "GET", f"/v1/searches/{search_id}")
        trials = self.call("trials", "GET", f"/v1/searches/{search_id}/trials")
        if status is None or trials is None or trials.status_code != 200:
            return
        with self.shared.lock:
            self.shared.reported_runs[search_id].update(t["run_id"] for t in trials.json()["trials"])
            if status.status_code == 200 and status.json()["model_available"] \
                    and search_id not in self.shared.finished[self.tenant]:
                self.shared.finished[self.tenant].append(search_id)

    def predict(self) -> None:
        search_id = self.owned("finished")
        if search_id is None:
            return
        rows = pd.read_csv(io.BytesIO(table_csv(self.tenant, 0))).drop(columns="target").head(20)
        self.call("predict", "POST", f"/v1/searches/{search_id}/predict",
                  json={"rows": rows.to_dict("records")})

    def report(self) -> None:
        search_id = self.owned("finished")
        if search_id is not None:
            self.call("report", "GET", f"/v1/searches/{search_id}/report", headers={"Accept": "application/json"})

    def model(self) -> None:
        search_id = self.owned("finished")
        if search_id is not None:
            self.call("model", "GET", f"/v1/searches/{search_id}/model")

    def stats(self) -> None:
        self.call("stats", "GET", "/v1/knowledge-base/stats")

    def cross_tenant(self) -> None:
        """Every way of reading (or cancelling) the other tenant's objects: each must answer 404."""
        other = next(t for t in TENANTS if t != self.tenant)
        with self.shared.lock:
            datasets, searches = list(self.shared.datasets[other]), list(self.shared.searches[other])
        probes = []
        if datasets:
            dataset = self.rng.choice(datasets)
            probes += [("GET", f"/v1/datasets/{dataset}", {}),
                       ("POST", "/v1/recommendations", {"json": {"dataset_id": dataset}}),
                       ("POST", "/v1/searches", {"json": {"dataset_id": dataset, **SEARCH}})]
        if searches:
            search = self.rng.choice(searches)
            probes += [("GET", f"/v1/searches/{search}", {}), ("GET", f"/v1/searches/{search}/trials", {}),
                       ("GET", f"/v1/searches/{search}/model", {}), ("GET", f"/v1/searches/{search}/report", {}),
                       ("POST", f"/v1/searches/{search}/predict", {"json": {"rows": [{"x": 1}]}}),
                       ("DELETE", f"/v1/searches/{search}", {})]
        if not probes:
            return
        method, path, kwargs = self.rng.choice(probes)
        response = self.call("cross_tenant", method, path, ok=(404,), **kwargs)
        with self.shared.lock:
            self.shared.cross_tenant_probes += 1
            if response is not None and response.status_code < 400:
                self.shared.cross_tenant_ok.append({"method": method, "path": path, "status": response.status_code})

    def run(self, deadline: float) -> None:
        names, weights = list(ACTIONS), list(ACTIONS.values())
        self.upload()
        while time.monotonic() < deadline:
            getattr(self, self.rng.choices(names, weights)[0])()
        self.http.close()


BAD_UPLOADS = bad_uploads()


# ------------------------------------------------------------------------------------------------ server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path) -> tuple[subprocess.Popen, str, Path]:
    port, log = _free_port(), root / "server.log"
    env = os.environ | {
        "METALEARN_DB": str(root / "kb.sqlite"), "METALEARN_DATA_DIR": str(root / "data"),
        "METALEARN_MODEL_KEY_FILE": str(root / "model.key"), "METALEARN_CACHE_DIR": str(root / "cache"),
        "METALEARN_API_KEYS": ",".join(f"{name}:{key}" for name, key in TENANTS.items()),
        "METALEARN_API_ADMIN_KEYS": "", "METALEARN_API_SEARCH_WORKERS": "1", "METALEARN_API_SEARCH_QUEUE": "8",
        "METALEARN_API_UPLOADS_PER_HOUR": "100000", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "metalearn.cli", "serve", "--host", "127.0.0.1", "--port",
                                 str(port), "--log-level", "warning"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return proc, url, log
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"server did not come up in 180 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


class MemorySampler:
    """Peak RSS of the server process and of its worker processes (searches, reports, trials)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.process, self.interval = psutil.Process(pid), interval
        self.peak = {"server_mb": 0.0, "largest_worker_mb": 0.0, "workers_total_mb": 0.0, "all_total_mb": 0.0}
        self.max_workers = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self, process: psutil.Process) -> float:
        try:
            return process.memory_info().rss / MiB
        except psutil.Error:
            return 0.0

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            server = self._rss(self.process)
            try:
                children = self.process.children(recursive=True)
            except psutil.Error:
                continue
            workers = [self._rss(child) for child in children]
            sample = {"server_mb": server, "largest_worker_mb": max(workers, default=0.0),
                      "workers_total_mb": sum(workers), "all_total_mb": server + sum(workers)}
            self.peak = {k: max(v, sample[k]) for k, v in self.peak.items()}
            self.max_workers = max(self.max_workers, len(workers))

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)


# ------------------------------------------------------------------------------------------------ results


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1)}


def drain(url: str, shared: Shared, timeout: float) -> None:
    """Wait (up to ``timeout`` s) for the searches to end, then read every search's trials a last time."""
    deadline = time.monotonic() + timeout
    for tenant, key in TENANTS.items():
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            for search_id in list(shared.searches[tenant]):
                while time.monotonic() < deadline:
                    status = http.get(f"/v1/searches/{search_id}").json()
                    if status["status"] not in ("queued", "running"):
                        break
                    time.sleep(1)
                else:
                    http.delete(f"/v1/searches/{search_id}")
                trials = http.get(f"/v1/searches/{search_id}/trials")
                if trials.status_code == 200:
                    shared.reported_runs[search_id].update(t["run_id"] for t in trials.json()["trials"])


def runs_lost(db: Path, shared: Shared) -> dict[str, int]:
    """Trial run ids the API reported that the knowledge base does not hold (read after the server stopped)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        stored = {int(r[0]) for r in conn.execute("SELECT id FROM runs WHERE search_id IS NOT NULL")}
        searches = conn.execute("SELECT count(*) FROM searches").fetchone()[0]
    reported = set().union(*shared.reported_runs.values()) if shared.reported_runs else set()
    return {"searches_in_kb": int(searches), "runs_reported": len(reported), "runs_in_kb": len(stored),
            "runs_lost": len(reported - stored)}


def summary_md(results: dict[str, Any]) -> str:
    config, checks = results["config"], results["checks"]
    lines = [f"# Soak: {config['clients']} clients x {config['minutes']} min, two tenants",
             "", f"{results['created']}, {config['machine']}. Requests: {results['requests']:,}; "
             f"searches started: {checks['searches_started']}; max worker processes at once: "
             f"{results['peak_rss']['max_workers']}.", "",
             "| check | value |", "|---|---|",
             f"| runs lost (reported by the API, missing from the KB) | **{checks['runs_lost']}** |",
             f"| cross-tenant reads that succeeded (of {checks['cross_tenant_probes']} probes) | "
             f"**{checks['cross_tenant_reads_ok']}** |",
             f"| 5xx answers | **{checks['server_errors']}** |",
             f"| unexpected answers (5xx, 4xx other than 429 for a valid request, 2xx for bad input) | "
             f"{checks['unexpected']} |",
             f"| peak RSS: server / largest worker / all processes | {results['peak_rss']['server_mb']:.0f} / "
             f"{results['peak_rss']['largest_worker_mb']:.0f} / {results['peak_rss']['all_total_mb']:.0f} MB |",
             "", "| endpoint | n | p50 ms | p95 ms | p99 ms | answers |", "|---|---|---|---|---|---|"]
    for name, row in sorted(results["endpoints"].items()):
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(row["statuses"].items()))
        lines.append(f"| {name} | {row['n']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {answers} |")
    return "\n".join(lines) + "\n"


def soak(clients: int, minutes: float, output: Path, keep: bool = False) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="metalearn-soak-"))
    proc, url, log = start_server(root)
    shared = Shared()
    try:
        with MemorySampler(proc.pid) as memory:
            deadline = time.monotonic() + minutes * 60
            threads = [threading.Thread(target=Client(url, list(TENANTS)[i % 2], shared, seed=i + 1).run,
                                        args=(deadline,), name=f"soak-client-{i}") for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            drain(url, shared, timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    lost = runs_lost(root / "kb.sqlite", shared)
    tracebacks = log.read_text(errors="replace").count("Traceback")
    statuses = Counter()
    for counts in shared.statuses.values():
        statuses.update(counts)
    results = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"clients": clients, "minutes": minutes, "tenants": list(TENANTS), "actions": ACTIONS,
                   "search": SEARCH, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "load_average_at_start": list(os.getloadavg())},
        "requests": sum(len(v) for v in shared.latencies.values()),
        "endpoints": {name: _percentiles(values) | {"statuses": dict(shared.statuses[name])}
                      for name, values in shared.latencies.items()},
        "statuses": dict(statuses),
        "peak_rss": {k: round(v, 1) for k, v in memory.peak.items()} | {"max_workers": memory.max_workers},
        "checks": {"runs_lost": lost["runs_lost"], "cross_tenant_reads_ok": len(shared.cross_tenant_ok),
                   "cross_tenant_probes": shared.cross_tenant_probes,
                   "server_errors": sum(n for s, n in statuses.items() if s.startswith("5") and s != "599"),
                   "client_errors_transport": statuses.get("599", 0), "unexpected": len(shared.unexpected),
                   "searches_started": sum(len(v) for v in shared.searches.values()),
                   "server_log_tracebacks": tracebacks} | lost,
        "cross_tenant_successes": shared.cross_tenant_ok[:20],
        "unexpected_examples": shared.unexpected[:20],
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (output / "summary.md").write_text(summary_md(results))
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--keep", action="store_true", help="keep the temporary server folder (log, KB)")
    args = parser.parse_args()
    results = soak(args.clients, args.minutes, args.output, keep=args.keep)
    print(summary_md(results))
    checks = results["checks"]
    return 1 if checks["runs_lost"] or checks["cross_tenant_reads_ok"] or checks["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
