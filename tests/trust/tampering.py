"""Thirty-two ways to tamper with the audit trail, as a careless or hostile admin would.

Each tampering gets direct access to the registry database (no careloop code)
and tries to remove, change, add or reorder entries, or to switch off what
protects them. A tampering is *caught* when the database refuses it (a
trigger raises, nothing changes) or when ``verify_chain`` afterwards reports
the trail broken; it is *missed* when it succeeds and the trail still
verifies.

The "hidden" tamperings first switch off the append-only triggers, then put
them back as they were, as someone who read careloop's source would: the
database cannot refuse them, only the verifier (hash chain, installation
record, keyed head seal) can find them.

The module only uses raw SQL and :func:`careloop.trust.audit.verify_chain`,
so it also runs against older careloop code (to count what that caught).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from careloop.store.database import Registry
from careloop.trust.audit import verify_chain

GENESIS = "0" * 64
FIELDS = (
    "seq",
    "occurred_at",
    "user_id",
    "user_email",
    "role",
    "site_code",
    "patient_id",
    "patient_pseudo_id",
    "action",
    "category",
    "outcome",
    "reason",
    "request_id",
    "client_addr",
    "details",
    "prev_hash",
)
AUDIT_TABLES = ("audit_entry", "audit_head", "installation")
SCHEMA_CHANGE_SETTING = "careloop.audit_schema_change"

Outcome = Literal["refused", "detected", "missed"]


def digest(values: dict[str, Any]) -> str:
    """The entry hash as careloop computes it (public algorithm: an attacker has it)."""
    payload = json.dumps([values.get(n) for n in FIELDS], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _tables(conn: Connection) -> set[str]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    else:
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
    return {r[0] for r in rows}


def _entries(conn: Connection, table: str = "audit_entry") -> list[dict[str, Any]]:
    cols = ", ".join((*FIELDS, "entry_hash"))
    rows = conn.execute(text(f"SELECT {cols} FROM {table} ORDER BY seq")).mappings()
    return [dict(r) for r in rows]


def _insert(conn: Connection, row: dict[str, Any], table: str = "audit_entry") -> None:
    cols = [*FIELDS, "entry_hash"]
    conn.execute(
        text(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
        ),
        {c: row[c] for c in cols},
    )


def _forged(prev: dict[str, Any] | None, seq: int) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(FIELDS)
    values.update(
        seq=seq,
        occurred_at=(prev or {}).get("occurred_at") or "2026-01-01T00:00:00.000000Z",
        action="read",
        category="demographics",
        outcome="success",
        user_email="forger@example.org",
        prev_hash=prev["entry_hash"] if prev else GENESIS,
    )
    values["entry_hash"] = digest(values)
    return values


def _set_head(conn: Connection, seq: int | None, entry_hash: str | None) -> None:
    conn.execute(text("DELETE FROM audit_head"))
    if seq is not None:
        conn.execute(
            text("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, :s, :h)"),
            {"s": seq, "h": entry_hash},
        )


def _rewrite(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Replace the whole trail with ``rows``, rehashed into a consistent chain."""
    conn.execute(text("DELETE FROM audit_entry"))
    prev = GENESIS
    for i, row in enumerate(rows, start=1):
        values = {**row, "seq": i, "prev_hash": prev}
        values["entry_hash"] = digest(values)
        _insert(conn, values)
        prev = values["entry_hash"]
    _set_head(conn, len(rows) or None, prev if rows else None)


@contextmanager
def triggers_off(conn: Connection) -> Iterator[None]:
    """Switch off every trigger on the audit tables, and put them back afterwards."""
    present = [t for t in AUDIT_TABLES if t in _tables(conn)]
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL {SCHEMA_CHANGE_SETTING} = 'on'"))
        for table in present:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        yield
        for table in present:
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        return
    saved = conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            f"AND tbl_name IN ({', '.join(repr(t) for t in present)})"
        )
    ).all()
    for name, _sql in saved:
        conn.execute(text(f"DROP TRIGGER {name}"))
    yield
    for _name, sql in saved:
        conn.execute(text(sql))


def _empty_copy(conn: Connection, source: str, target: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"CREATE TABLE {target} (LIKE {source} INCLUDING ALL)"))
    else:
        sql = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"), {"n": source}
        ).scalar_one()
        conn.execute(text(re.sub(rf'^CREATE TABLE "?{source}"?', f"CREATE TABLE {target}", sql)))


def _informed(conn: Connection) -> None:
    """An attacker who read the source sets careloop's schema-change switch first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL {SCHEMA_CHANGE_SETTING} = 'on'"))


def _user_triggers(conn: Connection, table: str) -> list[str]:
    if conn.dialect.name == "postgresql":
        return list(
            conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t) "
                    "AND NOT tgisinternal"
                ),
                {"t": table},
            ).scalars()
        )
    return list(
        conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        ).scalars()
    )


# ---------------------------------------------------------------- the tamperings

Tampering = Callable[[Connection, "Context"], None]


@dataclass
class Context:
    mid: int
    """A sequence number in the middle of the trail."""
    rows: list[dict[str, Any]]
    """The trail as it was before the tampering."""
    other_trail: list[dict[str, Any]]
    """A valid trail of another installation (for the transplant)."""
    other_head: tuple[int, str]
    head: tuple[int, str] = (0, GENESIS)
    """The head before the tampering, as published outside the installation."""


def delete_entry(conn: Connection, ctx: Context) -> None:
    conn.execute(text("DELETE FROM audit_entry WHERE seq = :s"), {"s": ctx.mid})


def delete_all(conn: Connection, ctx: Context) -> None:
    conn.execute(text("DELETE FROM audit_entry"))
    conn.execute(text("DELETE FROM audit_head"))


def update_entry(conn: Connection, ctx: Context) -> None:
    conn.execute(text("UPDATE audit_entry SET action = 'create' WHERE seq = :s"), {"s": ctx.mid})


def replace_entry(conn: Connection, ctx: Context) -> None:
    """INSERT OR REPLACE (SQLite) / ON CONFLICT DO UPDATE (PostgreSQL) of the last entry."""
    last = ctx.rows[-1]
    forged = _forged(ctx.rows[-2], last["seq"])
    cols = [*FIELDS, "entry_hash"]
    values = ", ".join(":" + c for c in cols)
    if conn.dialect.name == "postgresql":
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "seq")
        sql = (
            f"INSERT INTO audit_entry ({', '.join(cols)}) VALUES ({values}) "
            f"ON CONFLICT (seq) DO UPDATE SET {sets}"
        )
    else:
        sql = f"INSERT OR REPLACE INTO audit_entry ({', '.join(cols)}) VALUES ({values})"
    conn.execute(text(sql), {c: forged[c] for c in cols})
    conn.execute(text("UPDATE audit_head SET entry_hash = :h"), {"h": forged["entry_hash"]})


def truncate(conn: Connection, ctx: Context) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("TRUNCATE audit_entry, audit_head"))
    else:  # SQLite's truncate: a DELETE without WHERE
        conn.execute(text("DELETE FROM audit_entry"))


def rename_and_replace_empty(conn: Connection, ctx: Context) -> None:
    _informed(conn)
    conn.execute(text("ALTER TABLE audit_entry RENAME TO audit_entry_old"))
    _empty_copy(conn, "audit_entry_old", "audit_entry")


def rename_and_copy_without_one(conn: Connection, ctx: Context) -> None:
    _informed(conn)
    conn.execute(text("ALTER TABLE audit_entry RENAME TO audit_entry_old"))
    _empty_copy(conn, "audit_entry_old", "audit_entry")
    cols = ", ".join((*FIELDS, "entry_hash"))
    conn.execute(
        text(
            f"INSERT INTO audit_entry ({cols}) SELECT {cols} FROM audit_entry_old WHERE seq <> :s"
        ),
        {"s": ctx.mid},
    )


def drop_and_recreate_empty(conn: Connection, ctx: Context) -> None:
    _informed(conn)
    _empty_copy(conn, "audit_entry", "audit_entry_shape")
    conn.execute(text("DROP TABLE audit_entry"))
    conn.execute(text("ALTER TABLE audit_entry_shape RENAME TO audit_entry"))


def drop_triggers(conn: Connection, ctx: Context) -> None:
    _informed(conn)
    for table in AUDIT_TABLES:
        if table not in _tables(conn):
            continue
        for name in _user_triggers(conn, table):
            on = f" ON {table}" if conn.dialect.name == "postgresql" else ""
            conn.execute(text(f"DROP TRIGGER {name}{on}"))


def disable_triggers(conn: Connection, ctx: Context) -> None:
    """PostgreSQL: ALTER TABLE … DISABLE TRIGGER; SQLite: each trigger swapped for a no-op."""
    _informed(conn)
    for table in AUDIT_TABLES:
        if table not in _tables(conn):
            continue
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            continue
        for name in _user_triggers(conn, table):
            sql = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}
            ).scalar_one()
            conn.execute(text(f"DROP TRIGGER {name}"))
            head, _, _ = sql.partition(" BEGIN ")
            conn.execute(text(f"{head.split(' WHEN ')[0]} BEGIN SELECT 1; END"))


def neuter_and_delete(conn: Connection, ctx: Context) -> None:
    """The refusal itself replaced by a no-op (function body / trigger body), then a delete."""
    _informed(conn)
    if conn.dialect.name == "postgresql":
        functions = conn.execute(
            text(
                "SELECT proname FROM pg_proc WHERE proname LIKE 'careloop_audit%' "
                "AND prorettype = 'trigger'::regtype"
            )
        ).scalars()
        for name in list(functions):
            conn.execute(
                text(
                    f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS "
                    "$$ BEGIN RETURN NULL; END; $$ LANGUAGE plpgsql"
                )
            )
    else:
        disable_triggers(conn, ctx)
    conn.execute(text("DELETE FROM audit_entry WHERE seq = :s"), {"s": ctx.mid})


def head_delete(conn: Connection, ctx: Context) -> None:
    conn.execute(text("DELETE FROM audit_head"))


def head_rollback(conn: Connection, ctx: Context) -> None:
    row = ctx.rows[ctx.mid - 1]
    conn.execute(
        text("UPDATE audit_head SET seq = :s, entry_hash = :h"),
        {"s": row["seq"], "h": row["entry_hash"]},
    )


def forge_append(conn: Connection, ctx: Context) -> None:
    _insert(conn, _forged(ctx.rows[-1], ctx.rows[-1]["seq"] + 1))


def forge_append_with_head(conn: Connection, ctx: Context) -> None:
    forged = _forged(ctx.rows[-1], ctx.rows[-1]["seq"] + 1)
    _insert(conn, forged)
    conn.execute(
        text("UPDATE audit_head SET seq = :s, entry_hash = :h"),
        {"s": forged["seq"], "h": forged["entry_hash"]},
    )


def delete_entry_hidden(conn: Connection, ctx: Context) -> None:
    with triggers_off(conn):
        delete_entry(conn, ctx)


def update_byte_hidden(conn: Connection, ctx: Context) -> None:
    with triggers_off(conn):
        conn.execute(
            text("UPDATE audit_entry SET user_email = 'someone.else@example.org' WHERE seq = :s"),
            {"s": ctx.mid},
        )


def update_and_rehash_hidden(conn: Connection, ctx: Context) -> None:
    row = {**ctx.rows[ctx.mid - 1], "action": "create"}
    row["entry_hash"] = digest(row)
    with triggers_off(conn):
        conn.execute(
            text("UPDATE audit_entry SET action = 'create', entry_hash = :h WHERE seq = :s"),
            {"h": row["entry_hash"], "s": ctx.mid},
        )


def rebuild_chain_hidden(conn: Connection, ctx: Context) -> None:
    rows = [dict(r) for r in ctx.rows]
    rows[ctx.mid - 1]["user_email"] = "someone.else@example.org"
    with triggers_off(conn):
        _rewrite(conn, rows)


def cut_tail_hidden(conn: Connection, ctx: Context) -> None:
    with triggers_off(conn):
        conn.execute(text("DELETE FROM audit_entry WHERE seq > :s"), {"s": len(ctx.rows) - 3})


def cut_tail_and_head_hidden(conn: Connection, ctx: Context) -> None:
    keep = ctx.rows[-4]
    with triggers_off(conn):
        conn.execute(text("DELETE FROM audit_entry WHERE seq > :s"), {"s": keep["seq"]})
        _set_head(conn, keep["seq"], keep["entry_hash"])


def empty_trail_hidden(conn: Connection, ctx: Context) -> None:
    """The issue's case: every entry and the head deleted."""
    with triggers_off(conn):
        conn.execute(text("DELETE FROM audit_entry"))
        conn.execute(text("DELETE FROM audit_head"))


def empty_everything_hidden(conn: Connection, ctx: Context) -> None:
    with triggers_off(conn):
        for table in AUDIT_TABLES:
            if table in _tables(conn):
                conn.execute(text(f"DELETE FROM {table}"))


def forge_insert_middle_hidden(conn: Connection, ctx: Context) -> None:
    """A forged entry slipped in before ``mid``; later entries renumbered to make room."""
    rows = ctx.rows
    forged = _forged(rows[ctx.mid - 2], ctx.mid)
    with triggers_off(conn):
        for row in reversed(rows[ctx.mid - 1 :]):
            conn.execute(
                text("UPDATE audit_entry SET seq = :t WHERE seq = :s"),
                {"t": row["seq"] + 1, "s": row["seq"]},
            )
        _insert(conn, forged)
        last = rows[-1]
        _set_head(conn, last["seq"] + 1, last["entry_hash"])


def swap_entries_hidden(conn: Connection, ctx: Context) -> None:
    """Two entries' contents swapped (each keeps its own hash column)."""
    a, b = ctx.rows[ctx.mid - 1], ctx.rows[ctx.mid]
    cols = [c for c in FIELDS if c != "seq"] + ["entry_hash"]
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    with triggers_off(conn):
        conn.execute(
            text(f"UPDATE audit_entry SET {sets} WHERE seq = :seq"),
            {**{c: b[c] for c in cols}, "seq": a["seq"]},
        )
        conn.execute(
            text(f"UPDATE audit_entry SET {sets} WHERE seq = :seq"),
            {**{c: a[c] for c in cols}, "seq": b["seq"]},
        )


def renumber_hidden(conn: Connection, ctx: Context) -> None:
    """Two entries exchange sequence numbers (reordered in the trail)."""
    a, b = ctx.mid, ctx.mid + 1
    with triggers_off(conn):
        conn.execute(text("UPDATE audit_entry SET seq = -1 WHERE seq = :a"), {"a": a})
        conn.execute(text("UPDATE audit_entry SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
        conn.execute(text("UPDATE audit_entry SET seq = :b WHERE seq = -1"), {"b": b})


def transplant_hidden(conn: Connection, ctx: Context) -> None:
    """The trail replaced by another installation's trail, valid in itself."""
    with triggers_off(conn):
        conn.execute(text("DELETE FROM audit_entry"))
        for row in ctx.other_trail:
            _insert(conn, row)
        _set_head(conn, *ctx.other_head)


def replace_head(conn: Connection, ctx: Context) -> None:
    """The head moved back to ``mid`` by INSERT OR REPLACE / ON CONFLICT DO UPDATE."""
    row = ctx.rows[ctx.mid - 1]
    if conn.dialect.name == "postgresql":
        sql = (
            "INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, :s, :h) "
            "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, entry_hash = EXCLUDED.entry_hash"
        )
    else:
        sql = "INSERT OR REPLACE INTO audit_head (id, seq, entry_hash) VALUES (1, :s, :h)"
    conn.execute(text(sql), {"s": row["seq"], "h": row["entry_hash"]})


def replace_installation(conn: Connection, ctx: Context) -> None:
    """The installation record replaced by one whose genesis is past the trail's end."""
    record = dict(conn.execute(text("SELECT * FROM installation")).mappings().one())
    record.update(genesis_seq=1, genesis_hash=ctx.rows[0]["entry_hash"])
    record["installation_id"] = "00000000-0000-4000-8000-000000000000"
    cols = list(record)
    values = ", ".join(":" + c for c in cols)
    if conn.dialect.name == "postgresql":
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "id")
        sql = (
            f"INSERT INTO installation ({', '.join(cols)}) VALUES ({values}) "
            f"ON CONFLICT (id) DO UPDATE SET {sets}"
        )
    else:
        sql = f"INSERT OR REPLACE INTO installation ({', '.join(cols)}) VALUES ({values})"
    conn.execute(text(sql), record)


def rename_head_and_roll_back(conn: Connection, ctx: Context) -> None:
    """The head table renamed away and a fresh, unguarded one pointing at ``mid``."""
    _informed(conn)
    row = ctx.rows[ctx.mid - 1]
    conn.execute(text("ALTER TABLE audit_head RENAME TO audit_head_old"))
    _empty_copy(conn, "audit_head_old", "audit_head")
    # The old seal kept: whoever does this has no key to make a new one.
    conn.execute(
        text(
            "INSERT INTO audit_head (id, seq, entry_hash, seal) "
            "SELECT 1, :s, :h, seal FROM audit_head_old"
        ),
        {"s": row["seq"], "h": row["entry_hash"]},
    )


def rename_installation_away(conn: Connection, ctx: Context) -> None:
    """The installation record renamed away and an empty table in its place."""
    _informed(conn)
    conn.execute(text("ALTER TABLE installation RENAME TO installation_old"))
    _empty_copy(conn, "installation_old", "installation")


def restart_trail_hidden(conn: Connection, ctx: Context) -> None:
    """The trail cut back to its genesis entry and the head unsealed: a "new" installation.

    Only someone holding the secret key, or re-creating the installation, gets
    this far without the plain check noticing; the anchored head catches it.
    """
    genesis = ctx.rows[0]
    with triggers_off(conn):
        conn.execute(text("DELETE FROM audit_entry WHERE seq > 1"))
        conn.execute(
            text("UPDATE audit_head SET seq = 1, seal = NULL, entry_hash = :h"),
            {"h": genesis["entry_hash"]},
        )


TAMPERINGS: dict[str, Tampering] = {
    f.__name__: f
    for f in (
        delete_entry,
        delete_all,
        update_entry,
        replace_entry,
        truncate,
        rename_and_replace_empty,
        rename_and_copy_without_one,
        drop_and_recreate_empty,
        drop_triggers,
        disable_triggers,
        neuter_and_delete,
        head_delete,
        head_rollback,
        forge_append,
        forge_append_with_head,
        delete_entry_hidden,
        update_byte_hidden,
        update_and_rehash_hidden,
        rebuild_chain_hidden,
        cut_tail_hidden,
        cut_tail_and_head_hidden,
        empty_trail_hidden,
        empty_everything_hidden,
        forge_insert_middle_hidden,
        swap_entries_hidden,
        renumber_hidden,
        transplant_hidden,
        replace_head,
        replace_installation,
        rename_head_and_roll_back,
        rename_installation_away,
        restart_trail_hidden,
    )
}

ANCHORED = frozenset({"restart_trail_hidden"})
"""Tamperings only the externally anchored head can show (``verify --expect-head``).

They need the installation's secret key (or a re-created installation); every
other tampering is refused or found by the plain check.
"""


def snapshot(registry: Registry) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """The trail and head of ``registry`` (to transplant elsewhere)."""
    with registry.engine.connect() as conn:
        rows = _entries(conn)
        seq, digest_ = conn.execute(text("SELECT seq, entry_hash FROM audit_head")).one()
    return rows, (seq, digest_)


def attempt(registry: Registry, name: str, ctx: Context, *, anchored: bool = True) -> Outcome:
    """Run one tampering on ``registry`` and say whether it was caught.

    An :data:`ANCHORED` tampering is checked against the head published before
    it (``ctx.head``) unless ``anchored`` is false.
    """
    try:
        with registry.engine.begin() as conn:
            TAMPERINGS[name](conn, ctx)
    except DBAPIError:
        return "refused"
    expect_head = ctx.head if anchored and name in ANCHORED else None
    with registry.transaction() as session:
        result = verify_chain(session, expect_head=expect_head)
    return "missed" if result.intact else "detected"


def context_for(registry: Registry, other: Registry) -> Context:
    rows, head = snapshot(registry)
    other_rows, other_head = snapshot(other)
    return Context(
        mid=len(rows) // 2, rows=rows, other_trail=other_rows, other_head=other_head, head=head
    )
