"""capture: the data history of each response (what it held after each save)

Existing responses get no rows here: their history starts with their next
change on a page, which first keeps what they held (a baseline row).

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-08 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "form_response_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("saved_at", _TZ, nullable=False),
        sa.Column("saved_by", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("baseline", sa.Boolean(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["form_response.id"],
            name=op.f("fk_form_response_revision_response_id_form_response"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_form_response_revision_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_form_response_revision_site_id_site")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_response_revision")),
    )
    with op.batch_alter_table("form_response_revision", schema=None) as batch_op:
        for column in ("response_id", "patient_id", "site_id"):
            batch_op.create_index(
                batch_op.f(f"ix_form_response_revision_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("form_response_revision", schema=None) as batch_op:
        for column in ("site_id", "patient_id", "response_id"):
            batch_op.drop_index(batch_op.f(f"ix_form_response_revision_{column}"))
    op.drop_table("form_response_revision")
