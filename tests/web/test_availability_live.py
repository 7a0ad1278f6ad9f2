"""No one request stalls a real server: reads beside writes, hostile bodies, huge ids.

Each test drives ``careloop serve`` (uvicorn) on loopback in its own process
with real HTTP clients in threads, on SQLite and on PostgreSQL:

- reads never take the registry's write lock, so a long read elsewhere (an
  export in another process) does not hold up writes through the API, and
  many readers and writers at once all succeed, each read audited;
- a 423-byte "billion laughs" YAML dictionary is refused at once, without
  the server's memory growing, while it keeps answering others;
- request bodies over ``CARELOOP_MAX_REQUEST_BODY_MB`` get 413, declared or not.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from careloop.capture.entry import create_response
from careloop.capture.forms_store import import_forms
from careloop.store.models import AuditEntry, Patient
from careloop.trust.work import unit_of_work
from tests.core.test_limits import billion_laughs_in_a_form
from tests.foundation import Installation, build_installation, make_settings
from tests.live import RunningServer, start_server, stop_server

FORMS = (
    Path(__file__).resolve().parents[1] / "data" / "redcap" / "lifedata_redcap_DataDictionary.csv"
)


@dataclass
class Live:
    inst: Installation
    server: RunningServer
    form: str

    def client(self, who: str, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url,
            headers={"Authorization": f"Bearer {self.inst.tokens[who]}"},
            timeout=timeout,
        )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    database_url = None
    if request.param == "postgresql":
        server_url = request.getfixturevalue("postgres_server_url")
        import uuid

        from tests.conftest import _admin_execute, _with_database

        name = f"careloop_test_{uuid.uuid4().hex[:12]}"
        _admin_execute(server_url, f'CREATE DATABASE "{name}"')
        database_url = _with_database(server_url, name)
    inst = build_installation(
        make_settings(tmp_path_factory.mktemp("live"), database_url, max_request_body_mb=1)
    )
    (form,) = import_forms(inst.registry, inst.operator, FORMS)
    for n, patient_id in enumerate(inst.patient_ids["A"]):
        for visit in range(3):
            create_response(
                inst.registry,
                inst.operator,
                form.name,
                patient_id=patient_id,
                event_date=(date(2021, 3, 1) + timedelta(days=30 * visit + n)).isoformat(),
                values={
                    "timeoffact": "2021-03-01 10:00:00",
                    "typeoffact": "2",
                    "weightvalue": "70",
                },
                status="complete",
            )
    env = {"CARELOOP_MAX_REQUEST_BODY_MB": "1"}
    if database_url is not None:
        env["CARELOOP_DATABASE_URL"] = database_url
    server = start_server(inst.settings.data_dir, env=env)
    try:
        yield Live(inst, server, form.name)
    finally:
        stop_server(server)
        inst.registry.close()
        if database_url is not None:
            from tests.conftest import _admin_execute

            _admin_execute(
                request.getfixturevalue("postgres_server_url"),
                f'DROP DATABASE IF EXISTS "{database_url.rpartition("/")[2]}" WITH (FORCE)',
            )


def _new_patient(client: httpx.Client, local_id: str) -> httpx.Response:
    return client.post(
        "/api/patients",
        json={"site": "A", "local_id": local_id, "consent_state": "improvement_and_research"},
    )


def _audit_count(inst: Installation, **where: Any) -> int:
    with inst.registry.read_transaction() as session:
        query = select(func.count()).select_from(AuditEntry)
        for column, value in where.items():
            query = query.where(getattr(AuditEntry, column) == value)
        return int(session.scalar(query) or 0)


def test_a_long_read_in_another_process_does_not_hold_up_writes_through_the_api(
    live: Live,
) -> None:
    inst = live.inst
    # The test process reads, as an export or a report running beside the server would.
    with (
        live.client("clinician@A", timeout=10) as client,
        unit_of_work(inst.registry, inst.operator, "record.export") as work,
    ):
        assert work.session.scalars(select(Patient)).all()
        started = time.monotonic()
        # Before reads were read-only, each of these waited for the lock and timed out.
        answers = [_new_patient(client, f"WHILE-READING-{i}") for i in range(5)]
        took = time.monotonic() - started
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    assert took < 5


def test_a_request_waiting_for_the_write_lock_does_not_stall_the_server(live: Live) -> None:
    inst = live.inst
    if inst.registry.dialect != "sqlite":
        pytest.skip("SQLite's one write lock")
    path = inst.settings.registry_url.removeprefix("sqlite:///")
    with live.client("clinician@A") as reader, live.client("data_entry@A") as writer:
        assert reader.get("/api/forms").status_code == 200  # the token's last use: now
        assert writer.get("/api/forms").status_code == 200
        # Another process (an import, a migration) holds the write lock for a while.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(_new_patient, writer, "AFTER-THE-LOCK")
                time.sleep(0.3)  # the write is waiting for the lock now
                started = time.monotonic()
                health = httpx.get(f"{live.server.url}/health", timeout=10)
                forms = reader.get("/api/forms", timeout=10)
                took = time.monotonic() - started
                assert not waiting.done()
                other.execute("COMMIT")
                written = waiting.result(timeout=30)
        finally:
            other.close()
    # Before, checking each request's token took the write lock inside the event loop:
    # every request, /health included, waited behind the write.
    assert (health.status_code, forms.status_code) == (200, 200)
    assert took < 1.5
    assert written.status_code == 201, written.text


def test_many_readers_and_writers_at_once_all_succeed_and_every_read_is_audited(
    live: Live,
) -> None:
    inst = live.inst
    with live.client("clinician@A") as probe:
        responses = probe.get("/fhir/QuestionnaireResponse").json()
        patients = probe.get("/fhir/Patient").json()
    response_ids = [e["resource"]["id"] for e in responses["entry"]]
    pseudonyms = [e["resource"]["id"] for e in patients["entry"]]
    email = inst.emails["clinician@A"]
    reads_before = _audit_count(inst, user_email=email, action="read")
    failures: list[str] = []
    lock = threading.Lock()

    def read(i: int) -> int:
        with live.client("clinician@A") as client:
            for j in range(5):
                path = (
                    f"/fhir/QuestionnaireResponse/{response_ids[(i + j) % len(response_ids)]}"
                    if j % 2 == 0
                    else f"/fhir/Patient/{pseudonyms[(i + j) % len(pseudonyms)]}"
                )
                answer = client.get(path)
                if answer.status_code != 200:
                    with lock:
                        failures.append(f"{path}: {answer.status_code} {answer.text[:200]}")
        return 5

    def write(i: int) -> int:
        with live.client("data_entry@A") as client:
            for j in range(5):
                answer = _new_patient(client, f"CONCURRENT-{i}-{j}")
                if answer.status_code != 201:
                    with lock:
                        failures.append(f"write {i}/{j}: {answer.status_code} {answer.text[:200]}")
        return 5

    with ThreadPoolExecutor(16) as pool:
        reads = pool.map(read, range(8))
        writes = pool.map(write, range(8))
        total_reads, total_writes = sum(reads), sum(writes)
    assert failures == []
    assert total_writes == 40
    # Every identifiable read wrote its audit entry (one each), none lost to concurrency.
    assert _audit_count(inst, user_email=email, action="read") - reads_before == total_reads
    with inst.registry.read_transaction() as session:
        created = session.scalar(
            select(func.count())
            .select_from(Patient)
            .where(Patient.local_id.like("CONCURRENT-%"))
            .execution_options(careloop_unscoped=True)
        )
    assert created == 40


def test_a_billion_laughs_is_refused_at_once_and_the_server_keeps_serving(live: Live) -> None:
    pid = live.server.process.pid
    body = billion_laughs_in_a_form().encode()
    assert len(body) < 430
    peak_before = _peak_rss_mb(pid)
    answered: list[float] = []
    done = threading.Event()

    def bystander() -> None:
        with httpx.Client(base_url=live.server.url, timeout=30) as client:
            while not done.is_set():
                started = time.monotonic()
                client.get("/health")
                answered.append(time.monotonic() - started)
                time.sleep(0.05)

    watcher = threading.Thread(target=bystander)
    watcher.start()
    try:
        with live.client("admin", timeout=30) as admin:
            started = time.monotonic()
            answer = admin.post("/api/forms", params={"format": "yaml"}, content=body)
            took = time.monotonic() - started
    finally:
        time.sleep(0.3)
        done.set()
        watcher.join()
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert "aliases" in error["message"]
    assert error["details"][0]["location"].startswith("upload.yaml:")
    assert took < 2
    assert max(answered) < 2
    assert _peak_rss_mb(pid) - peak_before < 50
    # Refused like other bad dictionaries: the attempt is in the audit trail.
    assert _audit_count(live.inst, action="import", outcome="failure") >= 1


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_request_body_over_the_cap_is_refused_whether_or_not_it_declares_its_size(
    live: Live,
) -> None:
    big = b"x" * (1024 * 1024 + 1)
    with live.client("admin") as admin:
        declared = admin.post("/api/forms", params={"format": "yaml"}, content=big)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "input_too_large"
        assert "CARELOOP_MAX_REQUEST_BODY_MB" in declared.json()["error"]["message"]
        assert declared.headers["x-content-type-options"] == "nosniff"

        def chunks() -> Iterator[bytes]:
            for _ in range(20):
                yield b"y" * 65536

        streamed = admin.post("/api/forms", params={"format": "yaml"}, content=chunks())
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["error"]["code"] == "input_too_large"
        # Just under the cap is read (and refused for what it is, not its size).
        small = admin.post("/api/forms", params={"format": "yaml"}, content=b"x" * 1000)
        assert small.status_code == 422


def test_deeply_nested_uploads_are_located_refusals_not_server_errors(live: Live) -> None:
    with live.client("admin") as admin:
        deep_yaml = "forms:\n" + "".join("  " * (i + 1) + "- \n" for i in range(300))
        answer = admin.post("/api/forms", params={"format": "yaml"}, content=deep_yaml)
        assert answer.status_code == 422, answer.text
        assert "nested more than" in answer.json()["error"]["message"]
        deep_json = '{"resourceType": "Questionnaire", "item": ' + "[" * 5000 + "]" * 5000 + "}"
        answer = admin.post("/api/forms", params={"format": "questionnaire"}, content=deep_json)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"][0]["location"].startswith("upload.questionnaire:")
    with live.client("clinician@A") as clinician:
        deep = json.dumps({"values": {}}).replace("{}", "[" * 3000 + "]" * 3000)
        check = clinician.post(f"/entry/check/{live.form}", content=deep)
        assert check.status_code == 422, check.text
