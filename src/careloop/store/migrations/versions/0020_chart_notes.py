"""dashboards: notes and phase starts people add to a measure's chart

A note marks one period of a measure's chart (the network's, or a site's)
with a line of text; one that starts a phase makes the chart recalculate its
centre line and limits from that period on.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chart_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("measure_id", sa.String(length=100), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("starts_phase", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_chart_note_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chart_note")),
    )
    with op.batch_alter_table("chart_note", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chart_note_measure_id"), ["measure_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chart_note_site_id"), ["site_id"], unique=False)


def downgrade() -> None:
    op.drop_table("chart_note")
