"""trust: consent by purpose (direct care, quality improvement, research, re-contact)

Each patient gets one yes/no column per purpose, filled from the consent state
they had: ``improvement_and_research`` → care, improvement and research;
``direct_care_only`` → care; ``withdrawn`` → none; re-contact starts at no for
everyone (no one was asked). Consent records gain the purpose they change and
whether it was given (both empty for a record of a whole preset).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_PURPOSES = ("direct_care", "quality_improvement", "research", "recontact")
_BACKFILL = {
    "direct_care": ("direct_care_only", "improvement_and_research"),
    "quality_improvement": ("improvement_and_research",),
    "research": ("improvement_and_research",),
    "recontact": (),
}


def upgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        for purpose in _PURPOSES:
            batch_op.add_column(
                sa.Column(
                    f"consent_{purpose}",
                    sa.Boolean(),
                    nullable=False,
                    server_default=sa.false(),
                )
            )
    patient = sa.table(
        "patient",
        sa.column("consent_state", sa.String),
        *(sa.column(f"consent_{p}", sa.Boolean) for p in _PURPOSES),
    )
    for purpose, states in _BACKFILL.items():
        if states:
            op.execute(
                patient.update()
                .where(patient.c.consent_state.in_(states))
                .values({f"consent_{purpose}": True})
            )
    # The models give the value on every insert; the server default was only for the backfill.
    with op.batch_alter_table("patient", schema=None) as batch_op:
        for purpose in _PURPOSES:
            batch_op.alter_column(f"consent_{purpose}", server_default=None)
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("given", sa.Boolean(), nullable=True))


def downgrade() -> None:
    # The single-state schema knows only three words; a mix it cannot say becomes the narrowest.
    patient = sa.table("patient", sa.column("consent_state", sa.String))
    op.execute(
        patient.update()
        .where(patient.c.consent_state.in_(("improvement_only", "custom")))
        .values(consent_state="direct_care_only")
    )
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_column("given")
        batch_op.drop_column("purpose")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        for purpose in reversed(_PURPOSES):
            batch_op.drop_column(f"consent_{purpose}")
