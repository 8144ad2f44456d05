"""search heartbeat: the process that owns an active search and its last beat

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (("owner_pid", sa.Integer()), ("owner_host", sa.String(length=255)), ("heartbeat_at", sa.DateTime()))


def upgrade() -> None:
    # plain ADD COLUMN, nullable: no table rebuild (SQLite would cascade the runs' foreign keys on a rebuild);
    # searches stored before have no heartbeat and count as stale once they are older than the stale limit
    for name, kind in COLUMNS:
        op.add_column("searches", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (no rebuild); PostgreSQL always does
    for name, _ in reversed(COLUMNS):
        op.drop_column("searches", name)
