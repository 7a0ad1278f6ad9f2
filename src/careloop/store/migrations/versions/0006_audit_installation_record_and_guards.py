"""foundation: the installation record, the audit genesis entry, the head seal, more guards

An installation that has ever written an audit entry must never verify as
empty. This revision writes the trail's genesis entry (entry 1 of a new
installation, or the next entry of an existing one) and an installation
record naming it, which triggers make write-once; adds the head's keyed
seal (written by careloop from the next append on); and adds triggers that
refuse replacing, inserting out of order, deleting or moving back the head
(careloop.store.audit_guards), plus, on PostgreSQL with the privilege, an
event trigger that refuses DDL weakening those guards.

The genesis entry is hashed here with the chain's version-1 canonical form,
frozen in this file (careloop.trust.audit computes the same).

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from careloop.store import audit_guards

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None

_HASHED_FIELDS_V1 = (
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


def _digest_v1(values: dict[str, Any]) -> str:
    payload = json.dumps(
        [values.get(name) for name in _HASHED_FIELDS_V1], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def upgrade() -> None:
    op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("genesis_seq", sa.BigInteger(), nullable=False),
        sa.Column("genesis_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    op.add_column("audit_head", sa.Column("seal", sa.String(length=64), nullable=True))

    bind = op.get_bind()
    head = bind.execute(sa.text("SELECT seq, entry_hash FROM audit_head WHERE id = 1")).first()
    installation_id = str(uuid.uuid4())
    occurred_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    values: dict[str, Any] = dict.fromkeys(_HASHED_FIELDS_V1)
    values.update(
        seq=head.seq + 1 if head else 1,
        occurred_at=occurred_at,
        action="audit_start",
        category="audit",
        outcome="success",
        details=json.dumps(
            {"installation_id": installation_id, "upgrade": head is not None},
            sort_keys=True,
            separators=(",", ":"),
        ),
        prev_hash=head.entry_hash if head else audit_guards.GENESIS_HASH,
    )
    entry_hash = _digest_v1(values)
    columns = [*_HASHED_FIELDS_V1, "entry_hash"]
    bind.execute(
        sa.text(
            f"INSERT INTO audit_entry ({', '.join(columns)}) "  # noqa: S608 - fixed names
            f"VALUES ({', '.join(':' + c for c in columns)})"
        ),
        {**values, "entry_hash": entry_hash},
    )
    if head is None:
        bind.execute(
            sa.text("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, :seq, :hash)"),
            {"seq": values["seq"], "hash": entry_hash},
        )
    else:
        bind.execute(
            sa.text("UPDATE audit_head SET seq = :seq, entry_hash = :hash WHERE id = 1"),
            {"seq": values["seq"], "hash": entry_hash},
        )
    bind.execute(
        sa.text(
            "INSERT INTO installation (id, installation_id, created_at, genesis_seq, genesis_hash) "
            "VALUES (1, :iid, :at, :seq, :hash)"
        ),
        {"iid": installation_id, "at": occurred_at, "seq": values["seq"], "hash": entry_hash},
    )
    audit_guards.install(bind)


def downgrade() -> None:
    bind = op.get_bind()
    audit_guards.uninstall(bind)
    op.drop_column("audit_head", "seal")
    op.drop_table("installation")
