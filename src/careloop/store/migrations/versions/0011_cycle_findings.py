"""community: coded qualitative findings of cycles; the cycle a knowledge deployment runs under

A cycle's qualitative findings: the summary its Study shows (themes with
their counts, coders' agreement, documents' metadata) and the whole coded
project with its transcripts, read only by a few members. A knowledge
deployment records the learning cycle it runs under and, for a randomised
test of card variants, the consent purpose that cycle gives.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cycle_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("added_by", sa.String(length=254), nullable=False),
        sa.Column("added_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["learning_cycle.id"],
            name=op.f("fk_cycle_findings_cycle_id_learning_cycle"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_cycle_findings_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycle_findings")),
    )
    with op.batch_alter_table("cycle_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cycle_findings_cycle_id"), ["cycle_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cycle_findings_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("ko_deployment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cycle_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("consent_purpose", sa.String(length=30), nullable=True))
        batch_op.create_index(batch_op.f("ix_ko_deployment_cycle_id"), ["cycle_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_ko_deployment_cycle_id_learning_cycle"),
            "learning_cycle",
            ["cycle_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("ko_deployment", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_ko_deployment_cycle_id_learning_cycle"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_ko_deployment_cycle_id"))
        batch_op.drop_column("consent_purpose")
        batch_op.drop_column("cycle_id")
    op.drop_table("cycle_findings")
