"""``metalearn serve``: the HTTP API and the studio under uvicorn (imported when the command runs, with the API and
the settings, not for its ``--help``)."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Annotated

import typer

from metalearn.cli.common import DbOption, _shown, user_errors
from metalearn.errors import MetalearnError

commands = typer.Typer()


def tcp_listener(sock: socket.socket) -> socket.socket:
    """``sock`` (a bound listening socket) re-wrapped with its protocol set to ``IPPROTO_TCP``.

    uvicorn binds the socket it shares with its worker processes as ``socket.socket(family)`` (protocol 0), and
    asyncio sets ``TCP_NODELAY`` only on accepted sockets whose protocol says TCP: without it each keep-alive
    response, written as headers then body, waits for the client's delayed ACK (~40 ms, Nagle's algorithm).
    """
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


@commands.command()
@user_errors
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
          workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes (uvicorn workers).")] = 1,
          db: DbOption = None,
          log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "info") -> None:
    """Run the HTTP API with uvicorn (docs at /docs); settings from METALEARN_DB and METALEARN_API_*."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from metalearn import service, settings
    from metalearn.api.app import create_app
    from metalearn.knowledge_base.snapshot import open_kb

    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise MetalearnError(f"unknown log level {log_level!r}; use critical, error, warning, info or debug")
    # bad settings: one line and exit 2, before uvicorn
    server = settings.ServerSettings.from_env(db_url=settings.database_url(db))
    # the key follows the environment, not --db: pin it for the worker processes (METALEARN_DB may change below)
    settings.pin_model_key_file()
    key = settings.model_key()  # generated now if missing; a bad key is one line and exit 2
    typer.echo(f"metalearn API on http://{host}:{port} (docs at /docs), knowledge base {_shown(server.db_url)}, "
               f"data in {server.data_dir}, models signed with the key in {key.source}", err=True)
    if workers == 1:
        uvicorn.run(create_app(server), host=host, port=port, log_level=log_level)
        return
    # several processes: uvicorn imports the app factory in each; seed and recover once here, and hand the
    # knowledge base to the workers through the one variable they read it from
    kb = open_kb(server.db_url, seed=server.seed_kb)
    if server.recover:
        service.recover_searches(kb)
    kb.dispose()
    os.environ.update(METALEARN_DB=server.db_url, METALEARN_API_SEED="0", METALEARN_API_RECOVER="0")
    # what uvicorn.run(..., workers=n) does, but on a socket that says TCP (see tcp_listener)
    config = uvicorn.Config("metalearn.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                            log_level=log_level)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[tcp_listener(config.bind_socket())]).run()
