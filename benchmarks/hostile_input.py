"""Benchmark: a "billion laughs" YAML dictionary sent to a real `careloop serve`.

A 423-byte YAML dictionary (a form whose description is eight levels of
nine aliases: 43 million strings once expanded) is posted to
``POST /api/forms?format=yaml`` by the admin, while a bystander asks
``GET /health`` every 50 ms. Printed: how long the upload took to be
answered and with what, the server's peak memory (VmHWM) before and after,
and the bystander's slowest answer meanwhile. The baseline, measured in the
same run, is the upload of the example dictionary (``ibd_registry.yaml``,
21 KB), which is imported.

    .venv/bin/python benchmarks/hostile_input.py
"""

from __future__ import annotations

import tempfile
import threading
import time
import warnings
from pathlib import Path

import httpx

from careloop.capture.examples import example_file
from careloop.core.settings import load_settings
from careloop.demo.server import start_server, stop_server
from careloop.trust import identity
from careloop.trust.installation import initialise, open_registry
from careloop.trust.principal import Principal

OPERATOR = Principal.operator("bench")


def billion_laughs() -> bytes:
    """A valid forms dictionary whose description is 8 levels of 9 aliases (9^8 strings)."""
    parts = ['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 8):
        this, last = chr(97 + i), chr(96 + i)
        parts.append(f"&{this} [" + ",".join([f"*{last}"] * 9) + "]")
    return (
        "format: careloop.forms/1\nforms:\n  - name: x\n    title: x\n    description: ["
        + ",\n      ".join(parts)
        + "]\n    fields: []\n"
    ).encode()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def upload(url: str, token: str, body: bytes) -> tuple[float, int, str, float]:
    """(seconds, status, start of the answer, the bystander's slowest /health in seconds)."""
    slowest = 0.0
    done = threading.Event()

    def bystander() -> None:
        nonlocal slowest
        with httpx.Client(base_url=url, timeout=300) as client:
            while not done.is_set():
                started = time.perf_counter()
                client.get("/health")
                slowest = max(slowest, time.perf_counter() - started)
                time.sleep(0.05)

    watcher = threading.Thread(target=bystander)
    watcher.start()
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600
        ) as client:
            started = time.perf_counter()
            answer = client.post("/api/forms", params={"format": "yaml"}, content=body)
            took = time.perf_counter() - started
    finally:
        time.sleep(0.2)
        done.set()
        watcher.join()
    return took, answer.status_code, answer.text[:100], slowest


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "data")
        initialise(settings, OPERATOR, admin_email="admin@bench.invalid", admin_password="x" * 16)
        registry = open_registry(settings)
        token = identity.create_token(
            registry, OPERATOR, name="bench", for_user="admin@bench.invalid"
        ).token
        registry.close()
        server = start_server(settings.data_dir)
        try:
            pid = server.process.pid
            httpx.get(f"{server.url}/health")
            for label, body in (
                ("example dictionary (baseline)", example_file("yaml")),
                (f"billion laughs ({len(billion_laughs())} bytes)", billion_laughs()),
            ):
                before = peak_rss_mb(pid)
                took, status, text, slowest = upload(server.url, token, body)
                print(f"{label}:")
                print(f"  answered {status} in {took:.2f} s: {text}")
                print(f"  server peak memory {before:.0f} MB -> {peak_rss_mb(pid):.0f} MB")
                print(f"  slowest /health meanwhile: {slowest * 1000:.0f} ms")
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
