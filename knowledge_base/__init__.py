"""The knowledge base of past experiments (SQLAlchemy 2.x; SQLite by default, any URL works)."""

from metalearn.knowledge_base.repository import (
    DatasetInfo,
    KnowledgeBase,
    RunRecord,
    ScoredConfiguration,
    canonical_json,
    config_hash,
)

__all__ = ["DatasetInfo", "KnowledgeBase", "RunRecord", "ScoredConfiguration", "canonical_json", "config_hash"]
