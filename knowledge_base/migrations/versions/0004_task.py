"""the task of datasets and configurations (classification or regression)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild): existing rows are classification, as everything was before
    for table in ("datasets", "configurations"):
        op.add_column(table, sa.Column("task", sa.String(length=16), nullable=False,
                                       server_default="classification"))
        op.create_index(f"ix_{table}_task", table, ["task"], unique=False)


def downgrade() -> None:
    for table in ("datasets", "configurations"):
        op.drop_index(f"ix_{table}_task", table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("task")
