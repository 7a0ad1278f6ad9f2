"""capture: PROM schedules, planned visits and the PROM invitation log

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = "0004"  # form_definition, form_response and prom_link (the capture branch)

_TZ = sa.DateTime(timezone=True)


def _owned(table: str, *, patient: bool = True) -> list[Any]:
    """The site (and patient) columns and keys every site-owned row carries."""
    items: list[Any] = [
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f(f"fk_{table}_site_id_site")),
    ]
    if patient:
        items += [
            sa.Column("patient_id", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(
                ["patient_id"],
                ["patient.id"],
                name=op.f(f"fk_{table}_patient_id_patient"),
                ondelete="CASCADE",
            ),
        ]
    return items


def upgrade() -> None:
    op.create_table(
        "prom_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("weeks", sa.Integer(), nullable=True),
        sa.Column("event_kind", sa.String(length=100), nullable=True),
        sa.Column("remind_after_days", sa.Integer(), nullable=False),
        sa.Column("max_reminders", sa.Integer(), nullable=False),
        sa.Column("expires_after_days", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), server_default="direct_care", nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        *_owned("prom_schedule", patient=False),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["form_definition.id"],
            name=op.f("fk_prom_schedule_form_id_form_definition"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prom_schedule")),
    )
    op.create_table(
        "planned_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=100), server_default="clinic", nullable=False),
        sa.Column("cancelled_at", _TZ, nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        *_owned("planned_visit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planned_visit")),
    )
    op.create_table(
        "prom_invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("occasion", sa.String(length=100), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("occasion_date", sa.Date(), nullable=True),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", _TZ, nullable=True),
        sa.Column("last_sent_at", _TZ, nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Text(), nullable=True),
        sa.Column("completed_at", _TZ, nullable=True),
        sa.Column("response_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", _TZ, nullable=True),
        sa.Column("closed_reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        *_owned("prom_invitation"),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["prom_link.id"],
            name=op.f("fk_prom_invitation_link_id_prom_link"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["form_response.id"],
            name=op.f("fk_prom_invitation_response_id_form_response"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["prom_schedule.id"],
            name=op.f("fk_prom_invitation_schedule_id_prom_schedule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prom_invitation")),
        sa.UniqueConstraint(
            "schedule_id", "patient_id", "occasion", name=op.f("uq_prom_invitation_schedule_id")
        ),
    )
    for table, columns in (
        ("prom_schedule", ("form_id", "site_id")),
        ("planned_visit", ("patient_id", "site_id")),
        ("prom_invitation", ("patient_id", "schedule_id", "site_id")),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def downgrade() -> None:
    op.drop_table("prom_invitation")
    op.drop_table("planned_visit")
    op.drop_table("prom_schedule")
