"""Encryption at rest: the orgs' data keys, wrapped by the master key.

Content columns keep their type in the database (text); what they hold is encrypted by the
server (``store/crypto.py``). Values written before this revision stay readable as they are.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_data_keys")),
        sa.UniqueConstraint("org_id", name=op.f("uq_data_keys_org_id")),
    )


def downgrade() -> None:
    op.drop_table("data_keys")
