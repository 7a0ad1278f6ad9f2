"""capture: responses keyed also by REDCap event name and repeat instance

A REDCap longitudinal project can hold two events on one date, and a
repeating instrument several instances on one date, so a response's key
becomes patient + form + event date + event name + repeat instance. Existing
responses take the defaults (no event name, instance 1) and keep their key.
Batch mode so the same script runs on SQLite (table copy) and PostgreSQL.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("form_response", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("event_name", sa.String(length=100), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("repeat_instance", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.drop_constraint(batch_op.f("uq_form_response_patient_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_form_response_patient_id"),
            ["patient_id", "form_id", "event_date", "event_name", "repeat_instance"],
        )


def downgrade() -> None:
    # Refused rather than lossy: with several events or instances on one date the
    # old key cannot hold the rows, and dropping some of them would lose data.
    bind = op.get_bind()
    clash = bind.execute(
        sa.text(
            "SELECT count(*) FROM (SELECT 1 FROM form_response "
            "GROUP BY patient_id, form_id, event_date HAVING count(*) > 1) AS clashes"
        )
    ).scalar_one()
    if clash:
        raise RuntimeError(
            f"{clash} patient/form/date combination(s) hold more than one response (several "
            "REDCap events or repeat instances on one date); the older schema cannot keep "
            "them. Export and remove them before downgrading."
        )
    with op.batch_alter_table("form_response", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_form_response_patient_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_form_response_patient_id"), ["patient_id", "form_id", "event_date"]
        )
        batch_op.drop_column("repeat_instance")
        batch_op.drop_column("event_name")
