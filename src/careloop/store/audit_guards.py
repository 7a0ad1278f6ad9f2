"""The database's own guards on the audit trail, and a check that they are in place.

Three tables hold the trail: ``audit_entry`` (the entries), ``audit_head``
(the last sequence number and hash, with careloop's keyed seal) and
``installation`` (one row written once, naming the trail's genesis entry).
Triggers make the database refuse what careloop never does:

- ``audit_entry``: any UPDATE or DELETE (TRUNCATE on PostgreSQL), and any
  INSERT that is not the next entry linked to the last one — which also
  refuses SQLite's ``INSERT OR REPLACE``, whose implicit delete fires no
  DELETE trigger;
- ``audit_head``: any DELETE, and any INSERT or UPDATE that does not move it
  forward to the last entry;
- ``installation``: any change after its one row is written.

A table renamed away takes its triggers with it, and an administrator can
drop or disable triggers. :func:`guard_problems` lists every expected
trigger that is missing, altered or disabled on the tables that now bear the
audit names, so the verifier reports a renamed, recreated or unguarded
trail. On PostgreSQL an event trigger (created only when the migration runs
with the privilege to) also refuses, at the end of any DDL command, a schema
in which those guards are no longer whole — unless the transaction first
runs ``SET LOCAL careloop.audit_schema_change = 'on'``, as careloop's own
migrations that touch these tables must.

These are the guards of revision 0006; a later revision that changes them
adds a new list here rather than editing these.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, text

APPEND_ONLY = "audit_entry is append-only"
IN_ORDER = "audit_entry is append-only: a new entry must follow the last one and link to it"
HEAD_FORWARD = "audit_head only moves forward, to the last audit entry"
WRITE_ONCE = "this audit table is write-once"
SCHEMA_CHANGE_SETTING = "careloop.audit_schema_change"
GENESIS_HASH = "0" * 64
AUDIT_TABLES = ("audit_entry", "audit_head", "installation")


@dataclass(frozen=True)
class SqliteGuard:
    name: str
    table: str
    sql: str


def _raise(message: str) -> str:
    return f"BEGIN SELECT RAISE(ABORT, '{message}'); END"


_ENTRY_FOLLOWS_LAST = (
    "NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_entry) "
    "OR NEW.prev_hash IS NOT COALESCE("
    f"(SELECT entry_hash FROM audit_entry WHERE seq = NEW.seq - 1), '{GENESIS_HASH}')"
)
_HEAD_AT_LAST = (
    "NEW.seq IS NOT (SELECT MAX(seq) FROM audit_entry) "
    "OR NEW.entry_hash IS NOT (SELECT entry_hash FROM audit_entry WHERE seq = NEW.seq)"
)

SQLITE_GUARDS: tuple[SqliteGuard, ...] = (
    SqliteGuard(
        "audit_entry_no_update",
        "audit_entry",
        f"CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry {_raise(APPEND_ONLY)}",
    ),
    SqliteGuard(
        "audit_entry_no_delete",
        "audit_entry",
        f"CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry {_raise(APPEND_ONLY)}",
    ),
    SqliteGuard(
        "audit_entry_in_order",
        "audit_entry",
        "CREATE TRIGGER audit_entry_in_order BEFORE INSERT ON audit_entry "
        f"WHEN {_ENTRY_FOLLOWS_LAST} {_raise(IN_ORDER)}",
    ),
    SqliteGuard(
        "audit_head_no_delete",
        "audit_head",
        f"CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head {_raise(HEAD_FORWARD)}",
    ),
    SqliteGuard(
        "audit_head_insert_once",
        "audit_head",
        "CREATE TRIGGER audit_head_insert_once BEFORE INSERT ON audit_head "
        f"WHEN EXISTS (SELECT 1 FROM audit_head) OR {_HEAD_AT_LAST} {_raise(HEAD_FORWARD)}",
    ),
    SqliteGuard(
        "audit_head_forward",
        "audit_head",
        "CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head "
        f"WHEN NEW.id IS NOT OLD.id OR NEW.seq <= OLD.seq OR {_HEAD_AT_LAST} "
        f"{_raise(HEAD_FORWARD)}",
    ),
    SqliteGuard(
        "installation_no_update",
        "installation",
        f"CREATE TRIGGER installation_no_update BEFORE UPDATE ON installation {_raise(WRITE_ONCE)}",
    ),
    SqliteGuard(
        "installation_no_delete",
        "installation",
        f"CREATE TRIGGER installation_no_delete BEFORE DELETE ON installation {_raise(WRITE_ONCE)}",
    ),
    SqliteGuard(
        "installation_one_row",
        "installation",
        "CREATE TRIGGER installation_one_row BEFORE INSERT ON installation "
        f"WHEN EXISTS (SELECT 1 FROM installation) {_raise(WRITE_ONCE)}",
    ),
)

# PostgreSQL: trigger functions (name → body) and triggers (name, table, tgtype, function).
PG_FUNCTIONS: dict[str, str] = {
    # Unchanged from revision 0001 (its statement trigger is kept).
    "careloop_audit_append_only": f"""
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY}';
END;
""",
    "careloop_audit_write_once": f"""
BEGIN
    RAISE EXCEPTION '{WRITE_ONCE}: %', TG_TABLE_NAME;
END;
""",
    "careloop_audit_entry_in_order": f"""
BEGIN
    IF NEW.seq IS DISTINCT FROM (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_entry)
       OR NEW.prev_hash IS DISTINCT FROM COALESCE(
           (SELECT entry_hash FROM audit_entry WHERE seq = NEW.seq - 1), '{GENESIS_HASH}') THEN
        RAISE EXCEPTION '{IN_ORDER}';
    END IF;
    RETURN NEW;
END;
""",
    "careloop_audit_head_forward": f"""
BEGIN
    IF (TG_OP = 'UPDATE' AND (NEW.id IS DISTINCT FROM OLD.id OR NEW.seq <= OLD.seq))
       OR (TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM audit_head))
       OR NEW.seq IS DISTINCT FROM (SELECT MAX(seq) FROM audit_entry)
       OR NEW.entry_hash IS DISTINCT FROM
           (SELECT entry_hash FROM audit_entry WHERE seq = NEW.seq) THEN
        RAISE EXCEPTION '{HEAD_FORWARD}';
    END IF;
    RETURN NEW;
END;
""",
}

# pg_trigger.tgtype bits
_ROW, _BEFORE, _INSERT, _DELETE, _UPDATE, _TRUNCATE = 1, 2, 4, 8, 16, 32


@dataclass(frozen=True)
class PgGuard:
    name: str
    table: str
    tgtype: int
    function: str

    @property
    def sql(self) -> str:
        events = [
            word
            for bit, word in (
                (_INSERT, "INSERT"),
                (_UPDATE, "UPDATE"),
                (_DELETE, "DELETE"),
                (_TRUNCATE, "TRUNCATE"),
            )
            if self.tgtype & bit
        ]
        level = "ROW" if self.tgtype & _ROW else "STATEMENT"
        return (
            f"CREATE TRIGGER {self.name} BEFORE {' OR '.join(events)} ON {self.table} "
            f"FOR EACH {level} EXECUTE FUNCTION {self.function}()"
        )


PG_GUARDS: tuple[PgGuard, ...] = (
    PgGuard(
        "audit_entry_append_only",
        "audit_entry",
        _BEFORE | _UPDATE | _DELETE | _TRUNCATE,
        "careloop_audit_append_only",
    ),
    PgGuard(
        "audit_entry_in_order",
        "audit_entry",
        _ROW | _BEFORE | _INSERT,
        "careloop_audit_entry_in_order",
    ),
    PgGuard(
        "audit_head_forward",
        "audit_head",
        _ROW | _BEFORE | _INSERT | _UPDATE,
        "careloop_audit_head_forward",
    ),
    PgGuard(
        "audit_head_no_delete",
        "audit_head",
        _BEFORE | _DELETE | _TRUNCATE,
        "careloop_audit_write_once",
    ),
    PgGuard(
        "installation_write_once",
        "installation",
        _BEFORE | _UPDATE | _DELETE | _TRUNCATE,
        "careloop_audit_write_once",
    ),
)


def _md5(body: str) -> str:
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def _ddl_guard_function(schema: str) -> str:
    """The event trigger: after any DDL command, the guards must still be whole.

    Table names are qualified with the registry's schema: the DDL may come
    from a session with another search path (a warehouse in the same database).
    """
    literal = schema.replace("'", "''")
    expected_functions = " OR ".join(
        "NOT EXISTS (SELECT 1 FROM pg_proc "
        f"WHERE proname = '{name}' AND md5(prosrc) = '{_md5(body)}')"
        for name, body in PG_FUNCTIONS.items()
    )
    expected_triggers = " OR ".join(
        "NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
        f"WHERE t.tgrelid = to_regclass(format('%I.%I', '{literal}', '{g.table}')) "
        f"AND t.tgname = '{g.name}' AND t.tgtype = {g.tgtype} AND p.proname = '{g.function}' "
        "AND t.tgenabled IN ('O', 'A'))"
        for g in PG_GUARDS
    )
    return f"""
BEGIN
    IF current_setting('{SCHEMA_CHANGE_SETTING}', true) = 'on' THEN
        RETURN;
    END IF;
    IF {expected_functions} OR {expected_triggers} THEN
        RAISE EXCEPTION 'careloop: this change would remove or weaken the audit trail''s guards '
            '(tables audit_entry, audit_head, installation, their triggers and functions)';
    END IF;
END;
"""


def install(connection: Connection) -> None:
    """Create the guards of revision 0006 (the 0001 triggers must exist; they are kept)."""
    if connection.dialect.name == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            connection.execute(
                text(
                    f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $body${body}$body$ "
                    "LANGUAGE plpgsql"
                )
            )
        for guard in PG_GUARDS:
            if guard.name != "audit_entry_append_only":  # made by revision 0001
                connection.execute(text(guard.sql))
        _install_ddl_guard(connection)
        return
    existing = set(
        connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
    )
    for sqlite_guard in SQLITE_GUARDS:
        if sqlite_guard.name not in existing:
            connection.execute(text(sqlite_guard.sql))


def _install_ddl_guard(connection: Connection) -> None:
    """The event trigger needs superuser; without it the verifier still finds weakened guards."""
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    connection.execute(
        text(
            "CREATE OR REPLACE FUNCTION careloop_audit_ddl_guard() RETURNS event_trigger AS "
            f"$body${_ddl_guard_function(schema)}$body$ LANGUAGE plpgsql"
        )
    )
    connection.execute(
        text(
            """
DO $outer$
BEGIN
    CREATE EVENT TRIGGER careloop_audit_ddl_guard ON ddl_command_end
        EXECUTE FUNCTION careloop_audit_ddl_guard();
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'careloop: not allowed to create the audit schema guard (needs superuser)';
END;
$outer$
"""
        )
    )


def uninstall(connection: Connection) -> None:
    """Drop what :func:`install` made (downgrade)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SET LOCAL {SCHEMA_CHANGE_SETTING} = 'on'"))
        connection.execute(text("DROP EVENT TRIGGER IF EXISTS careloop_audit_ddl_guard"))
        connection.execute(text("DROP FUNCTION IF EXISTS careloop_audit_ddl_guard()"))
        for guard in PG_GUARDS:
            if guard.name != "audit_entry_append_only":
                connection.execute(text(f"DROP TRIGGER IF EXISTS {guard.name} ON {guard.table}"))
        for name in PG_FUNCTIONS:
            if name != "careloop_audit_append_only":
                connection.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))
        return
    for sqlite_guard in SQLITE_GUARDS:
        if sqlite_guard.name not in ("audit_entry_no_update", "audit_entry_no_delete"):
            connection.execute(text(f"DROP TRIGGER IF EXISTS {sqlite_guard.name}"))


def guard_problems(connection: Connection) -> list[str]:
    """Every guard that is missing, altered or switched off, in words (empty when whole)."""
    if connection.dialect.name == "postgresql":
        return _pg_problems(connection)
    return _sqlite_problems(connection)


def _sqlite_problems(connection: Connection) -> list[str]:
    rows = connection.execute(
        text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
    ).all()
    found = {name: (table, sql) for name, table, sql in rows}
    out = []
    for guard in SQLITE_GUARDS:
        if guard.name not in found:
            out.append(f"the trigger {guard.name} on {guard.table} is missing")
        elif found[guard.name] != (guard.table, guard.sql):
            out.append(f"the trigger {guard.name} on {guard.table} was altered")
    return out


def _pg_problems(connection: Connection) -> list[str]:
    out = []
    sources: dict[str, str] = dict(
        connection.execute(
            text("SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(:names)"),
            {"names": list(PG_FUNCTIONS)},
        ).all()
    )
    for name, body in PG_FUNCTIONS.items():
        if name not in sources:
            out.append(f"the function {name} is missing")
        elif sources[name] != body:
            out.append(f"the function {name} was altered")
    for guard in PG_GUARDS:
        row = connection.execute(
            text(
                "SELECT t.tgtype, p.proname, t.tgenabled FROM pg_trigger t "
                "JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE t.tgrelid = to_regclass(:table) AND t.tgname = :name"
            ),
            {"table": guard.table, "name": guard.name},
        ).one_or_none()
        if row is None:
            out.append(f"the trigger {guard.name} on {guard.table} is missing")
        elif (row.tgtype, row.proname) != (guard.tgtype, guard.function):
            out.append(f"the trigger {guard.name} on {guard.table} was altered")
        elif row.tgenabled not in ("O", "A"):
            out.append(f"the trigger {guard.name} on {guard.table} is disabled")
    return out
