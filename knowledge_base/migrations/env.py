"""Alembic environment: the connection comes from :func:`metalearn.knowledge_base.migrate.upgrade`."""

from __future__ import annotations

from alembic import context

from metalearn.knowledge_base.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
