"""foundation: lock-outs kept per e-mail address, known or not

Failed logins were counted on the account, so an address without an account
was never locked (401 for ever) while a real one was (423): the lock-out
told which addresses exist. The count and lock now live in ``login_lockout``,
keyed by a hash of the address; ``app_user.failed_logins`` and
``locked_until`` are no longer used (a lock in force during the upgrade is
dropped).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_lockout",
        sa.Column("email_key", sa.String(length=64), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email_key", name=op.f("pk_login_lockout")),
    )


def downgrade() -> None:
    op.drop_table("login_lockout")
