"""owners: the identity (API key) that started a search, and the identities that uploaded a dataset

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN, nullable (no table rebuild): existing searches have no owner, visible to admin keys and to
    # a server without keys only
    op.add_column("searches", sa.Column("owner", sa.String(length=64), nullable=True))
    op.create_index("ix_searches_owner", "searches", ["owner"], unique=False)
    # one dataset (one content hash) may be uploaded by several identities: a link table, not a column
    op.create_table(
        "dataset_owners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("n_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "owner"),
    )
    with op.batch_alter_table("dataset_owners", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_owners_dataset_id", ["dataset_id"], unique=False)
        batch_op.create_index("ix_dataset_owners_owner", ["owner"], unique=False)


def downgrade() -> None:
    op.drop_table("dataset_owners")
    op.drop_index("ix_searches_owner", table_name="searches")
    op.drop_column("searches", "owner")
