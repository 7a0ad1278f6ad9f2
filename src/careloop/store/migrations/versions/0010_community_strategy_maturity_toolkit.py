"""community: aims with driver diagrams, maturity ratings, the toolkit, behaviour-change designs

A community's aims (what, how much, by when) with their driver diagram and
family of measures; members' maturity ratings in rounds; toolkit items a
community adds, members' ratings of tools and the tools each cycle used;
and a cycle's COM-B / behaviour change wheel design.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def _index(table: str, column: str, unique: bool = False) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=unique)


def upgrade() -> None:
    op.create_table(
        "community_aim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("how_much", sa.Text(), nullable=False),
        sa.Column("by_when", sa.Date(), nullable=False),
        sa.Column("drivers", sa.Text(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_community_aim_community_id_community")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_aim")),
    )
    _index("community_aim", "community_id")
    op.create_table(
        "maturity_rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.String(length=40), nullable=False),
        sa.Column("ratings", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("rated_by", sa.String(length=254), nullable=False),
        sa.Column("rated_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_maturity_rating_community_id_community"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_maturity_rating_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maturity_rating")),
    )
    _index("maturity_rating", "community_id")
    _index("maturity_rating", "round")
    op.create_table(
        "toolkit_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("stages", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_toolkit_item_community_id_community")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_toolkit_item")),
        sa.UniqueConstraint("community_id", "key", name=op.f("uq_toolkit_item_community_id")),
    )
    _index("toolkit_item", "community_id")
    op.create_table(
        "toolkit_rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("rated_by", sa.String(length=254), nullable=False),
        sa.Column("rated_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_toolkit_rating_community_id_community"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_toolkit_rating_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_toolkit_rating")),
        sa.UniqueConstraint(
            "community_id", "tool", "user_id", name=op.f("uq_toolkit_rating_community_id")
        ),
    )
    _index("toolkit_rating", "community_id")
    op.create_table(
        "toolkit_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=80), nullable=False),
        sa.Column("recorded_by", sa.String(length=254), nullable=False),
        sa.Column("recorded_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"], ["learning_cycle.id"], name=op.f("fk_toolkit_use_cycle_id_learning_cycle")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_toolkit_use")),
        sa.UniqueConstraint("cycle_id", "tool", name=op.f("uq_toolkit_use_cycle_id")),
    )
    _index("toolkit_use", "cycle_id")
    op.create_table(
        "cycle_behaviour_design",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("behaviour", sa.Text(), nullable=False),
        sa.Column("com_b", sa.Text(), nullable=False),
        sa.Column("functions", sa.Text(), nullable=False),
        sa.Column("policies", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=254), nullable=False),
        sa.Column("recorded_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"],
            ["learning_cycle.id"],
            name=op.f("fk_cycle_behaviour_design_cycle_id_learning_cycle"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycle_behaviour_design")),
        sa.UniqueConstraint("cycle_id", name=op.f("uq_cycle_behaviour_design_cycle_id")),
    )


def downgrade() -> None:
    for table in (
        "cycle_behaviour_design",
        "toolkit_use",
        "toolkit_rating",
        "toolkit_item",
        "maturity_rating",
        "community_aim",
    ):
        op.drop_table(table)
