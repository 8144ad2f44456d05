"""Schema migrations with Alembic: a user's knowledge base upgrades in place, without loss."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the schema to ``revision``; returns (revision before, revision after)."""
    before = current_revision(engine)
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return before, current_revision(engine) or ""


def stamp(engine: Engine, revision: str) -> None:
    """Record ``revision`` as applied without running it (for schemas created before migrations)."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.stamp(config, revision)
