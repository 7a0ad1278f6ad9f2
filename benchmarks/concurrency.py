"""Benchmark: reads and writes at once against a real `careloop serve`.

The registry is the demo's small synthetic IBD network (552 patients,
~13,000 visit and PROM responses, 140 patients at site S001), loaded through
the capture layer; the server is `careloop serve` (uvicorn) on loopback, in
its own process, as an operator runs it. Measured in the same run:

1. One ``GET /fhir/QuestionnaireResponse/{id}`` at a time (site S001's
   clinician): seconds per read.
2. A bystander (site S002's clinician reading one of their patients,
   ``GET /api/patients/{id}``) alone, then while 8 clients read
   QuestionnaireResponses at once: p50/p95/max and how many requests failed.
3. Writes (``POST /api/forms/ibd_visit/responses``, a draft each, on its own
   patient and date): one writer making 50 writes one after another (the
   baseline), then 50 writers at once, 4 writes each: p50/p95 per write and
   the ratio of the concurrent p50 to the single writer's.

Wall-clock times (what a user waits for). The machine is shared, so compare
ratios within one run rather than seconds across runs.

    .venv/bin/python benchmarks/concurrency.py
    .venv/bin/python benchmarks/concurrency.py --database-url postgresql+psycopg://…/db
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from careloop.core.settings import load_settings
from careloop.demo.load import load_network
from careloop.demo.network import generate_network
from careloop.demo.seed import init_demo_installation
from careloop.demo.server import start_server, stop_server
from careloop.store.capture_models import Response
from careloop.store.database import Registry
from careloop.store.models import Patient, Site
from careloop.store.scoping import Scope, set_scope
from careloop.trust import identity
from careloop.trust.installation import open_registry
from careloop.trust.policy import Role
from careloop.trust.principal import Principal

OPERATOR = Principal.operator("bench")
PASSWORD = "correct horse battery staple"
WRITERS = 50
WRITES_EACH = 4
READERS = 8
FIRST_DAY = date(2025, 1, 1)  # after the demo's visits (2019-2024): no clashes


@dataclass
class Setup:
    reader: str
    bystander: str
    writers: list[str]
    s001_responses: list[int]
    s001_patients: list[int]
    s002_patient: int


def _user(registry: Registry, email: str, role: Role, site: str) -> str:
    identity.add_user(
        registry,
        OPERATOR,
        email=email,
        display_name=email,
        password=PASSWORD,
        roles=[(role, site)],
    )
    return identity.create_token(registry, OPERATOR, name="bench", for_user=email).token


def prepare(data_dir: Path, database_url: str | None) -> Setup:
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    init_demo_installation(settings, OPERATOR)
    registry = open_registry(settings)
    try:
        load_network(registry, OPERATOR, generate_network("small", 4))
        reader = _user(registry, "reader@bench.invalid", "clinician", "S001")
        bystander = _user(registry, "bystander@bench.invalid", "clinician", "S002")
        writers = [
            _user(registry, f"writer{i}@bench.invalid", "data_entry", "S001")
            for i in range(WRITERS)
        ]
        with registry.transaction() as session:
            set_scope(session, Scope.everything())
            s001 = session.scalar(select(Site.id).where(Site.code == "S001"))
            s002 = session.scalar(select(Site.id).where(Site.code == "S002"))
            patients = list(
                session.scalars(
                    select(Patient.id).where(Patient.site_id == s001).order_by(Patient.id)
                )
            )
            responses = list(
                session.scalars(
                    select(Response.id)
                    .where(Response.site_id == s001)
                    .order_by(Response.id)
                    .limit(40)
                )
            )
            other = session.scalar(select(Patient.id).where(Patient.site_id == s002).limit(1))
        assert other is not None
        return Setup(reader, bystander, writers, responses, patients, other)
    finally:
        registry.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> str:
    if not values:
        return "no requests"
    return (
        f"p50 {statistics.median(values) * 1000:8.0f} ms   p95 {_pct(values, 0.95) * 1000:8.0f} ms"
        f"   max {max(values) * 1000:8.0f} ms   (n={len(values)})"
    )


class Client:
    """Timed requests with one token; failures (>= 500, timeouts) are counted."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

    def timed(self, method: str, path: str, ok: tuple[int, ...], **kwargs: object) -> float | None:
        start = time.perf_counter()
        try:
            answer = self.http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError:
            return None
        took = time.perf_counter() - start
        return took if answer.status_code in ok else None


def run_reads(url: str, setup: Setup) -> None:
    reader = Client(url, setup.reader)
    bystander = Client(url, setup.bystander)

    def read_qr(client: Client, i: int) -> float | None:
        rid = setup.s001_responses[i % len(setup.s001_responses)]
        return client.timed("GET", f"/fhir/QuestionnaireResponse/response-{rid}", (200,))

    def look(client: Client) -> float | None:
        return client.timed("GET", f"/api/patients/{setup.s002_patient}", (200,))

    read_qr(reader, 0)  # warm the form cache
    singles = [read_qr(reader, i) for i in range(1, 6)]
    print(f"1. one QuestionnaireResponse read at a time:          {_summary(_ok(singles))}")

    alone = [look(bystander) for _ in range(20)]
    print(f"2. bystander alone:                                   {_summary(_ok(alone))}")
    done = threading.Event()
    during: list[float | None] = []

    def bystanding() -> None:
        while not done.is_set():
            during.append(look(bystander))
            time.sleep(0.05)

    watcher = threading.Thread(target=bystanding)
    watcher.start()
    readers = [Client(url, setup.reader) for _ in range(READERS)]
    with ThreadPoolExecutor(READERS) as pool:
        reads = list(pool.map(lambda i: read_qr(readers[i % READERS], i + 7), range(READERS * 2)))
    done.set()
    watcher.join()
    print(
        f"   bystander during {READERS} concurrent QR reads:       {_summary(_ok(during))}"
        f"   failed: {during.count(None)}"
    )
    print(
        f"   the concurrent QR reads themselves:               {_summary(_ok(reads))}"
        f"   failed: {reads.count(None)}"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_writes(url: str, setup: Setup, server_pid: int) -> None:
    counter = iter(range(1_000_000))
    lock = threading.Lock()

    def write(client: Client, patient: int) -> float | None:
        with lock:
            n = next(counter)
        day = FIRST_DAY + timedelta(days=n % 300)
        return client.timed(
            "POST",
            "/api/forms/ibd_visit/responses",
            (201,),
            json={"patient_id": patient, "event_date": day.isoformat(), "status": "draft"},
        )

    single = Client(url, setup.writers[0])
    write(single, setup.s001_patients[0])  # warm up
    cpu = cpu_seconds(server_pid)
    one = [write(single, setup.s001_patients[0]) for _ in range(50)]
    cpu_one = (cpu_seconds(server_pid) - cpu) / len(one)
    print(f"3. one writer, 50 writes in a row:                    {_summary(_ok(one))}")
    clients = [Client(url, token) for token in setup.writers]

    def writer(i: int) -> list[float | None]:
        return [write(clients[i], setup.s001_patients[i + 1]) for _ in range(WRITES_EACH)]

    start, cpu = time.perf_counter(), cpu_seconds(server_pid)
    with ThreadPoolExecutor(WRITERS) as pool:
        many = [t for batch in pool.map(writer, range(WRITERS)) for t in batch]
    wall = time.perf_counter() - start
    cpu_many = (cpu_seconds(server_pid) - cpu) / len(many)
    print(
        f"   {WRITERS} writers at once, {WRITES_EACH} writes each:           {_summary(_ok(many))}"
        f"   failed: {many.count(None)}   ({len(many) / wall:.0f} writes/s)"
    )
    print(
        f"   ratio of p50 per write, {WRITERS} writers / 1 writer:    "
        f"{statistics.median(_ok(many)) / statistics.median(_ok(one)):.1f}"
    )
    print(
        f"   server CPU per write: {cpu_one * 1000:.1f} ms alone, {cpu_many * 1000:.1f} ms with "
        f"{WRITERS} writers; the server was busy {cpu_many * len(many) / wall:.0%} of the time"
    )


def _ok(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--only", choices=["reads", "writes"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        setup = prepare(data_dir, args.database_url)
        print(f"registry ready in {time.perf_counter() - started:.0f} s")
        env = {"CARELOOP_DATABASE_URL": args.database_url} if args.database_url else {}
        server = start_server(data_dir, env=env, timeout=120)
        try:
            if args.only != "writes":
                run_reads(server.url, setup)
            if args.only != "reads":
                run_writes(server.url, setup, server.process.pid)
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
