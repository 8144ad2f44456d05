"""The knowledge base of past experiments (SQLAlchemy 2.x; SQLite by default, any URL works).

Owns every read and write of stored experiments: ``models`` (tables), ``engine`` (SQLite WAL / any
URL), ``repository`` (datasets, meta-features, configurations, runs and the search lifecycle: the only
writer of a search's status), ``snapshot`` (portable export / import, the shipped seed) and ``migrate``
(Alembic). It imports only core modules (space, settings, protocol, errors), never warmstart or above.
"""

from metalearn.knowledge_base.queries import ScoredConfiguration, rank_configurations, sets_by
from metalearn.knowledge_base.repository import (
    DatasetInfo,
    KnowledgeBase,
    RunRecord,
    canonical_json,
    config_hash,
)

__all__ = ["DatasetInfo", "KnowledgeBase", "RunRecord", "ScoredConfiguration", "canonical_json", "config_hash",
           "rank_configurations", "sets_by"]
