"""``metalearn serve --workers N``: the worker processes' connections have ``TCP_NODELAY``, as one process's do.

uvicorn binds the socket of its worker processes with protocol 0, so asyncio did not set ``TCP_NODELAY`` on their
connections and every keep-alive response (headers, then body) waited ~40 ms for the client's delayed ACK.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn

from metalearn.cli.serve import tcp_listener


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
