"""capture: forms, versions, responses, PROM links

Form definitions with content-addressed versions, responses (one per patient
× form × event date, optimistic concurrency through ``version``) and PROM
links (only the token's SHA-256 is stored). Indexes are created in batch
mode so the same script runs on SQLite and PostgreSQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 01:30:01.782658
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = ("capture",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "form_definition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("patient_reported", sa.Boolean(), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_definition")),
        sa.UniqueConstraint("name", name=op.f("uq_form_definition_name")),
    )
    op.create_table(
        "form_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("source_format", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["form_definition.id"],
            name=op.f("fk_form_version_form_id_form_definition"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_version")),
        sa.UniqueConstraint("form_id", "version", name=op.f("uq_form_version_form_id")),
    )
    with op.batch_alter_table("form_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_form_version_form_id"), ["form_id"], unique=False)

    op.create_table(
        "form_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("form_version_id", sa.Integer(), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("entered_by_user_id", sa.Integer(), nullable=True),
        sa.Column("patient_entered", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entered_by_user_id"],
            ["app_user.id"],
            name=op.f("fk_form_response_entered_by_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["form_definition.id"],
            name=op.f("fk_form_response_form_id_form_definition"),
        ),
        sa.ForeignKeyConstraint(
            ["form_version_id"],
            ["form_version.id"],
            name=op.f("fk_form_response_form_version_id_form_version"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_form_response_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_form_response_site_id_site")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_response")),
        sa.UniqueConstraint(
            "patient_id", "form_id", "event_date", name=op.f("uq_form_response_patient_id")
        ),
    )
    with op.batch_alter_table("form_response", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_form_response_form_id"), ["form_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_form_response_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_form_response_site_id"), ["site_id"], unique=False)

    op.create_table(
        "prom_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"], ["form_definition.id"], name=op.f("fk_prom_link_form_id_form_definition")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_prom_link_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["form_response.id"],
            name=op.f("fk_prom_link_response_id_form_response"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_prom_link_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prom_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_prom_link_token_hash")),
    )
    with op.batch_alter_table("prom_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prom_link_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_prom_link_site_id"), ["site_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prom_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prom_link_site_id"))
        batch_op.drop_index(batch_op.f("ix_prom_link_patient_id"))

    op.drop_table("prom_link")
    with op.batch_alter_table("form_response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_response_site_id"))
        batch_op.drop_index(batch_op.f("ix_form_response_patient_id"))
        batch_op.drop_index(batch_op.f("ix_form_response_form_id"))

    op.drop_table("form_response")
    with op.batch_alter_table("form_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_version_form_id"))

    op.drop_table("form_version")
    op.drop_table("form_definition")
