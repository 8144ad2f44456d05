"""index runs by origin and budget (stats by origin, full-budget filters)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_origin", ["origin"], unique=False)
        batch_op.create_index("ix_runs_budget", ["budget"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_budget")
        batch_op.drop_index("ix_runs_origin")
