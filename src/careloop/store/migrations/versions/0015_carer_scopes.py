"""trust: what each carer may do for a patient (scopes), who set it, and its history

Existing carer links keep everything they could do before: all three scopes,
set when the link was made.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
_ALL = "fill_forms,see_results,manage_consent"


def upgrade() -> None:
    with op.batch_alter_table("carer_link", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scopes", sa.String(length=64), nullable=False, server_default=_ALL)
        )
        batch_op.add_column(sa.Column("scopes_set_at", _TZ, nullable=True))
        batch_op.add_column(
            sa.Column("scopes_set_by", sa.String(length=254), nullable=False, server_default="")
        )
    # Backfill: the scopes of an existing link were set when it was made.
    op.execute(sa.text("UPDATE carer_link SET scopes_set_at = created_at"))
    with op.batch_alter_table("carer_link", schema=None) as batch_op:
        batch_op.alter_column("scopes_set_at", existing_type=_TZ, nullable=False)
        batch_op.alter_column("scopes", existing_type=sa.String(length=64), server_default=None)
        batch_op.alter_column(
            "scopes_set_by", existing_type=sa.String(length=254), server_default=None
        )
    op.create_table(
        "carer_scope_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carer_link_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("old_scopes", sa.String(length=64), nullable=False),
        sa.Column("new_scopes", sa.String(length=64), nullable=False),
        sa.Column("changed_by", sa.String(length=254), nullable=False),
        sa.Column("changed_at", _TZ, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["carer_link_id"],
            ["carer_link.id"],
            name=op.f("fk_carer_scope_change_carer_link_id_carer_link"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_carer_scope_change_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_carer_scope_change_site_id_site")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carer_scope_change")),
    )
    with op.batch_alter_table("carer_scope_change", schema=None) as batch_op:
        for column in ("carer_link_id", "patient_id", "site_id"):
            batch_op.create_index(
                batch_op.f(f"ix_carer_scope_change_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("carer_scope_change", schema=None) as batch_op:
        for column in ("site_id", "patient_id", "carer_link_id"):
            batch_op.drop_index(batch_op.f(f"ix_carer_scope_change_{column}"))
    op.drop_table("carer_scope_change")
    with op.batch_alter_table("carer_link", schema=None) as batch_op:
        batch_op.drop_column("scopes_set_by")
        batch_op.drop_column("scopes_set_at")
        batch_op.drop_column("scopes")
