"""Every environment variable metalearn reads, parsed by one set of rules, for library, CLI and API.

Library and CLI:

- ``METALEARN_DB``: knowledge base, a file path (SQLite) or any SQLAlchemy URL;
  default ``<user data dir>/metalearn/knowledge_base.sqlite``.
- ``METALEARN_CACHE_DIR``: cache for datasets downloaded through ``openml``; default the
  ``datasets_cache/`` of a source checkout, else the user cache directory.
- ``METALEARN_MAX_ROWS`` (1,000,000), ``METALEARN_MAX_COLUMNS`` (5,000) and
  ``METALEARN_MAX_FILE_MB`` (1,024): the largest table / file accepted.
- ``METALEARN_MODEL_KEY``: the secret that signs model files (HMAC-SHA256; at least 16 characters).
  Unset: the key in ``METALEARN_MODEL_KEY_FILE``, default ``model.key`` beside the knowledge base of
  ``METALEARN_DB`` (the folder of its SQLite file; ``<user data dir>/metalearn/`` for a database server),
  generated at the first save (32 random bytes as hex, mode 0600). ``--db`` options never move the key: it
  follows the environment, so every command (and ``metalearn serve`` with its worker processes) of one
  environment signs and verifies with the same key. See :func:`model_key`.
- ``METALEARN_MLFLOW_URI``: an MLflow tracking URI; when set, every ``metalearn search`` is logged to it
  (as with ``--mlflow``; :mod:`metalearn.tracking`). See :func:`mlflow_uri`.

HTTP API: see :class:`ServerSettings`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from metalearn.defaults import TRIAL_TIME_LIMIT
from metalearn.errors import MetalearnError

_SOURCE_ROOT = Path(__file__).resolve().parents[1]
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _raw(name: str, env: Mapping[str, str] | None) -> str:
    return (os.environ if env is None else env).get(name, "").strip()


def env_int(name: str, default: int, minimum: int = 1, env: Mapping[str, str] | None = None) -> int:
    """The integer in ``name`` (``default`` when unset or empty); at least ``minimum``."""
    raw = _raw(name, env)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MetalearnError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise MetalearnError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """The positive finite number in ``name`` (``default`` when unset or empty)."""
    raw = _raw(name, env)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise MetalearnError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise MetalearnError(f"{name} must be a positive number, got {raw!r}")
    return value


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    """``1/0``, ``true/false``, ``yes/no`` or ``on/off`` in ``name`` (``default`` when unset or empty)."""
    raw = _raw(name, env).lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise MetalearnError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def database_url(value: str | os.PathLike[str] | None = None) -> str:
    """Turn a path or URL (or ``METALEARN_DB``, or the default location) into a SQLAlchemy URL."""
    raw = str(value) if value is not None else _raw("METALEARN_DB", None)
    if not raw:
        raw = str(Path(platformdirs.user_data_dir("metalearn")) / "knowledge_base.sqlite")
    if "://" in raw:
        return raw
    return f"sqlite:///{Path(raw).expanduser().resolve()}"


_PASSWORD_IN_URL = re.compile(r"(://[^/@:?#]*:)[^@/?#]*@")


def redact_url(url: str | os.PathLike[str]) -> str:
    """``url`` with its password replaced by ``***``: the only form in which a database URL is printed or logged."""
    text = str(url)
    if "://" not in text:
        return text
    try:
        return make_url(text).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return _PASSWORD_IN_URL.sub(r"\1***@", text)


def cache_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """Directory where datasets downloaded through ``openml`` are cached."""
    raw = str(value) if value is not None else _raw("METALEARN_CACHE_DIR", None)
    if raw:
        return Path(raw).expanduser().resolve()
    checkout_cache = _SOURCE_ROOT / "datasets_cache"
    if checkout_cache.is_dir():
        return checkout_cache
    return Path(platformdirs.user_cache_dir("metalearn")) / "datasets"


def mlflow_uri(env: Mapping[str, str] | None = None) -> str | None:
    """``METALEARN_MLFLOW_URI``: the MLflow tracking URI every search is logged to, or None (not tracked)."""
    return _raw("METALEARN_MLFLOW_URI", env) or None


@dataclass(frozen=True)
class Limits:
    """Size limits applied to every dataset a user hands in."""

    max_rows: int = 1_000_000
    max_columns: int = 5_000
    max_file_bytes: int = 1024 * 1024 * 1024

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            max_rows=env_int("METALEARN_MAX_ROWS", cls.max_rows),
            max_columns=env_int("METALEARN_MAX_COLUMNS", cls.max_columns),
            max_file_bytes=env_int("METALEARN_MAX_FILE_MB", cls.max_file_bytes // 2**20) * 2**20,
        )

    @classmethod
    def unlimited(cls) -> Limits:
        """No limit (for tables this process stored itself after checking them)."""
        return cls(max_rows=2**62, max_columns=2**62, max_file_bytes=2**62)


def hash_api_key(key: str) -> bytes:
    """SHA-256 digest of an API key."""
    return hashlib.sha256(key.encode("utf-8")).digest()


ANONYMOUS = "anonymous"  # the one identity of a server without API keys
_IDENTITY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True)
class ApiKey:
    """One API key: the identity it stands for (``name``), the SHA-256 digest of the key, and whether it is an
    admin key (an admin sees every tenant's objects)."""

    name: str
    digest: bytes = field(repr=False)
    admin: bool = False


def derived_identity(digest: bytes) -> str:
    """The identity of a key given without a name: ``key-`` and the first 8 hex digits of its SHA-256."""
    return f"key-{digest.hex()[:8]}"


def _parse_digest(text: str, variable: str) -> bytes:
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise MetalearnError(f"{variable}: a sha256: entry must be 64 hex digits")
    return digest


def parse_api_keys(raw: str, *, admin: bool = False, variable: str = "METALEARN_API_KEYS") -> tuple[ApiKey, ...]:
    """The comma-separated keys of ``raw``: ``KEY``, ``name:KEY``, ``sha256:<hex>`` or ``name:sha256:<hex>``.

    A name is 1-64 characters of ``A-Z a-z 0-9 _ . @ -`` (not ``anonymous`` nor ``sha256``); a key without one
    gets :func:`derived_identity`. A key that itself contains ``:`` must therefore be given with a name.
    """
    keys = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, rest = item.partition(":")
        if not sep or name == "sha256" or not _IDENTITY_NAME.fullmatch(name):
            name, rest = "", item
        elif not rest:
            raise MetalearnError(f"{variable}: the key of {name!r} is empty")
        if rest.startswith("sha256:"):
            digest = _parse_digest(rest[len("sha256:"):], variable)
        else:
            digest = hash_api_key(rest)
        if name.lower() == ANONYMOUS:
            raise MetalearnError(f"{variable}: {ANONYMOUS!r} is reserved for a server without keys")
        keys.append(ApiKey(name or derived_identity(digest), digest, admin))
    return tuple(keys)


def api_keys_from_env(env: Mapping[str, str] | None = None) -> tuple[ApiKey, ...]:
    """The keys of ``METALEARN_API_KEYS`` and the admin keys of ``METALEARN_API_ADMIN_KEYS``; one key cannot stand
    for two identities."""
    keys = (parse_api_keys(_raw("METALEARN_API_KEYS", env))
            + parse_api_keys(_raw("METALEARN_API_ADMIN_KEYS", env), admin=True, variable="METALEARN_API_ADMIN_KEYS"))
    seen: dict[bytes, ApiKey] = {}
    for key in keys:
        other = seen.setdefault(key.digest, key)
        if other != key:
            raise MetalearnError(f"the same API key is given for {other.name!r}{' (admin)' * other.admin} and "
                                 f"{key.name!r}{' (admin)' * key.admin}")
    admins = {key.name for key in keys if key.admin}
    mixed = sorted(admins & {key.name for key in keys if not key.admin})
    if mixed:
        raise MetalearnError(f"{', '.join(mixed)}: an identity is either admin (METALEARN_API_ADMIN_KEYS) or not, "
                             "with every one of its keys")
    return tuple(dict.fromkeys(keys))


def default_data_dir(db_url: str) -> Path:
    """A folder next to a SQLite file (``<stem>-api-data``), else the user data directory."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        return db.parent / f"{db.stem}-api-data"
    return Path(platformdirs.user_data_dir("metalearn")) / "api-data"


UNCOMPRESSED_PER_UPLOAD_BYTE = 4  # default in-memory limit of an upload: this many times the upload limit


@dataclass(frozen=True)
class ServerSettings:
    """Settings of the HTTP service (environment variable in brackets).

    - ``db_url`` [``METALEARN_DB``]: the knowledge base.
    - ``data_dir`` [``METALEARN_DATA_DIR``]: uploaded tables, models and cancel flags; default
      ``<knowledge base stem>-api-data/`` next to a SQLite file, else ``<user data dir>/metalearn/api-data``.
    - ``api_keys`` [``METALEARN_API_KEYS``, ``METALEARN_API_ADMIN_KEYS``]: comma-separated keys, each
      ``name:KEY`` (the identity that owns what the key uploads and starts) or a plain ``KEY`` (identity
      ``key-<8 hex of its SHA-256>``); ``sha256:<hex>`` instead of a key gives its digest (see
      :func:`parse_api_keys`). Admin keys see every identity's objects. When keys are set, every endpoint but
      ``/v1/health`` needs ``Authorization: Bearer <key>``; without keys every request is the one identity
      ``anonymous``, which sees everything, with no per-key quota.
    - Per-key quotas (only with keys; 429 with ``Retry-After`` beyond them): ``max_searches_per_key``
      [``METALEARN_API_MAX_SEARCHES_PER_KEY``; half of ``search_workers + search_queue``, at least 1] searches
      queued or running per identity; ``uploads_per_hour`` [``METALEARN_API_UPLOADS_PER_HOUR``; 120] upload
      requests per identity in any hour (counted per server process); ``max_stored_bytes_per_key``
      [``METALEARN_API_MAX_STORED_BYTES_PER_KEY`` or ``METALEARN_API_MAX_STORED_MB_PER_KEY``; 1,024 MiB] bytes
      of uploads kept per identity. 0 lifts the upload and stored-bytes quotas.
    - ``max_upload_bytes`` [``METALEARN_API_MAX_UPLOAD_BYTES`` or ``METALEARN_API_MAX_UPLOAD_MB``; 100 MiB],
      ``max_rows`` [``METALEARN_API_MAX_ROWS``; 1,000,000], ``max_columns`` [``METALEARN_API_MAX_COLUMNS``;
      2,000], ``max_cells`` [``METALEARN_API_MAX_CELLS``; 50,000,000]: the largest upload accepted.
    - ``max_uncompressed_bytes`` [``METALEARN_API_MAX_UNCOMPRESSED_MB``; 4 x the upload limit]: the largest
      size of an uploaded table once decompressed and decoded (parquet and sparse ARFF can be far larger in
      memory than on the wire); checked before the table is loaded.
    - ``max_body_bytes`` [``METALEARN_API_MAX_BODY_MB``; 16 MiB]: the largest JSON request body.
    - ``max_predict_rows`` [``METALEARN_API_MAX_PREDICT_ROWS``; 10,000].
    - ``search_workers`` [``METALEARN_API_SEARCH_WORKERS``; 1] searches run at once, each in its own
      process; ``search_queue`` [``METALEARN_API_SEARCH_QUEUE``; 8] more may wait, beyond that 429.
    - ``trial_time_limit`` [``METALEARN_API_TRIAL_TIME_LIMIT``; 120 s] per trial unless a request sets one.
    - ``worker_niceness`` [``METALEARN_API_WORKER_NICE``; 10]: search processes run at a lower priority.
    - ``cancel_grace`` [``METALEARN_API_CANCEL_GRACE``; 30 s]: a cancelled search still running after this
      long (a trial in progress) is killed.
    - ``seed_kb`` [``METALEARN_API_SEED``; on]: load the shipped seed into an empty knowledge base.
    - ``recover`` [``METALEARN_API_RECOVER``; on]: at startup mark searches left queued or running by a process
      that is gone ``interrupted`` (a search another live process runs is left alone).
    - ``recommender_max_age`` [``METALEARN_API_RECOMMENDER_MAX_AGE``; 2 s]: how stale recommendations may
      get while searches add runs (the recommender is updated with the new runs at most this often).
    - ``response_cache`` [``METALEARN_API_RECOMMEND_CACHE``; on]: cache recommendation responses until
      the knowledge base changes.
    - ``report_shap`` [``METALEARN_API_REPORT_SHAP``; on]: SHAP values in the model reports; off, LIME explains
      the individual predictions and a report builds in a second or two instead of about ten (SHAP's compilation in
      each report process and its model calls are most of a build).
    """

    db_url: str
    data_dir: Path
    api_keys: tuple[ApiKey, ...] = ()
    max_upload_bytes: int = 100 * 2**20
    max_rows: int = 1_000_000
    max_columns: int = 2_000
    max_cells: int = 50_000_000
    max_uncompressed_bytes: int = UNCOMPRESSED_PER_UPLOAD_BYTE * 100 * 2**20
    max_body_bytes: int = 16 * 2**20
    max_predict_rows: int = 10_000
    search_workers: int = 1
    search_queue: int = 8
    trial_time_limit: float = TRIAL_TIME_LIMIT
    worker_niceness: int = 10
    cancel_grace: float = 30.0
    seed_kb: bool = True
    recover: bool = True
    response_cache: bool = True
    report_shap: bool = True
    recommender_max_age: float = 2.0
    max_searches_per_key: int = 4
    uploads_per_hour: int = 120
    max_stored_bytes_per_key: int = 1024 * 2**20

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from ``env`` (default ``os.environ``); keyword arguments win over the environment."""
        db_url = overrides.pop("db_url", None) or database_url(_raw("METALEARN_DB", env) or None)
        raw_dir = _raw("METALEARN_DATA_DIR", env)
        data_dir = Path(raw_dir).expanduser().resolve() if raw_dir else default_data_dir(db_url)
        if _raw("METALEARN_API_MAX_UPLOAD_BYTES", env):
            upload = env_int("METALEARN_API_MAX_UPLOAD_BYTES", cls.max_upload_bytes, env=env)
        else:
            upload = env_int("METALEARN_API_MAX_UPLOAD_MB", cls.max_upload_bytes // 2**20, env=env) * 2**20
        values: dict[str, Any] = {
            "db_url": db_url, "data_dir": data_dir, "max_upload_bytes": upload,
            "api_keys": api_keys_from_env(env),
            "max_rows": env_int("METALEARN_API_MAX_ROWS", cls.max_rows, env=env),
            "max_columns": env_int("METALEARN_API_MAX_COLUMNS", cls.max_columns, env=env),
            "max_cells": env_int("METALEARN_API_MAX_CELLS", cls.max_cells, env=env),
            "max_uncompressed_bytes": env_int("METALEARN_API_MAX_UNCOMPRESSED_MB",
                                              max(1, UNCOMPRESSED_PER_UPLOAD_BYTE * upload // 2**20), env=env) * 2**20,
            "max_body_bytes": env_int("METALEARN_API_MAX_BODY_MB", cls.max_body_bytes // 2**20, env=env) * 2**20,
            "max_predict_rows": env_int("METALEARN_API_MAX_PREDICT_ROWS", cls.max_predict_rows, env=env),
            "search_workers": env_int("METALEARN_API_SEARCH_WORKERS", cls.search_workers, env=env),
            "search_queue": env_int("METALEARN_API_SEARCH_QUEUE", cls.search_queue, minimum=0, env=env),
            "trial_time_limit": env_float("METALEARN_API_TRIAL_TIME_LIMIT", cls.trial_time_limit, env=env),
            "worker_niceness": env_int("METALEARN_API_WORKER_NICE", cls.worker_niceness, minimum=0, env=env),
            "cancel_grace": env_float("METALEARN_API_CANCEL_GRACE", cls.cancel_grace, env=env),
            "seed_kb": env_bool("METALEARN_API_SEED", cls.seed_kb, env=env),
            "recover": env_bool("METALEARN_API_RECOVER", cls.recover, env=env),
            "response_cache": env_bool("METALEARN_API_RECOMMEND_CACHE", cls.response_cache, env=env),
            "report_shap": env_bool("METALEARN_API_REPORT_SHAP", cls.report_shap, env=env),
            "recommender_max_age": env_float("METALEARN_API_RECOMMENDER_MAX_AGE", cls.recommender_max_age, env=env),
            "uploads_per_hour": env_int("METALEARN_API_UPLOADS_PER_HOUR", cls.uploads_per_hour, minimum=0, env=env),
            "max_stored_bytes_per_key": _stored_bytes_per_key(env),
        }
        capacity = values["search_workers"] + values["search_queue"]
        values["max_searches_per_key"] = env_int("METALEARN_API_MAX_SEARCHES_PER_KEY", max(1, capacity // 2), env=env)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise MetalearnError(f"unknown server settings: {', '.join(sorted(unknown))}")
        return cls(**(values | overrides))

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys)

    @property
    def api_key_hashes(self) -> tuple[bytes, ...]:
        """The digests of every key (admin keys included)."""
        return tuple(key.digest for key in self.api_keys)


def _stored_bytes_per_key(env: Mapping[str, str] | None) -> int:
    if _raw("METALEARN_API_MAX_STORED_BYTES_PER_KEY", env):
        return env_int("METALEARN_API_MAX_STORED_BYTES_PER_KEY", 0, minimum=0, env=env)
    default = ServerSettings.max_stored_bytes_per_key // 2**20
    return env_int("METALEARN_API_MAX_STORED_MB_PER_KEY", default, minimum=0, env=env) * 2**20


MODEL_KEY_FILE = "model.key"
MIN_MODEL_KEY_CHARS = 16


@dataclass(frozen=True)
class ModelKey:
    """The secret that signs model files and where it came from (an environment variable or a file)."""

    secret: bytes = field(repr=False)
    source: str

    @property
    def id(self) -> str:
        """A short public fingerprint of the key, written into signed files to tell keys apart."""
        return hashlib.sha256(b"metalearn-model-key:" + self.secret).hexdigest()[:16]


def model_key_path(env: Mapping[str, str] | None = None) -> Path:
    """``METALEARN_MODEL_KEY_FILE``, else ``model.key`` beside the knowledge base of ``METALEARN_DB``."""
    raw = _raw("METALEARN_MODEL_KEY_FILE", env)
    if raw:
        return Path(raw).expanduser().resolve()
    try:
        url = make_url(database_url(_raw("METALEARN_DB", env) or None))
    except (ArgumentError, ValueError):
        url = None  # the knowledge base itself reports a malformed URL
    if url is not None and url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / MODEL_KEY_FILE
    return Path(platformdirs.user_data_dir("metalearn")) / MODEL_KEY_FILE


def model_key(env: Mapping[str, str] | None = None, *, create: bool = True) -> ModelKey | None:
    """The model-signing key: ``METALEARN_MODEL_KEY``, else the key file (generated when missing and ``create``).

    The key is the text of the variable or file, stripped, as UTF-8 bytes: ``METALEARN_MODEL_KEY="$(cat
    model.key)"`` is the same key as the file. ``None`` when there is no key file and ``create`` is false.
    """
    raw = _raw("METALEARN_MODEL_KEY", env)
    if raw:
        if len(raw) < MIN_MODEL_KEY_CHARS:
            raise MetalearnError(f"METALEARN_MODEL_KEY must be at least {MIN_MODEL_KEY_CHARS} characters")
        return ModelKey(raw.encode("utf-8"), "METALEARN_MODEL_KEY")
    path = model_key_path(env)
    if not path.is_file():
        if not create:
            return None
        _create_key_file(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise MetalearnError(f"cannot read the model key {path}: {exc}") from None
    if len(text) < MIN_MODEL_KEY_CHARS:
        raise MetalearnError(f"the model key {path} is shorter than {MIN_MODEL_KEY_CHARS} characters")
    return ModelKey(text.encode("utf-8"), str(path))


def pin_model_key_file(env: MutableMapping[str, str] | None = None) -> None:
    """Unless ``METALEARN_MODEL_KEY`` is set, set ``METALEARN_MODEL_KEY_FILE`` in ``env`` (default ``os.environ``)
    to the key file :func:`model_key_path` finds now: the key then stays put when ``METALEARN_DB`` changes later
    (``metalearn serve`` hands its worker processes the knowledge base through it)."""
    environ = os.environ if env is None else env
    if not _raw("METALEARN_MODEL_KEY", environ):
        environ["METALEARN_MODEL_KEY_FILE"] = str(model_key_path(environ))


def _create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` (mode 0600) unless another process got there first."""
    key = (secrets.token_hex(32) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(key)
            os.link(tmp, path)  # atomic, and never replaces a key another process has just written
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: create the file exclusively instead
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(key)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise MetalearnError(f"cannot create the model key {path}: {exc} (or set METALEARN_MODEL_KEY)") from None
