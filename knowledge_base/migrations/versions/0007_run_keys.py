"""run keys that survive a new space version and a merge of knowledge bases

Seed search keys gain the space version of the run's configuration (``seed:<hash16>:<seed>:<trial>`` ->
``seed:<space version>:<hash16>:<seed>:<trial>``), cross-evaluation keys name the configuration by its hash
instead of a database-local id (``xeval:<hash16>:<id>`` -> ``xeval:<hash16>:<config hash16>``); see
:mod:`metalearn.knowledge_base.run_keys`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from metalearn.knowledge_base.run_keys import convert_legacy_key

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: runs read and rewritten per round trip
BATCH = 5000

# the tables as this revision knows them (not the ORM models, which follow the newest schema)
runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("run_key", sa.String),
                sa.column("configuration_id", sa.Integer))
configurations = sa.table("configurations", sa.column("id", sa.Integer), sa.column("space_version", sa.String),
                          sa.column("config_hash", sa.String))


def _stored(connection: sa.Connection, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), 500):
        found.update(connection.scalars(sa.select(runs.c.run_key).where(runs.c.run_key.in_(keys[i:i + 500]))))
    return found


def upgrade() -> None:
    # in place, in batches by run id; keys in another format (current ones included) are left alone, so running it
    # again changes nothing. A legacy key whose new form is already stored (the same run imported twice under two
    # database-local ids) keeps its legacy key rather than break the unique constraint.
    connection = op.get_bind()
    query = (sa.select(runs.c.id, runs.c.run_key, configurations.c.space_version, configurations.c.config_hash)
             .join(configurations, configurations.c.id == runs.c.configuration_id)
             .where(sa.or_(runs.c.run_key.like("seed:%"), runs.c.run_key.like("xeval:%")))
             .order_by(runs.c.id).limit(BATCH))
    update = (sa.update(runs).where(runs.c.id == sa.bindparam("run_id"))
              .values(run_key=sa.bindparam("new_key")))
    last = 0
    while rows := connection.execute(query.where(runs.c.id > last)).all():
        last = rows[-1].id
        changes = {}
        for row in rows:
            new = convert_legacy_key(row.run_key, row.space_version, row.config_hash)
            if new != row.run_key:
                changes[row.id] = new
        taken = _stored(connection, list(changes.values()))
        updates = []
        for run_id, new in changes.items():
            if new not in taken:
                taken.add(new)
                updates.append({"run_id": run_id, "new_key": new})
        if updates:
            connection.execute(update, updates)


def downgrade() -> None:
    # no-op: the new keys stay (still unique, still deduplicating imports); older code does not recognise them as
    # its seed keys, so a seed build resumed by it would repeat trials. Restoring the legacy keys is not worth it:
    # they are the ambiguous ones this revision removes.
    pass
