"""CDS Hooks service latency under load, against /health in the same run.

Run: ``.venv/bin/python benchmarks/cds.py [--rate 50] [--seconds 20] [--clients 16]``

Builds a throw-away installation (SQLite registry), imports, approves and
activates the example knowledge object (``ibd-steroid-review``, live, with
card variants by clinician), trusts a CDS client with an ES384 key, and
starts ``careloop serve`` (uvicorn) on loopback. Then an open-loop load
generator sends requests at a fixed rate from a pool of concurrent clients:
first ``GET /health`` (the baseline: the same server, no work), then
``POST /cds-services/ibd-steroid-review`` with full prefetch and a freshly
signed JWT per request (tokens are minted before the timed phase so the
client's signing does not compete with the server for the 2 cores). Every
CDS call is verified (signature, aud, exp, jti stored against replay),
evaluated, its variant allocated and its invocation and card stored.

Prints p50/p95/p99 of each phase and their ratio. Latency is measured from
the moment a request is sent to its response.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from careloop.content.ibd import PACKAGE as IBD
from careloop.core.settings import load_settings
from careloop.demo.server import start_server, stop_server
from careloop.knowledge import activate, add_version, approve, load_package, submit
from careloop.practice import trust_client
from careloop.trust.installation import initialise, open_registry
from careloop.trust.principal import Principal

ISSUER = "https://ehr.benchmark.example/"
SERVICE = "ibd-steroid-review"


def _install(data_dir: Path, jwks: dict[str, object]) -> None:
    settings = load_settings(data_dir=data_dir)
    operator = Principal.operator("benchmark")
    initialise(settings, operator, admin_email="admin@example.org", admin_password=uuid.uuid4().hex)
    registry = open_registry(settings)
    package = load_package(IBD.knowledge_object("ibd_steroid_review"))
    ref = f"{package.identifier}@{package.version}"
    add_version(registry, operator, package, reason="benchmark")
    submit(registry, operator, ref, reason="benchmark")
    approve(registry, operator, ref, reason="benchmark")
    activate(registry, operator, ref, reason="benchmark", mode="live")
    jwks_file = data_dir / "client-jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    trust_client(registry, operator, issuer=ISSUER, jwks_file=jwks_file)
    registry.close()


def _prefetch() -> dict[str, object]:
    case = load_package(IBD.knowledge_object("ibd_steroid_review")).tests[0]
    prefetch: dict[str, object] = json.loads(json.dumps(case["prefetch"]))
    today = time.strftime("%Y-%m-%d")
    for entry in prefetch["medications"]["entry"]:  # type: ignore[index]
        entry["resource"]["authoredOn"] = today
    return prefetch


def _load(
    send: list[tuple[str, str, dict[str, object] | None, dict[str, str]]],
    *,
    rate: float,
    clients: int,
) -> tuple[list[float], int]:
    """Send the requests at ``rate`` per second (open loop); latencies in ms and failures."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    local = threading.local()

    def one(item: tuple[str, str, dict[str, object] | None, dict[str, str]]) -> None:
        nonlocal failures
        method, url, body, headers = item
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=10)
        started = time.perf_counter()
        try:
            response = client.request(method, url, json=body, headers=headers)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            if ok:
                latencies.append(elapsed)
            else:
                failures += 1

    with ThreadPoolExecutor(max_workers=clients) as pool:
        start = time.perf_counter()
        for i, item in enumerate(send):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, item)
    return latencies, failures


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the CDS phase")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    args = parser.parse_args()

    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "bench-1", "alg": "ES384", "use": "sig"})
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        _install(data_dir, {"keys": [jwk]})
        server = start_server(data_dir)
        url = server.url
        try:
            n = int(args.rate * args.seconds)
            health = [("GET", f"{url}/health", None, {})] * max(1, n // 2)
            aud = f"{url}/cds-services/{SERVICE}"
            prefetch = _prefetch()
            calls = []
            now = int(time.time())
            for i in range(n):
                token = jwt.encode(
                    {
                        "iss": ISSUER,
                        "aud": aud,
                        "iat": now,
                        "exp": now + 600,
                        "jti": str(uuid.uuid4()),
                    },
                    key,
                    algorithm="ES384",
                    headers={"kid": "bench-1", "typ": "JWT"},
                )
                body = {
                    "hookInstance": str(uuid.uuid4()),
                    "hook": "patient-view",
                    "context": {"userId": f"Practitioner/{i % 40}", "patientId": f"p{i}"},
                    "prefetch": prefetch,
                }
                calls.append(("POST", aud, body, {"Authorization": f"Bearer {token}"}))
            _load(health[:20], rate=args.rate, clients=args.clients)  # warm up
            base, base_fail = _load(health, rate=args.rate, clients=args.clients)
            cds, cds_fail = _load(calls, rate=args.rate, clients=args.clients)
        finally:
            stop_server(server)

    print(f"{args.rate:g} requests/s, {args.clients} client threads, uvicorn on loopback, SQLite")
    print(f"{'':28}{'n':>6}{'fail':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    rows = [
        ("GET /health (baseline)", base, base_fail),
        ("POST /cds-services (JWT)", cds, cds_fail),
    ]
    for label, values, failed in rows:
        print(
            f"{label:28}{len(values):>6}{failed:>6}{_pct(values, 50):>9.1f}"
            f"{_pct(values, 95):>9.1f}{_pct(values, 99):>9.1f}"
        )
    ratio = _pct(cds, 95) / _pct(base, 95)
    verdict = "meets" if _pct(cds, 95) <= 50 else "misses"
    print(f"CDS p95 / health p95 = {ratio:.1f}x; CDS p95 {verdict} the 50 ms target.")


if __name__ == "__main__":
    main()
