"""Start a real ``metalearn serve`` (uvicorn) in a subprocess for a test, and stop it afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(root: Path, env: dict[str, str]) -> Iterator[SimpleNamespace]:
    """``metalearn serve`` on a free loopback port with ``env`` on top of this process's environment;
    yields ``(url, log, process)`` once ``/v1/health`` answers (at most 60 s), and stops it with SIGTERM
    (unless a test killed it already: :func:`kill_hard`)."""
    port, log_path = free_port(), root / f"server-{time.monotonic_ns()}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "metalearn.cli", "serve", "--host", "127.0.0.1", "--port",
                                 str(port), "--log-level", "warning"], env=os.environ | env, stdout=log,
                                stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"server did not come up in 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield SimpleNamespace(url=url, log=log_path, process=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_hard(server: SimpleNamespace) -> None:
    """``kill -9`` the server of :func:`running_server` (no shutdown code runs) and reap it."""
    server.process.kill()
    server.process.wait(timeout=10)
