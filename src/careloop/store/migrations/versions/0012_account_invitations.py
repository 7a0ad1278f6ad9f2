"""trust: e-mailed invitations that open a patient's or a carer's account

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "account_invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("relationship_to_patient", sa.String(length=64), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("used_at", _TZ, nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_account_invitation_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_account_invitation_site_id_site")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_account_invitation_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_invitation")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_invitation_token_hash")),
    )
    with op.batch_alter_table("account_invitation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_invitation_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_account_invitation_site_id"), ["site_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_account_invitation_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("account_invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_invitation_user_id"))
        batch_op.drop_index(batch_op.f("ix_account_invitation_site_id"))
        batch_op.drop_index(batch_op.f("ix_account_invitation_patient_id"))
    op.drop_table("account_invitation")
