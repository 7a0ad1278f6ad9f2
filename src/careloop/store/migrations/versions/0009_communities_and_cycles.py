"""community: learning communities, their charters, proposals and votes, and learning cycles

Communities with members (community roles), invitations, versioned
charters, proposals and votes, priorities, the decision and reflection log,
NASSS assessments, the knowledge objects a community owns, and learning
(PDSA) cycles with the measures they watch: one revision, so that an
installation gains the whole of ``careloop.community`` at once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "community",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("scale", sa.String(length=20), nullable=False),
        sa.Column("sites", sa.Text(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community")),
        sa.UniqueConstraint("name", name=op.f("uq_community_name")),
    )
    op.create_table(
        "charter_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("goals", sa.Text(), nullable=False),
        sa.Column("decision_rule", sa.String(length=20), nullable=False),
        sa.Column("quorum", sa.Float(), nullable=False),
        sa.Column("approvers", sa.Text(), nullable=False),
        sa.Column("requires_patient_reviewer", sa.Boolean(), nullable=False),
        sa.Column("meeting_cadence", sa.String(length=200), nullable=False),
        sa.Column("data_access_agreement", sa.Text(), nullable=False),
        sa.Column("adopted_by_proposal_id", sa.Integer(), nullable=True),
        sa.Column("adopted_by", sa.String(length=254), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_charter_version_community_id_community"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charter_version")),
        sa.UniqueConstraint("community_id", "number", name=op.f("uq_charter_version_community_id")),
    )
    with op.batch_alter_table("charter_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_charter_version_community_id"), ["community_id"], unique=False
        )

    op.create_table(
        "community_invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("invited_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_community_invitation_community_id_community"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_invitation")),
    )
    with op.batch_alter_table("community_invitation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_invitation_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_community_invitation_email"), ["email"], unique=False)

    op.create_table(
        "community_knowledge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("pilot_sites", sa.Text(), nullable=False),
        sa.Column("assigned_by", sa.String(length=254), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_community_knowledge_community_id_community"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_knowledge")),
        sa.UniqueConstraint("identifier", name=op.f("uq_community_knowledge_identifier")),
    )
    with op.batch_alter_table("community_knowledge", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_knowledge_community_id"), ["community_id"], unique=False
        )

    op.create_table(
        "learning_cycle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("aim", sa.Text(), nullable=False),
        sa.Column("predictions", sa.Text(), nullable=False),
        sa.Column("questions", sa.Text(), nullable=False),
        sa.Column("knowledge_ref", sa.String(length=150), nullable=True),
        sa.Column("plan_who", sa.Text(), nullable=False),
        sa.Column("plan_where", sa.Text(), nullable=False),
        sa.Column("plan_when", sa.Date(), nullable=True),
        sa.Column("plan_sites", sa.Text(), nullable=False),
        sa.Column("do_start", sa.Date(), nullable=True),
        sa.Column("do_end", sa.Date(), nullable=True),
        sa.Column("do_sites", sa.Text(), nullable=False),
        sa.Column("do_what", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("randomised", sa.Boolean(), nullable=False),
        sa.Column("determination_kind", sa.String(length=30), nullable=True),
        sa.Column("determination_ref", sa.String(length=200), nullable=True),
        sa.Column("act_decision", sa.String(length=10), nullable=True),
        sa.Column("act_rationale", sa.Text(), nullable=False),
        sa.Column("act_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_learning_cycle_community_id_community"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["learning_cycle.id"],
            name=op.f("fk_learning_cycle_parent_id_learning_cycle"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learning_cycle")),
    )
    with op.batch_alter_table("learning_cycle", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_learning_cycle_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_learning_cycle_parent_id"), ["parent_id"], unique=False
        )

    op.create_table(
        "community_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("charter_version_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.String(length=254), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(length=254), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["charter_version_id"],
            ["charter_version.id"],
            name=op.f("fk_community_proposal_charter_version_id_charter_version"),
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_community_proposal_community_id_community"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_proposal")),
    )
    with op.batch_alter_table("community_proposal", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_proposal_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_community_proposal_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_community_proposal_subject"), ["subject"], unique=False
        )

    op.create_table(
        "learning_cycle_measure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("measure_id", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["learning_cycle.id"],
            name=op.f("fk_learning_cycle_measure_cycle_id_learning_cycle"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learning_cycle_measure")),
        sa.UniqueConstraint(
            "cycle_id", "measure_id", name=op.f("uq_learning_cycle_measure_cycle_id")
        ),
    )
    with op.batch_alter_table("learning_cycle_measure", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_learning_cycle_measure_cycle_id"), ["cycle_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_learning_cycle_measure_measure_id"), ["measure_id"], unique=False
        )

    op.create_table(
        "community_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("did_not_work", sa.Text(), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("links", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=254), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_community_decision_community_id_community"),
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["community_proposal.id"],
            name=op.f("fk_community_decision_proposal_id_community_proposal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_decision")),
    )
    with op.batch_alter_table("community_decision", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_decision_community_id"), ["community_id"], unique=False
        )

    op.create_table(
        "community_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_community_member_community_id_community"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_community_member_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_member")),
        sa.UniqueConstraint(
            "community_id", "user_id", name=op.f("uq_community_member_community_id")
        ),
    )
    with op.batch_alter_table("community_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_member_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_community_member_user_id"), ["user_id"], unique=False)

    op.create_table(
        "community_priority",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("proposed_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_community_priority_community_id_community"),
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["community_proposal.id"],
            name=op.f("fk_community_priority_proposal_id_community_proposal"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_priority")),
    )
    with op.batch_alter_table("community_priority", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_priority_community_id"), ["community_id"], unique=False
        )

    op.create_table(
        "community_vote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=254), nullable=False),
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["community_proposal.id"],
            name=op.f("fk_community_vote_proposal_id_community_proposal"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_community_vote_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_vote")),
        sa.UniqueConstraint("proposal_id", "user_id", name=op.f("uq_community_vote_proposal_id")),
    )
    with op.batch_alter_table("community_vote", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_community_vote_proposal_id"), ["proposal_id"], unique=False
        )

    op.create_table(
        "nasss_assessment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("ratings", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("assessed_by", sa.String(length=254), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_nasss_assessment_community_id_community"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_nasss_assessment_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nasss_assessment")),
    )
    with op.batch_alter_table("nasss_assessment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nasss_assessment_community_id"), ["community_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_nasss_assessment_subject"), ["subject"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nasss_assessment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nasss_assessment_subject"))
        batch_op.drop_index(batch_op.f("ix_nasss_assessment_community_id"))

    op.drop_table("nasss_assessment")
    with op.batch_alter_table("community_vote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_vote_proposal_id"))

    op.drop_table("community_vote")
    with op.batch_alter_table("community_priority", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_priority_community_id"))

    op.drop_table("community_priority")
    with op.batch_alter_table("community_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_member_user_id"))
        batch_op.drop_index(batch_op.f("ix_community_member_community_id"))

    op.drop_table("community_member")
    with op.batch_alter_table("community_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_decision_community_id"))

    op.drop_table("community_decision")
    with op.batch_alter_table("learning_cycle_measure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learning_cycle_measure_measure_id"))
        batch_op.drop_index(batch_op.f("ix_learning_cycle_measure_cycle_id"))

    op.drop_table("learning_cycle_measure")
    with op.batch_alter_table("community_proposal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_proposal_subject"))
        batch_op.drop_index(batch_op.f("ix_community_proposal_status"))
        batch_op.drop_index(batch_op.f("ix_community_proposal_community_id"))

    op.drop_table("community_proposal")
    with op.batch_alter_table("learning_cycle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learning_cycle_parent_id"))
        batch_op.drop_index(batch_op.f("ix_learning_cycle_community_id"))

    op.drop_table("learning_cycle")
    with op.batch_alter_table("community_knowledge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_knowledge_community_id"))

    op.drop_table("community_knowledge")
    with op.batch_alter_table("community_invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_community_invitation_email"))
        batch_op.drop_index(batch_op.f("ix_community_invitation_community_id"))

    op.drop_table("community_invitation")
    with op.batch_alter_table("charter_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_charter_version_community_id"))

    op.drop_table("charter_version")
    op.drop_table("community")
