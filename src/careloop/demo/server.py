"""Running `careloop serve` as a separate process on loopback (demo, tests, benchmarks).

The demo's simulated EHRs call the server over real HTTP, so it runs in its
own process, exactly as an operator would start it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from careloop.core.errors import ConfigurationError


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    """A `careloop serve` process and where it answers."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(
    data_dir: Path, *, env: dict[str, str] | None = None, timeout: float = 120.0
) -> RunningServer:
    """Start `careloop serve` for ``data_dir`` on a free loopback port; wait for /health.

    The wait ends as soon as the server answers; the limit is generous because
    a busy two-core machine can take half a minute just to import the app.
    """
    port = free_port()
    log = data_dir.parent / f"server-{port}.log"
    with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
            [
                sys.executable,
                "-m",
                "careloop.cli",
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CARELOOP_DATA_DIR": str(data_dir), **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigurationError(f"careloop serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return RunningServer(url, process, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise ConfigurationError(
        f"careloop serve did not answer in {timeout:.0f} s: {log.read_text()[-2000:]}"
    )


def stop_server(server: RunningServer) -> None:
    """Stop the server (terminate, then kill after 10 s)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
