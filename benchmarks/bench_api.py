"""Load test of the HTTP API: throughput and latency of stats and recommendations while a search runs.

Usage::

    python benchmarks/bench_api.py [--db KB] [--duration 10] [--concurrency 1 8 32]
                                   [--modes cached uncached] [--output benchmarks/results]

The knowledge base (``--db``: a SQLite file, copied first so it is never written; default: a fresh one
loaded with the shipped seed snapshot) is served by ``metalearn serve`` started by this script on a
free local port, with an admin API key set (authentication is part of every measured request, and an admin key may
ask for every dataset of the knowledge base, not only its own uploads).

Before measuring, the script uploads sklearn's breast-cancer table (569 x 30) and starts a warm search
on it (up to 1000 trials, one worker process at the server's default low priority, nice 10); measuring
starts once it has finished a trial, it keeps running during all measurements and is cancelled at the
end. The trials it finished while the load ran are recorded: being niced, it yields the CPU to a
saturated server, so this shows how much it was slowed down.

For each endpoint -- ``GET /v1/knowledge-base/stats`` and ``POST /v1/recommendations`` (by dataset id,
cycling over every dataset of the knowledge base that has meta-features) -- and each concurrency level,
``N`` asyncio clients send requests back to back for ``--duration`` seconds after a 1 s warm-up, each
over its own keep-alive connection (a minimal HTTP/1.1 client on asyncio streams: httpx's connection
pool, not the server, was the bottleneck at 32 clients). Reported:
requests/s, mean/p50/p95/p99/max latency in ms (client side: send to full response), errors, and for
recommendations the share answered from the server's response cache (``X-Metalearn-Cache``).

Modes: ``cached`` is the server as shipped; ``uncached`` restarts it with ``METALEARN_API_RECOMMEND_CACHE=0``
so every recommendation is computed (the recommender itself stays cached) -- only recommendations are
measured there. The load generator runs on the same machine as the server and competes for its cores.

Writes ``api_load.json`` to ``--output`` and exits with status 1 if the target (p95 < 100 ms for
recommendations at 8 clients, cached mode) is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

from metalearn.client import APIError, Client
from metalearn.knowledge_base import KnowledgeBase
from metalearn.knowledge_base.snapshot import ensure_seeded

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
API_KEY = "bench-key"
TARGET = {"endpoint": "recommendations", "clients": 8, "p95_ms": 100.0}
UNCACHED_TARGET_MS = 50.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_kb(db: str | None, folder: Path) -> Path:
    """A private copy of ``db`` (SQLite backup API: consistent even while it is written), or the seed."""
    target = folder / "kb.sqlite"
    if db:
        source = Path(db).expanduser()
        if not source.is_file():
            sys.exit(f"error: no such knowledge base file: {source}")
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return target

    kb = KnowledgeBase(str(target))
    if ensure_seeded(kb) is None:
        sys.exit("error: no shipped seed snapshot (knowledge_base/seed/seed-kb.json.gz); pass --db")
    kb.dispose()
    return target


class Server:
    def __init__(self, db: Path, folder: Path, response_cache: bool, workers: int = 1) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"METALEARN_DB": str(db), "METALEARN_DATA_DIR": str(folder / "data"),
                            "METALEARN_API_ADMIN_KEYS": API_KEY, "METALEARN_API_SEED": "0",
                            "METALEARN_API_RECOMMEND_CACHE": "1" if response_cache else "0"}
        folder.mkdir(parents=True, exist_ok=True)
        self.log = (folder / f"server-{self.port}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "metalearn.cli", "serve", "--port", str(self.port),
                                      "--workers", str(workers), "--log-level", "warning"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)

        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"error: server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                sys.exit("error: server did not start in 90 s")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_background_search(client: Any) -> int:
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    dataset = client.upload_dataset(pd.DataFrame(frame), target="target", name="bench_breast_cancer")
    search = client.start_search(dataset["id"], strategy="warm", n_trials=1000, time_budget=3600,
                                 trial_time_limit=60, folds=3)
    deadline = time.monotonic() + 180  # measure only once it is evaluating trials
    while client.search(search["id"])["trials_done"] < 1:
        if time.monotonic() > deadline:
            sys.exit("error: the background search finished no trial in 180 s")
        time.sleep(0.5)
    return int(search["id"])


def recommendable_ids(client: Any) -> list[int]:
    ids = []
    offset = 0
    while True:
        page = client.datasets(limit=1000, offset=offset)
        for item in page["datasets"]:
            try:
                client.recommend(item["id"])
                ids.append(item["id"])
            except APIError:
                pass
        offset += len(page["datasets"])
        if offset >= page["total"] or not page["datasets"]:
            return ids


class _Connection:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams (a lot cheaper per request than httpx, whose
    connection pool became the bottleneck at 32 clients on 2 cores)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {API_KEY}\r\nAccept: application/json\r\n")
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, content

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def _load(url: str, endpoint: str, clients: int, duration: float, ids: list[int]) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    hits = 0
    measuring = False
    stop_at = 0.0

    async def worker(index: int) -> None:
        nonlocal errors, hits
        connection = _Connection(host, int(port))
        i = index
        try:
            while True:
                if measuring and time.perf_counter() >= stop_at:
                    return
                start = time.perf_counter()
                if endpoint == "stats":
                    status, headers, content = await connection.request("GET", "/v1/knowledge-base/stats")
                else:
                    payload = json.dumps({"dataset_id": ids[i % len(ids)], "top": 5, "k": 5}).encode()
                    status, headers, content = await connection.request("POST", "/v1/recommendations", payload)
                    i += clients
                elapsed = time.perf_counter() - start
                if measuring and start < stop_at:
                    latencies.append(elapsed)
                    if status != 200 or not content.startswith(b"{"):
                        errors += 1
                    elif headers.get("x-metalearn-cache") == "hit":
                        hits += 1
        finally:
            await connection.close()

    tasks = [asyncio.create_task(worker(i)) for i in range(clients)]
    await asyncio.sleep(1.0)  # warm-up: connections open, caches filled
    measuring, begin = True, time.perf_counter()
    stop_at = begin + duration
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - begin
    ms = np.asarray(latencies) * 1000
    result = {"clients": clients, "requests": len(ms), "seconds": round(wall, 3),
              "requests_per_s": round(len(ms) / wall, 1), "errors": errors,
              "mean_ms": round(float(ms.mean()), 2), "p50_ms": round(float(np.percentile(ms, 50)), 2),
              "p95_ms": round(float(np.percentile(ms, 95)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
              "max_ms": round(float(ms.max()), 2)}
    if endpoint == "recommendations":
        result["cache_hit_ratio"] = round(hits / max(1, len(ms) - errors), 3)
    return result


def run_mode(mode: str, db: Path, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = Server(db, folder / mode, response_cache=(mode == "cached"), workers=args.workers)
    try:
        with Client(server.url, api_key=API_KEY, timeout=120) as client:
            search_id = None if args.no_search else start_background_search(client)
            ids = recommendable_ids(client)
            if not ids:
                sys.exit("error: no dataset of the knowledge base has meta-features")
            before = client.search(search_id) if search_id else None
            endpoints = ("stats", "recommendations") if mode == "cached" else ("recommendations",)
            results: dict[str, Any] = {}
            for endpoint in endpoints:
                results[endpoint] = []
                for clients in args.concurrency:
                    row = asyncio.run(_load(server.url, endpoint, clients, args.duration, ids))
                    results[endpoint].append(row)
                    print(f"{mode:9s} {endpoint:16s} {clients:3d} clients: {row['requests_per_s']:8.1f} req/s  "
                          f"p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms"
                          + (f"  cache hits {row['cache_hit_ratio']:.0%}" if "cache_hit_ratio" in row else "")
                          + (f"  errors {row['errors']}" if row["errors"] else ""), flush=True)
            after = client.search(search_id) if search_id else None
            if search_id:
                client.cancel(search_id)
            search = None if not search_id else {
                "id": search_id, "status_at_end": after["status"], "trials_before_measuring": before["trials_done"],
                "trials_after_measuring": after["trials_done"],
                "trials_during_measuring": after["trials_done"] - before["trials_done"]}
            return {"datasets_queried": len(ids), "background_search": search, "results": results}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="knowledge base (SQLite file), copied before use; default: the shipped seed")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per level [10]")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--modes", nargs="+", choices=("cached", "uncached"), default=["cached", "uncached"])
    parser.add_argument("--no-search", action="store_true", help="no background search")
    parser.add_argument("--workers", type=int, default=1, help="server processes (metalearn serve --workers) [1]")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="metalearn-bench-api-"))
    try:
        db = prepare_kb(args.db, folder)
        kb = KnowledgeBase(str(db))
        kb_stats = kb.stats()
        kb.dispose()
        load_before = os.getloadavg()
        modes = {mode: run_mode(mode, db, folder, args) for mode in args.modes}
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def p95(mode: str) -> float | None:
        rows = modes.get(mode, {}).get("results", {}).get(TARGET["endpoint"], [])
        return next((r["p95_ms"] for r in rows if r["clients"] == TARGET["clients"]), None)

    measured = p95("cached")
    report = {
        "benchmark": "api_load",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "loadavg_before": [round(v, 2) for v in load_before],
                    "loadavg_after": [round(v, 2) for v in os.getloadavg()],
                    "note": "load generator, server and the background search share these cores"},
        "knowledge_base": {"source": args.db or "shipped seed", "datasets": kb_stats["datasets"],
                           "runs": kb_stats["runs"], "configurations": kb_stats["configurations"]},
        "protocol": {"duration_s": args.duration, "warmup_s": 1.0, "concurrency": args.concurrency,
                     "background_search": not args.no_search, "server_workers": args.workers,
                     "auth": "Bearer key on every request",
                     "client": "asyncio streams, HTTP/1.1 keep-alive, one connection per client"},
        "modes": modes,
        "target": {"description": "p95 < 100 ms for POST /v1/recommendations at 8 concurrent clients (cached mode)",
                   "p95_ms": measured, "met": None if measured is None else measured < TARGET["p95_ms"],
                   "uncached_p95_ms": p95("uncached")},
        "target_uncached": {"description": "p95 < 50 ms for POST /v1/recommendations at 8 concurrent clients "
                                           "without the response cache, a search running (issue #22)",
                            "p95_ms": p95("uncached"), "met": None if p95("uncached") is None
                            else p95("uncached") < UNCACHED_TARGET_MS},
    }
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "api_load.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    uncached = report["target_uncached"]
    print(f"wrote {path}; cached target {'met' if report['target']['met'] else 'NOT met'} (p95 {measured} ms); "
          f"uncached target {'met' if uncached['met'] else 'NOT met'} (p95 {uncached['p95_ms']} ms)")
    if report["target"]["met"] is False:
        sys.exit(1)


if __name__ == "__main__":
    main()
