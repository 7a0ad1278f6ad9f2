"""trust: indexes for the auditor's filters by user e-mail and patient pseudonymous id

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 21:30:00

Without them, a filter on a user or a patient with few entries reads the whole
trail (about 0.1 s per 100,000 entries on SQLite) for each page.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE INDEX (no batch copy of the table): the audit trail's triggers stay as they are.
    op.create_index(op.f("ix_audit_entry_user_email"), "audit_entry", ["user_email"], unique=False)
    op.create_index(
        op.f("ix_audit_entry_patient_pseudo_id"), "audit_entry", ["patient_pseudo_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_entry_patient_pseudo_id"), table_name="audit_entry")
    op.drop_index(op.f("ix_audit_entry_user_email"), table_name="audit_entry")
