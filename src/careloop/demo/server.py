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


PORT_ATTEMPTS = 3
"""How many free ports :func:`start_server` tries before it gives up."""


class _PortTaken(Exception):
    """Another process bound the free port between our check and the server's bind."""


def start_server(
    data_dir: Path, *, env: dict[str, str] | None = None, timeout: float = 120.0
) -> RunningServer:
    """Start `careloop serve` for ``data_dir`` on a free loopback port; wait for /health.

    The wait ends as soon as the server answers; the limit is generous because
    a busy two-core machine can take half a minute just to import the app.
    A port found free can be taken by another process (a second test worker
    starting its own server) before this server binds it: the server is then
    started again on another free port.
    """
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return _start_once(data_dir, env, timeout)
        except _PortTaken:
            continue
    try:
        return _start_once(data_dir, env, timeout)
    except _PortTaken as exc:
        raise ConfigurationError(
            f"careloop serve found no free loopback port in {PORT_ATTEMPTS} tries: {exc}"
        ) from None


def _start_once(data_dir: Path, env: dict[str, str] | None, timeout: float) -> RunningServer:
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
    # uvicorn logs this line once it holds the port: until then /health could be
    # answered by whichever other process took the port.
    bound = f"Uvicorn running on {url} ".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace")[-2000:]
            if "error while attempting to bind" in text:
                raise _PortTaken(text)
            raise ConfigurationError(f"careloop serve exited: {text}")
        try:
            if (
                bound in log.read_bytes()
                and httpx.get(f"{url}/health", timeout=1).status_code == 200
            ):
                return RunningServer(url, process, log)
        except httpx.HTTPError:
            pass
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
