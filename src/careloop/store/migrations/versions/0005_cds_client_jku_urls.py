"""knowledge: the jku URLs a trusted CDS client's JWTs may name

A client registered with its JWK Set as a file may also register the ``jku``
URL(s) its tokens carry (the CDS Hooks sandbox always sends one), so that
its calls are accepted. The URLs are compared, never fetched.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cds_client", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jku_urls", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("cds_client", schema=None) as batch_op:
        batch_op.drop_column("jku_urls")
