"""Run keys: the one home of the key formats that make seed builds resumable and snapshot merges idempotent.

A run's ``run_key`` is unique in a knowledge base: :meth:`KnowledgeBase.record_runs` and
:func:`~metalearn.knowledge_base.snapshot.import_snapshot` skip a run whose key is stored. Keys must therefore
mean the same experiment in every knowledge base:

- a seed search trial: ``seed:<space version>:<dataset hash16>:<seed>:<trial>`` (:func:`seed_prefix` + trial);
- a cross-evaluation run: ``xeval:<dataset hash16>:<configuration hash16>`` (:func:`xeval_key`);
- an exported run without a key: ``snapshot:<dataset hash16>:<run id>`` (:func:`snapshot_key`).

``hash16`` is the first 16 hex characters of the dataset's ``content_hash`` or the configuration's
``config_hash``. Keys written before migration 0007 (``seed:<hash16>:<seed>:<trial>``, the same for every space
version, and ``xeval:<hash16>:<configuration id>``, a database-local id) are rewritten by
:func:`convert_legacy_key`, in stored knowledge bases (migration 0007) and in imported snapshots.
"""

from __future__ import annotations

import re

#: characters of a content or configuration hash kept in a key
HASH_CHARS = 16

# a legacy configuration id has at most 15 digits, so a new key whose configuration hash16 is all digits
# (about 1 in 1,850 configurations) is never taken for a legacy one
_LEGACY_SEED = re.compile(r"seed:(?P<dataset>[0-9a-f]{16}):(?P<seed>-?[0-9]+):(?P<trial>[0-9]+)")
_LEGACY_XEVAL = re.compile(r"xeval:(?P<dataset>[0-9a-f]{16}):[0-9]{1,15}")


def short_hash(digest: str) -> str:
    """The part of a content or configuration hash that goes into a key."""
    return digest[:HASH_CHARS]


def seed_prefix(space_version: str, content_hash: str, seed: int) -> str:
    """Prefix of the keys of a seed search's trials; trial ``n`` is stored as ``f"{prefix}{n}"``."""
    return f"seed:{space_version}:{short_hash(content_hash)}:{seed}:"


def xeval_prefix(content_hash: str) -> str:
    """Prefix of the keys of the cross-evaluation runs on one dataset."""
    return f"xeval:{short_hash(content_hash)}:"


def xeval_key(content_hash: str, config_hash: str) -> str:
    """Key of the cross-evaluation run of one configuration (by its ``config_hash``) on one dataset."""
    return f"{xeval_prefix(content_hash)}{short_hash(config_hash)}"


def snapshot_key(content_hash: str, run_id: int) -> str:
    """Key an exported snapshot gives a run stored without one."""
    return f"snapshot:{short_hash(content_hash)}:{run_id}"


def is_legacy_key(key: str | None) -> bool:
    """Whether ``key`` is in a format written before migration 0007 (see :func:`convert_legacy_key`)."""
    return key is not None and bool(_LEGACY_SEED.fullmatch(key) or _LEGACY_XEVAL.fullmatch(key))


def convert_legacy_key(key: str | None, space_version: str, config_hash: str) -> str | None:
    """The current key of a run stored with ``key``; ``space_version`` and ``config_hash`` are those of the run's
    own configuration. Keys in any other format (current ones, ``snapshot:`` and other keys, None) are returned
    unchanged, so converting twice changes nothing.

    - ``seed:<hash16>:<seed>:<trial>`` -> ``seed:<space_version>:<hash16>:<seed>:<trial>``
    - ``xeval:<hash16>:<configuration id>`` -> ``xeval:<hash16>:<config_hash[:16]>`` (the id in the key is
      ignored: it is local to the database that wrote it)

    FROZEN: migration 0007 applies this function to stored knowledge bases, so its behaviour must never change;
    a new key format needs a new function and a new migration.
    """
    if key is None:
        return None
    seed = _LEGACY_SEED.fullmatch(key)
    if seed:
        return f"seed:{space_version}:{seed['dataset']}:{seed['seed']}:{seed['trial']}"
    xeval = _LEGACY_XEVAL.fullmatch(key)
    if xeval:
        return f"xeval:{xeval['dataset']}:{config_hash[:16]}"
    return key
