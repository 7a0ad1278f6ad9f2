"""The audit trail is append-only and any tampering is found at the right entry."""

from __future__ import annotations

import random
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
    with registry.engine.begin() as conn:
        if registry.dialect == "postgresql":
            conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only"))
            conn.execute(text(sql), params)
            conn.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_entry_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_entry_no_delete"))
            conn.execute(text(sql), params)


@pytest.fixture
def registry(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url)
    reg = open_registry(settings)
    yield reg
    reg.close()


def test_an_untouched_chain_verifies(registry):
    _fill(registry, 30)
    result = _verify(registry)
    assert result.intact and result.entries_checked == 30 and result.head_seq == 30


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
        _raw(registry, "DELETE FROM audit_entry")
        with registry.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_head"))
        n = rng.randint(5, 25)
        _fill(registry, n)
        seq = rng.randint(1, n - 1)
        expected = _tamper(registry, kind, seq, n, rng)
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


def test_careloop_audit_verify_exits_non_zero_and_names_the_bad_entry(tmp_path):
    settings = make_settings(tmp_path, None)
    registry = open_registry(settings)
    _fill(registry, 8)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--data-dir", str(settings.data_dir)])
    assert ok.exit_code == 0, ok.output
    assert "intact: 8 entries" in ok.output
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
    assert [r.seq for r in rows] == list(range(1, writers * per_writer + 1))
    assert sorted((r.user_id, r.details) for r in rows) == sorted(
        (w, f'{{"i":{i}}}') for w in range(writers) for i in range(per_writer)
    )
    assert _verify(registry).intact
    registry.close()
