"""Alembic migrations of the knowledge base schema (run by ``metalearn kb upgrade`` and on first use)."""
