"""knowledge: the FHIR servers careloop may contact for each trusted CDS client

A call's ``fhirServer`` was fetched from (with the call's bearer token)
whatever it named, loopback and link-local addresses included. Each client
now registers its FHIR servers (``careloop cds trust-client --fhir-server``);
careloop contacts no other. Existing clients start with none registered.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-10 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cds_client", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fhir_servers", sa.Text(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("cds_client", schema=None) as batch_op:
        batch_op.drop_column("fhir_servers")
