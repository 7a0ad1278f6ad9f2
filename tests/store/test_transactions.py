"""Reads never take the registry's write lock; writes do; every identifiable read is audited.

SQLite has one write lock per database. A unit of work of an action that
only reads (``patient.read``, ``record.read`` …) runs in a read-only
transaction, so another process can write while it reads; its audit entry
is written in a short writing transaction right after the read, before the
data is handed back. The lock is probed with a second, raw sqlite3
connection, as another careloop process would hold it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from careloop.core.errors import NotFound
from careloop.store import database
from careloop.store.models import AuditEntry, Patient, Site
from careloop.trust import patients
from careloop.trust.audit import verify_chain
from careloop.trust.installation import open_registry
from careloop.trust.policy import ACTIONS, reads_only
from careloop.trust.work import unit_of_work
from tests.foundation import Installation, build_installation, make_settings


@pytest.fixture
def inst(tmp_path: Path, database_url: str | None) -> Iterator[Installation]:
    built = build_installation(make_settings(tmp_path, database_url), with_users=False)
    patients.register_patient(
        built.registry,
        built.operator,
        site="A",
        local_id="MRN-1",
        given_name="Ada",
        family_name="Okafor",
        birth_date="1971-05-02",
        sex="female",
        consent_state="improvement_and_research",
    )
    try:
        yield built
    finally:
        built.registry.close()


def _sqlite_path(inst: Installation) -> Path:
    return inst.settings.data_dir / "registry.sqlite3"


def _write_from_elsewhere(path: Path, *, wait_seconds: float) -> None:
    """Take the write lock and commit a change, as another process would."""
    other = sqlite3.connect(path, timeout=wait_seconds, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE site SET name = name WHERE code = 'A'")
        other.execute("COMMIT")
    finally:
        other.close()


def _audit_entries(inst: Installation) -> list[AuditEntry]:
    with inst.registry.read_transaction() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def _patient_id(inst: Installation) -> int:
    with inst.registry.read_transaction() as session:
        pid = session.scalar(select(Patient.id).execution_options(careloop_unscoped=True).limit(1))
    assert pid is not None
    return pid


def test_every_action_that_only_reads_is_marked_and_the_writing_ones_are_not() -> None:
    assert {name for name in ACTIONS if reads_only(name)} == {
        "site.read",
        "user.read",
        "patient.read",
        "patient.read_pseudonymised",
        "record.read",
        "record.export",
        "audit.read",
        "warehouse.query",
        "measure.read",
        "knowledge.read",
        "community.read",
    }
    with pytest.raises(KeyError):
        reads_only("patient.steal")


def test_another_process_writes_while_a_read_is_in_progress(inst: Installation) -> None:
    if inst.registry.dialect != "sqlite":
        pytest.skip("the write lock is SQLite's")
    with unit_of_work(inst.registry, inst.operator, "patient.read") as work:
        assert work.session.scalars(select(Patient)).all()
        started = time.monotonic()
        # Before reads were read-only this waited for the lock and failed: database is locked.
        _write_from_elsewhere(_sqlite_path(inst), wait_seconds=0.5)
        assert time.monotonic() - started < 0.5


def test_a_writing_unit_of_work_holds_the_write_lock_from_its_start(inst: Installation) -> None:
    if inst.registry.dialect != "sqlite":
        pytest.skip("the write lock is SQLite's")
    with unit_of_work(inst.registry, inst.operator, "site.manage") as work:
        work.session.scalars(select(Site)).all()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _write_from_elsewhere(_sqlite_path(inst), wait_seconds=0.2)


def test_a_read_only_unit_of_work_refuses_to_write(inst: Installation) -> None:
    with (
        pytest.raises(RuntimeError, match="read-only transaction tried to write"),
        unit_of_work(inst.registry, inst.operator, "patient.read") as work,
    ):
        site = work.session.scalars(select(Site)).first()
        assert site is not None
        site.name = "Renamed while reading"
        work.session.flush()
    # Past the ORM too: the database itself refuses (query_only / READ ONLY).
    with (
        pytest.raises(DBAPIError, match=r"read-?only"),
        unit_of_work(inst.registry, inst.operator, "patient.read") as work,
    ):
        work.session.execute(text("UPDATE site SET name = 'x'"))
    with inst.registry.read_transaction() as session:
        assert "x" not in session.scalars(select(Site.name)).all()


def test_a_read_is_audited_as_soon_as_it_is_done(inst: Installation) -> None:
    before = len(_audit_entries(inst))
    pid = _patient_id(inst)
    view = patients.get_patient(inst.registry, inst.operator, pid)
    assert view.family_name == "Okafor"
    entries = _audit_entries(inst)
    assert len(entries) == before + 1
    assert (entries[-1].action, entries[-1].category, entries[-1].patient_id) == (
        "read",
        "demographics",
        pid,
    )
    with inst.registry.read_transaction() as session:
        assert verify_chain(session).intact


def test_a_read_whose_audit_entry_cannot_be_written_returns_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = build_installation(make_settings(tmp_path, None), with_users=False)
    pid = patients.register_patient(
        built.registry,
        built.operator,
        site="A",
        local_id="MRN-1",
        given_name="Ada",
        family_name="Okafor",
        birth_date="1971-05-02",
        sex="female",
        consent_state="improvement_and_research",
    ).id
    built.registry.close()
    # A registry that gives up on the write lock after 0.2 s instead of 30 s.
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    registry = open_registry(built.settings)
    before = len(_audit_entries(Installation(built.settings, registry, built.operator)))
    other = sqlite3.connect(_sqlite_path(built), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock throughout
        with pytest.raises(OperationalError, match="locked"):
            patients.get_patient(registry, built.operator, pid)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert len(_audit_entries(Installation(built.settings, registry, built.operator))) == before
    registry.close()


def test_a_failed_read_records_its_attempt_and_nothing_it_had_kept_aside(
    inst: Installation,
) -> None:
    before = len(_audit_entries(inst))
    with pytest.raises(NotFound), unit_of_work(inst.registry, inst.operator, "record.read") as work:
        work.expect("read", "clinical", details={"response_id": 42})
        work.audit("read", "clinical", details={"kept": "aside"})
        raise NotFound("There is no response 42 that you can see.")
    entries = _audit_entries(inst)[before:]
    assert [(e.action, e.outcome) for e in entries] == [("read", "not_found")]
    assert json.loads(entries[0].details or "{}") == {"response_id": 42}


def test_reads_on_postgresql_run_in_read_only_transactions(inst: Installation) -> None:
    if inst.registry.dialect != "postgresql":
        pytest.skip("PostgreSQL's READ ONLY transactions")
    with unit_of_work(inst.registry, inst.operator, "patient.read") as work:
        assert work.session.scalar(text("SHOW transaction_read_only")) == "on"
    with unit_of_work(inst.registry, inst.operator, "patient.update") as work:
        assert work.session.scalar(text("SHOW transaction_read_only")) == "off"


def test_writers_of_one_process_take_turns_in_the_order_they_came(inst: Installation) -> None:
    if inst.registry.dialect != "sqlite":
        pytest.skip("SQLite's one write lock")
    served: list[int] = []
    finished: list[float] = []

    def write(n: int) -> None:
        with inst.registry.transaction() as session:
            session.execute(text("UPDATE site SET name = name WHERE code = 'A'"))
            served.append(n)
        finished.append(time.monotonic())

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    with inst.registry.transaction() as session:
        session.execute(text("UPDATE site SET name = name WHERE code = 'B'"))
        for thread in threads:
            thread.start()
            time.sleep(0.03)  # each arrives after the one before is waiting
        released = time.monotonic()
    for thread in threads:
        thread.join()
    # First come, first served; and each woken as soon as the one before commits, where
    # SQLite's own retry sleeps up to 100 ms between tries (and serves in any order).
    assert served == list(range(8))
    assert max(finished) - released < 0.25


def test_a_writer_waiting_longer_than_the_busy_timeout_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    registry = database.connect_registry(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    try:
        with registry.transaction() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
        failed: list[BaseException] = []

        def write() -> None:
            try:
                with registry.transaction() as session:
                    session.execute(text("INSERT INTO t VALUES (2)"))
            except Exception as exc:
                failed.append(exc)

        with registry.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            waiter = threading.Thread(target=write)
            waiter.start()
            waiter.join()
        assert len(failed) == 1 and "locked" in str(failed[0])
        # The queue is free again: the next writer goes straight through.
        with registry.transaction() as session:
            session.execute(text("INSERT INTO t VALUES (3)"))
            assert session.scalar(text("SELECT count(*) FROM t")) == 2
    finally:
        registry.close()


def test_checking_a_token_and_the_health_check_take_no_write_lock(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    if inst.registry.dialect != "sqlite":
        pytest.skip("SQLite's one write lock")
    from careloop.trust import identity
    from careloop.trust.principal import RequestContext
    from careloop.trust.status import registry_reachable

    identity.add_user(
        inst.registry,
        inst.operator,
        email="script@example.org",
        display_name="Script",
        password=None,
        roles=[("clinician", "A")],
    )
    token = identity.create_token(
        inst.registry, inst.operator, name="nightly", for_user="script@example.org"
    ).token
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    registry = database.connect_registry(inst.settings.registry_url)
    other = sqlite3.connect(_sqlite_path(inst), isolation_level=None)
    try:
        first = identity.resolve_token(registry, token, RequestContext())
        with registry.read_transaction() as session:
            used = session.scalar(text("SELECT last_used_at FROM api_token"))
        assert used is not None  # its first use is recorded
        other.execute("BEGIN IMMEDIATE")  # another process writes for a while
        started = time.monotonic()
        # Before, each check took the write lock: "database is locked" after the busy timeout.
        again = identity.resolve_token(registry, token, RequestContext())
        assert registry_reachable(registry)
        assert time.monotonic() - started < 0.2
        assert again.email == first.email == "script@example.org"
        other.execute("COMMIT")
    finally:
        other.close()
        registry.close()


def test_checking_a_web_session_takes_no_write_lock_once_its_last_visit_is_recorded(
    inst: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    if inst.registry.dialect != "sqlite":
        pytest.skip("SQLite's one write lock")
    from careloop.trust import identity
    from careloop.trust.principal import RequestContext
    from tests.foundation import PASSWORD

    identity.add_user(
        inst.registry,
        inst.operator,
        email="browser@example.org",
        display_name="Browser",
        password=PASSWORD,
        roles=[("clinician", "A")],
    )
    token = identity.login(
        inst.registry,
        inst.settings,
        email="browser@example.org",
        password=PASSWORD,
        context=RequestContext(),
    ).session_token
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    registry = database.connect_registry(inst.settings.registry_url)
    other = sqlite3.connect(_sqlite_path(inst), isolation_level=None)
    try:
        first = identity.resolve_session(registry, inst.settings, token, RequestContext())
        other.execute("BEGIN IMMEDIATE")  # another process writes for a while
        # Before, every page request wrote the session's last-seen time: "database is locked".
        again = identity.resolve_session(registry, inst.settings, token, RequestContext())
        assert again.principal.email == first.principal.email == "browser@example.org"
        other.execute("COMMIT")
    finally:
        other.close()
        registry.close()
