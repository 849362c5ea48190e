"""Plan history and builds: head moves (rewind and its undo), built results, plan lifecycle.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "head_moves",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("branch", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("from_id", sa.String(length=40), nullable=False),
        sa.Column("to_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_head_moves_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_head_moves")),
    )
    op.create_index("ix_head_moves_plan_branch", "head_moves", ["plan_id", "branch"])
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("archived_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("name_source", sa.String(length=20), nullable=True))
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("result", sa.Text(), nullable=True))
        batch.add_column(sa.Column("base_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("build", sa.Text(), nullable=True))
    with op.batch_alter_table("streams") as batch:
        batch.add_column(sa.Column("commit_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("streams") as batch:
        batch.drop_column("commit_message")
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("build")
        batch.drop_column("base_sha256")
        batch.drop_column("result")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("name_source")
        batch.drop_column("archived_at")
    op.drop_index("ix_head_moves_plan_branch", table_name="head_moves")
    op.drop_table("head_moves")
