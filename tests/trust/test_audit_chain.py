"""The audit trail is append-only and any tampering is found at the right entry."""

from __future__ import annotations

import random
import sqlite3
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from careloop.cli.main import app
from careloop.store.database import Registry
from careloop.trust import audit
from careloop.trust.audit import AuditEvent, entry_digest, verify_chain
from careloop.trust.installation import open_registry
from tests.foundation import make_settings
from tests.trust import tampering


def _fill(registry: Registry, n: int) -> None:
    with registry.transaction() as session:
        for i in range(n):
            audit.append(
                session,
                AuditEvent(
                    action=random.choice(["read", "update", "create", "login"]),
                    category="demographics",
                    user_id=i % 7,
                    user_email=f"user{i % 7}@example.org",
                    patient_id=i,
                    reason="typo" if i % 3 == 0 else None,
                    details={"i": i},
                ),
            )


def _verify(registry: Registry) -> audit.ChainVerification:
    with registry.transaction() as session:
        return verify_chain(session)


def _raw(registry: Registry, sql: str, **params: object) -> None:
    """Change the table behind careloop's back, as an attacker with database access would."""
    with registry.engine.begin() as conn, tampering.triggers_off(conn):
        conn.execute(text(sql), params)


def _reset(registry: Registry) -> None:
    """Back to the trail a new installation has: its genesis entry alone."""
    with registry.engine.begin() as conn, tampering.triggers_off(conn):
        conn.execute(text("DELETE FROM audit_entry WHERE seq > 1"))
        conn.execute(
            text(
                "UPDATE audit_head SET seq = 1, seal = NULL, entry_hash = "
                "(SELECT entry_hash FROM audit_entry WHERE seq = 1)"
            )
        )


@pytest.fixture
def registry(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url)
    reg = open_registry(settings)
    yield reg
    reg.close()


def test_an_untouched_chain_verifies(registry):
    _fill(registry, 30)
    result = _verify(registry)
    # 30 entries after the genesis entry the installation wrote when it was set up
    assert result.intact and result.entries_checked == 31 and result.head_seq == 31
    assert result.seal_checked and result.problems == ()


def test_the_database_refuses_to_update_or_delete_audit_entries(registry):
    _fill(registry, 3)
    for sql in (
        "UPDATE audit_entry SET action = 'x' WHERE seq = 2",
        "DELETE FROM audit_entry WHERE seq = 2",
    ):
        with pytest.raises(DBAPIError, match="append-only"), registry.engine.begin() as conn:
            conn.execute(text(sql))
    assert _verify(registry).intact


def _tamper(registry: Registry, kind: str, seq: int, n: int, rng: random.Random) -> int:
    """Tamper with entry ``seq`` in one of four ways; return the entry verify must name."""
    if kind == "change_byte":
        column = rng.choice(["action", "user_email", "occurred_at", "details", "category"])
        with registry.engine.connect() as conn:
            value = conn.execute(
                text(f"SELECT {column} FROM audit_entry WHERE seq = :s"), {"s": seq}
            ).scalar()
        chars = list(value)
        i = rng.randrange(len(chars))
        chars[i] = "Z" if chars[i] != "Z" else "Y"
        _raw(
            registry,
            f"UPDATE audit_entry SET {column} = :v WHERE seq = :s",
            v="".join(chars),
            s=seq,
        )
        return seq
    if kind == "delete":
        _raw(registry, "DELETE FROM audit_entry WHERE seq = :s", s=seq)
        return seq
    if kind == "insert":
        # A forged entry slipped in before ``seq``: later entries are renumbered to make room,
        # and the forger even computes a correct hash for the entry itself.
        for later in range(n, seq - 1, -1):
            _raw(registry, "UPDATE audit_entry SET seq = :t WHERE seq = :s", t=later + 1, s=later)
        with registry.engine.connect() as conn:
            prev = (
                conn.execute(
                    text("SELECT entry_hash FROM audit_entry WHERE seq = :s"), {"s": seq - 1}
                ).scalar()
                or audit.GENESIS_HASH
            )
        values = {name: None for name in audit.HASHED_FIELDS}
        values.update(
            seq=seq,
            occurred_at="2020-01-01T00:00:00.000000Z",
            action="read",
            category="demographics",
            outcome="success",
            prev_hash=prev,
        )
        _raw(
            registry,
            "INSERT INTO audit_entry (seq, occurred_at, action, category, outcome, prev_hash, entry_hash) "
            "VALUES (:seq, :occurred_at, :action, :category, :outcome, :prev_hash, :h)",
            h=entry_digest(values),
            **{
                k: values[k]
                for k in ("seq", "occurred_at", "action", "category", "outcome", "prev_hash")
            },
        )
        # The forged entry links correctly; the break shows at the entry after it.
        return seq + 1
    if kind == "swap":
        # Swap the contents of entries seq and seq+1 (each keeps its hash column).
        other = seq + 1
        cols = [c for c in audit.HASHED_FIELDS if c not in ("seq",)] + ["entry_hash"]
        with registry.engine.connect() as conn:
            a = conn.execute(
                text(f"SELECT {', '.join(cols)} FROM audit_entry WHERE seq = :s"), {"s": seq}
            ).one()
            b = conn.execute(
                text(f"SELECT {', '.join(cols)} FROM audit_entry WHERE seq = :s"), {"s": other}
            ).one()
        assignments = ", ".join(f"{c} = :{c}" for c in cols)
        _raw(
            registry,
            f"UPDATE audit_entry SET {assignments} WHERE seq = :s",
            s=seq,
            **dict(zip(cols, b, strict=True)),
        )
        _raw(
            registry,
            f"UPDATE audit_entry SET {assignments} WHERE seq = :s",
            s=other,
            **dict(zip(cols, a, strict=True)),
        )
        return seq
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["change_byte", "delete", "insert", "swap"])
def test_tampering_with_a_random_entry_is_found_at_that_entry(registry, kind):
    rng = random.Random(sum(map(ord, kind)))
    trials = 15 if registry.dialect == "sqlite" else 6
    for _trial in range(trials):
        _reset(registry)
        n = rng.randint(5, 25)
        _fill(registry, n)  # entries 2 to n + 1 after the genesis entry
        seq = rng.randint(2, n)
        expected = _tamper(registry, kind, seq, n + 1, rng)
        result = _verify(registry)
        assert not result.intact, (kind, seq)
        assert result.first_bad_seq == expected, (kind, seq, result)


def test_cutting_entries_from_the_end_is_found(registry):
    _fill(registry, 10)
    _raw(registry, "DELETE FROM audit_entry WHERE seq >= 8")
    result = _verify(registry)
    assert not result.intact and result.first_bad_seq == 8


def test_an_anchored_head_catches_a_rebuilt_chain(registry):
    _fill(registry, 5)
    with registry.transaction() as session:
        head = verify_chain(session)
    anchored = (head.head_seq, head.head_hash)
    with registry.transaction() as session:
        assert verify_chain(session, expect_head=anchored).intact
        assert not verify_chain(session, expect_head=(5, "f" * 64)).intact
        assert not verify_chain(session, expect_head=(9, anchored[1])).intact


def test_careloop_audit_verify_exits_non_zero_and_names_the_bad_entry(tmp_path):
    settings = make_settings(tmp_path, None)
    registry = open_registry(settings)
    _fill(registry, 8)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--data-dir", str(settings.data_dir)])
    assert ok.exit_code == 0, ok.output
    assert "intact: 9 entries" in ok.output
    _raw(registry, "UPDATE audit_entry SET user_email = 'someone.else@example.org' WHERE seq = 5")
    registry.close()
    bad = runner.invoke(app, ["audit", "verify", "--data-dir", str(settings.data_dir)])
    assert bad.exit_code == 1
    assert "BROKEN at entry 5" in bad.output


@pytest.mark.parametrize("writers", [50])
def test_fifty_concurrent_writers_lose_and_duplicate_nothing(tmp_path, database_url, writers):
    settings = make_settings(tmp_path, database_url)
    registry = open_registry(settings)
    per_writer = 4
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(w: int) -> None:
        try:
            start.wait()
            for i in range(per_writer):
                with registry.transaction() as session:
                    audit.append(
                        session,
                        AuditEvent(
                            action="read", category="demographics", user_id=w, details={"i": i}
                        ),
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    with registry.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT seq, user_id, details FROM audit_entry ORDER BY seq")
        ).all()
    assert [r.seq for r in rows] == list(range(1, writers * per_writer + 2))
    assert sorted((r.user_id, r.details) for r in rows[1:]) == sorted(
        (w, f'{{"i":{i}}}') for w in range(writers) for i in range(per_writer)
    )
    assert _verify(registry).intact
    registry.close()


def test_an_emptied_trail_never_verifies_as_intact(tmp_path):
    # Issue 14: every entry and the head deleted verified as "intact: 0 entries".
    settings = make_settings(tmp_path, None)
    registry = open_registry(settings)
    _fill(registry, 6)
    with registry.engine.begin() as conn, tampering.triggers_off(conn):
        conn.execute(text("DELETE FROM audit_entry"))
        conn.execute(text("DELETE FROM audit_head"))
    assert not _verify(registry).intact
    registry.close()
    bad = CliRunner().invoke(app, ["audit", "verify", "--data-dir", str(settings.data_dir)])
    assert bad.exit_code == 1
    assert "intact" not in bad.output
    said = " ".join(bad.output.split())
    assert (
        "BROKEN at entry 1: the trail is empty, but this installation started it at entry 1" in said
    )


def test_a_head_moved_back_outside_careloop_is_recorded_by_the_next_append(registry):
    # Cut the last entries and move the head back to match: the chain is consistent again
    # and careloop goes on appending; the head's seal shows it was moved, and the next
    # append writes an alarm instead of sealing the cut trail as if nothing happened.
    _fill(registry, 10)
    with registry.engine.begin() as conn, tampering.triggers_off(conn):
        conn.execute(text("DELETE FROM audit_entry WHERE seq > 7"))
        conn.execute(
            text(
                "UPDATE audit_head SET seq = 7, "
                "entry_hash = (SELECT entry_hash FROM audit_entry WHERE seq = 7)"
            )
        )
    _fill(registry, 2)
    result = _verify(registry)
    assert not result.intact
    assert result.first_bad_seq == 8
    assert "careloop found when writing this entry that the chain head's seal did not match" in (
        result.problem or ""
    )
    with registry.engine.connect() as conn:
        actions = list(
            conn.execute(text("SELECT action FROM audit_entry WHERE seq >= 8")).scalars()
        )
    assert len(actions) == 3 and actions[0] == "audit_alarm"


def test_a_registry_restored_from_a_backup_verifies_without_an_alarm(tmp_path):
    # A restored backup moves the head back too, but to a head careloop sealed itself.
    settings = make_settings(tmp_path, None)
    registry = open_registry(settings)
    _fill(registry, 5)
    backup = tmp_path / "backup.sqlite3"
    source = sqlite3.connect(settings.data_dir / "registry.sqlite3", isolation_level=None)
    source.execute(f"VACUUM INTO '{backup}'")
    source.close()
    _fill(registry, 5)
    registry.close()
    live = settings.data_dir / "registry.sqlite3"
    for suffix in ("-wal", "-shm"):
        live.with_name(live.name + suffix).unlink(missing_ok=True)
    live.write_bytes(backup.read_bytes())
    registry = open_registry(settings)
    _fill(registry, 2)
    result = _verify(registry)
    assert result.intact, result.problems
    assert result.entries_checked == 1 + 5 + 2
    registry.close()


def test_a_changed_secret_key_shows_in_the_trail(tmp_path):
    settings = make_settings(tmp_path, None)
    registry = open_registry(settings)
    _fill(registry, 3)
    registry.close()
    (settings.data_dir / "secret_key").unlink()  # a new key is generated on the next start
    registry = open_registry(settings)
    _fill(registry, 1)
    result = _verify(registry)
    assert not result.intact and result.first_bad_seq == 5
    assert "or the installation's secret key changed" in (result.problem or "")
    registry.close()


def test_careloop_audit_head_prints_an_anchor_only_for_an_intact_trail(tmp_path):
    settings = make_settings(tmp_path, None)
    registry = open_registry(settings)
    _fill(registry, 4)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "head", "--data-dir", str(settings.data_dir)])
    assert ok.exit_code == 0, ok.output
    anchor = ok.output.strip()
    seq, _, digest = anchor.partition(":")
    assert int(seq) >= 5 and len(digest) == 64
    checked = runner.invoke(
        app, ["audit", "verify", "--expect-head", anchor, "--data-dir", str(settings.data_dir)]
    )
    assert checked.exit_code == 0, checked.output
    assert "reaches the anchored head" in " ".join(checked.output.split())
    _raw(registry, "UPDATE audit_entry SET user_email = 'someone.else@example.org' WHERE seq = 3")
    registry.close()
    refused = runner.invoke(app, ["audit", "head", "--data-dir", str(settings.data_dir)])
    assert refused.exit_code == 1
    assert "Not printing a head" in " ".join(refused.output.split())


def test_a_rebuilt_installation_is_caught_by_the_anchored_head(tmp_path, database_url):
    # Someone holding both the database and the secret key can start a new trail; only a
    # head kept outside the installation shows it.
    settings = make_settings(tmp_path, database_url)
    registry = open_registry(settings)
    _fill(registry, 6)
    with registry.transaction() as session:
        anchored = verify_chain(session)
    with registry.engine.begin() as conn, tampering.triggers_off(conn):
        genesis = conn.execute(text("SELECT * FROM audit_entry WHERE seq = 1")).mappings().one()
        conn.execute(text("DELETE FROM audit_entry WHERE seq > 1"))
        conn.execute(
            text("UPDATE audit_head SET seq = 1, seal = NULL, entry_hash = :h"),
            {"h": genesis["entry_hash"]},
        )
    with registry.transaction() as session:
        assert verify_chain(session).intact  # looks like a new installation
        result = verify_chain(session, expect_head=(anchored.head_seq, anchored.head_hash))
    assert not result.intact and result.first_bad_seq == 2
    registry.close()


@pytest.mark.postgres
def test_postgres_refuses_schema_changes_that_weaken_the_guards(tmp_path, postgres_database):
    registry = open_registry(make_settings(tmp_path, postgres_database))
    _fill(registry, 3)
    for sql in (
        "ALTER TABLE audit_entry RENAME TO audit_entry_old",
        "ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only",
        "DROP TRIGGER audit_head_forward ON audit_head",
        "DROP TABLE installation",
        "CREATE OR REPLACE FUNCTION careloop_audit_append_only() RETURNS trigger AS "
        "$$ BEGIN RETURN NULL; END; $$ LANGUAGE plpgsql",
    ):
        with pytest.raises(DBAPIError, match="audit trail's guards"), registry.engine.begin() as c:
            c.execute(text(sql))
    # careloop's own migrations say so first when they must change these tables.
    with registry.engine.begin() as conn:
        conn.execute(text("SET LOCAL careloop.audit_schema_change = 'on'"))
        conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only"))
        conn.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only"))
    # Other schema changes go through.
    with registry.engine.begin() as conn:
        conn.execute(text("CREATE TABLE unrelated (id integer)"))
        conn.execute(text("DROP TABLE unrelated"))
    assert _verify(registry).intact
    registry.close()
