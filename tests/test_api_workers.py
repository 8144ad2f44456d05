"""``metalearn serve --workers N``: the worker processes answer keep-alive requests as fast as one process.

uvicorn binds the socket of its worker processes with protocol 0, so asyncio did not set ``TCP_NODELAY`` on their
connections and every keep-alive response (headers, then body) waited ~40 ms for the client's delayed ACK.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from servers import running_server

from metalearn.cli.serve import tcp_listener

DELAYED_ACK_MS = 40.0  # Linux's shortest delayed ACK: what each response waited for without TCP_NODELAY


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY of the server side of a connection that asyncio accepted on ``listener``."""
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    async with server:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        value = await asyncio.wait_for(accepted, 10)
        writer.close()
    return value


@pytest.mark.parametrize("wrap", [False, True])
def test_tcp_listener_gives_connections_tcp_nodelay(wrap: bool) -> None:
    """On uvicorn's own multi-process socket asyncio leaves Nagle's algorithm on; through tcp_listener it is off."""
    listener = uvicorn.Config("metalearn.api.app:create_app", host="127.0.0.1", port=0).bind_socket()
    listener = tcp_listener(listener) if wrap else listener
    assert bool(asyncio.run(_nodelay_of_accepted(listener))) is wrap


def _env(root: Path) -> dict[str, str]:
    """An empty knowledge base without API keys, one search worker."""
    return {"METALEARN_DB": str(root / "kb.sqlite"), "METALEARN_DATA_DIR": str(root / "data"),
            "METALEARN_API_SEED": "0", "METALEARN_API_KEYS": "", "METALEARN_API_SEARCH_WORKERS": "1",
            "OMP_NUM_THREADS": "1"}


def test_two_workers_answer_keep_alive_requests_without_delayed_ack(tmp_path: Path) -> None:
    """Sequential requests over one keep-alive connection: the median stays well under the 40 ms it was.

    The first requests of a connection are acknowledged at once (TCP quick-ack), so only the later ones count."""
    with running_server(tmp_path, _env(tmp_path), ("--workers", "2")) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        latencies = []
        for _ in range(40):
            start = time.perf_counter()
            assert client.get("/v1/health").status_code == 200
            latencies.append((time.perf_counter() - start) * 1000)
    median = statistics.median(latencies[20:])
    assert median < DELAYED_ACK_MS / 2, f"median {median:.1f} ms of keep-alive requests: {latencies}"
