"""Settings read from the environment, with defaults that work on a fresh machine.

- ``METALEARN_DB``: knowledge base, a file path (SQLite) or any SQLAlchemy URL;
  default ``<user data dir>/metalearn/knowledge_base.sqlite``.
- ``METALEARN_CACHE_DIR``: cache for datasets downloaded through ``openml``; default the
  ``datasets_cache/`` of a source checkout, else the user cache directory.
- ``METALEARN_MAX_ROWS`` (1,000,000), ``METALEARN_MAX_COLUMNS`` (5,000) and
  ``METALEARN_MAX_FILE_MB`` (1,024): the largest table / file accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from metalearn.errors import MetalearnError

_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MetalearnError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise MetalearnError(f"{name} must be positive, got {value}")
    return value


def database_url(value: str | os.PathLike[str] | None = None) -> str:
    """Turn a path or URL (or ``METALEARN_DB``, or the default location) into a SQLAlchemy URL."""
    raw = str(value) if value is not None else os.environ.get("METALEARN_DB", "").strip()
    if not raw:
        data_dir = Path(platformdirs.user_data_dir("metalearn"))
        raw = str(data_dir / "knowledge_base.sqlite")
    if "://" in raw:
        return raw
    path = Path(raw).expanduser().resolve()
    return f"sqlite:///{path}"


def cache_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """Directory where datasets downloaded through ``openml`` are cached."""
    raw = str(value) if value is not None else os.environ.get("METALEARN_CACHE_DIR", "").strip()
    if raw:
        return Path(raw).expanduser().resolve()
    checkout_cache = _SOURCE_ROOT / "datasets_cache"
    if checkout_cache.is_dir():
        return checkout_cache
    return Path(platformdirs.user_cache_dir("metalearn")) / "datasets"


@dataclass(frozen=True)
class Limits:
    """Size limits applied to every dataset a user hands in."""

    max_rows: int = 1_000_000
    max_columns: int = 5_000
    max_file_bytes: int = 1024 * 1024 * 1024

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            max_rows=_int_env("METALEARN_MAX_ROWS", cls.max_rows),
            max_columns=_int_env("METALEARN_MAX_COLUMNS", cls.max_columns),
            max_file_bytes=_int_env("METALEARN_MAX_FILE_MB", cls.max_file_bytes // 2**20) * 2**20,
        )
