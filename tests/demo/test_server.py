"""`careloop serve` started for the demo and the tests: on a port of its own, even under contention."""

from __future__ import annotations

import socket

import httpx
import pytest

from careloop.demo import server as server_module
from careloop.trust.principal import Principal
from tests.foundation import PASSWORD, make_settings


def _taken_port() -> socket.socket:
    """A listening socket on a loopback port: the port is taken, and connections to it hang."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    return holder


@pytest.fixture
def data_dir(tmp_path):
    from careloop.trust.installation import initialise

    settings = make_settings(tmp_path, None)
    initialise(
        settings,
        Principal.operator("tests"),
        admin_email="admin@example.org",
        admin_password=PASSWORD,
    )
    return settings.data_dir


def test_a_port_taken_before_the_server_binds_it_is_given_up_for_another(data_dir, monkeypatch):
    holder = _taken_port()
    taken = holder.getsockname()[1]
    real = server_module.free_port
    offered = iter([taken])
    monkeypatch.setattr(server_module, "free_port", lambda: next(offered, None) or real())
    try:
        running = server_module.start_server(data_dir, timeout=60)
    finally:
        holder.close()
    try:
        assert running.url != f"http://127.0.0.1:{taken}"
        assert httpx.get(running.url + "/health", timeout=5).status_code == 200
        first_log = data_dir.parent / f"server-{taken}.log"
        assert "error while attempting to bind" in first_log.read_text()
    finally:
        server_module.stop_server(running)
