"""ensemble members: the runs an ensemble run (origin ``ensemble``) averages, with their weights

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
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
        "ensemble_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ensemble_run_id", sa.Integer(), nullable=False),
        sa.Column("member_run_id", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["ensemble_run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["member_run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ensemble_members", schema=None) as batch_op:
        batch_op.create_index("ix_ensemble_members_ensemble_run_id", ["ensemble_run_id"], unique=False)
        batch_op.create_index("ix_ensemble_members_member_run_id", ["member_run_id"], unique=False)


def downgrade() -> None:
    op.drop_table("ensemble_members")
