"""knowledge and practice: knowledge object versions, transitions, deployments, CDS Hooks

Knowledge object versions with their lifecycle transitions and deployments;
the CDS Hooks service's trusted clients, used JWT ids, invocations, cards,
card-variant allocations and feedback.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27 01:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("knowledge",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("jwks_url", sa.String(length=1000), nullable=True),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("site_code", sa.String(length=32), nullable=True),
        sa.Column("origins", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_client")),
        sa.UniqueConstraint("issuer", name=op.f("uq_cds_client_issuer")),
    )
    op.create_table(
        "cds_invocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hook_instance", sa.String(length=200), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("hook", sa.String(length=100), nullable=False),
        sa.Column("ko_identifier", sa.String(length=100), nullable=False),
        sa.Column("ko_version", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.Column("site_code", sa.String(length=32), nullable=True),
        sa.Column("user_ref", sa.String(length=200), nullable=True),
        sa.Column("patient_ref", sa.String(length=200), nullable=True),
        sa.Column("fetched_keys", sa.Text(), nullable=False),
        sa.Column("cards_count", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_invocation")),
    )
    with op.batch_alter_table("cds_invocation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cds_invocation_hook_instance"), ["hook_instance"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cds_invocation_ko_identifier"), ["ko_identifier"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cds_invocation_received_at"), ["received_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cds_invocation_service_id"), ["service_id"], unique=False
        )

    op.create_table(
        "cds_jti",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_jti")),
        sa.UniqueConstraint("issuer", "jti", name=op.f("uq_cds_jti_issuer")),
    )
    with op.batch_alter_table("cds_jti", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cds_jti_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "cds_variant_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial", sa.String(length=200), nullable=False),
        sa.Column("ko_identifier", sa.String(length=100), nullable=False),
        sa.Column("unit_id", sa.String(length=200), nullable=False),
        sa.Column("stratum", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=100), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_variant_assignment")),
        sa.UniqueConstraint(
            "trial", "stratum", "position", name="uq_cds_variant_assignment_position"
        ),
        sa.UniqueConstraint("trial", "unit_id", name="uq_cds_variant_assignment_unit"),
    )
    op.create_table(
        "ko_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("hook", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=True),
        sa.Column("package", sa.Text(), nullable=False),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("tests_passed", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ko_version")),
        sa.UniqueConstraint("identifier", "version", name=op.f("uq_ko_version_identifier")),
    )
    with op.batch_alter_table("ko_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ko_version_identifier"), ["identifier"], unique=False)
        batch_op.create_index(batch_op.f("ix_ko_version_service_id"), ["service_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ko_version_status"), ["status"], unique=False)

    op.create_table(
        "cds_card",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("invocation_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("ko_identifier", sa.String(length=100), nullable=False),
        sa.Column("ko_version", sa.String(length=40), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=True),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("indicator", sa.String(length=10), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("suggestions", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invocation_id"],
            ["cds_invocation.id"],
            name=op.f("fk_cds_card_invocation_id_cds_invocation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_card")),
        sa.UniqueConstraint("uuid", name=op.f("uq_cds_card_uuid")),
    )
    with op.batch_alter_table("cds_card", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cds_card_invocation_id"), ["invocation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cds_card_ko_identifier"), ["ko_identifier"], unique=False
        )

    op.create_table(
        "ko_deployment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ko_version_id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("sites", sa.Text(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("by", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ko_version_id"],
            ["ko_version.id"],
            name=op.f("fk_ko_deployment_ko_version_id_ko_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ko_deployment")),
    )
    with op.batch_alter_table("ko_deployment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ko_deployment_identifier"), ["identifier"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ko_deployment_ko_version_id"), ["ko_version_id"], unique=False
        )

    op.create_table(
        "ko_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ko_version_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("by", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ko_version_id"],
            ["ko_version.id"],
            name=op.f("fk_ko_transition_ko_version_id_ko_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ko_transition")),
    )
    with op.batch_alter_table("ko_transition", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ko_transition_ko_version_id"), ["ko_version_id"], unique=False
        )

    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("card_uuid", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("ko_identifier", sa.String(length=100), nullable=False),
        sa.Column("ko_version", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("accepted_suggestions", sa.Text(), nullable=False),
        sa.Column("override_code", sa.String(length=200), nullable=True),
        sa.Column("override_system", sa.String(length=500), nullable=True),
        sa.Column("override_display", sa.String(length=500), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column("outcome_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cds_card.id"], name=op.f("fk_cds_feedback_card_id_cds_card")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_feedback")),
    )
    with op.batch_alter_table("cds_feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cds_feedback_card_id"), ["card_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cds_feedback_ko_identifier"), ["ko_identifier"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cds_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_feedback_ko_identifier"))
        batch_op.drop_index(batch_op.f("ix_cds_feedback_card_id"))

    op.drop_table("cds_feedback")
    with op.batch_alter_table("ko_transition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ko_transition_ko_version_id"))

    op.drop_table("ko_transition")
    with op.batch_alter_table("ko_deployment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ko_deployment_ko_version_id"))
        batch_op.drop_index(batch_op.f("ix_ko_deployment_identifier"))

    op.drop_table("ko_deployment")
    with op.batch_alter_table("cds_card", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_card_ko_identifier"))
        batch_op.drop_index(batch_op.f("ix_cds_card_invocation_id"))

    op.drop_table("cds_card")
    with op.batch_alter_table("ko_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ko_version_status"))
        batch_op.drop_index(batch_op.f("ix_ko_version_service_id"))
        batch_op.drop_index(batch_op.f("ix_ko_version_identifier"))

    op.drop_table("ko_version")
    op.drop_table("cds_variant_assignment")
    with op.batch_alter_table("cds_jti", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_jti_expires_at"))

    op.drop_table("cds_jti")
    with op.batch_alter_table("cds_invocation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_invocation_service_id"))
        batch_op.drop_index(batch_op.f("ix_cds_invocation_received_at"))
        batch_op.drop_index(batch_op.f("ix_cds_invocation_ko_identifier"))
        batch_op.drop_index(batch_op.f("ix_cds_invocation_hook_instance"))

    op.drop_table("cds_invocation")
    op.drop_table("cds_client")
