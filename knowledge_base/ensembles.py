"""Ensemble runs: an ensemble of a search's trials is stored as one run (origin ``ensemble``) whose members
and weights are rows of ``ensemble_members``, so the knowledge base keeps what the final model was."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from metalearn.knowledge_base.models import ConfigurationRow, EnsembleMemberRow, RunRow, utcnow
from metalearn.protocol import ENSEMBLE_ORIGIN
from metalearn.space import canonical_json, config_hash

#: the "space version" of ensemble configurations (they are not points of the search space)
ENSEMBLE_SPACE = "ensemble/1"


class EnsembleRecords:
    """Mixin of :class:`~metalearn.knowledge_base.KnowledgeBase`: write and read ensemble runs."""

    writing: Callable[[], AbstractContextManager[Session]]  # provided by KnowledgeBase
    reading: Callable[[], AbstractContextManager[Session]]

    def record_ensemble(self, dataset_id: int, search_id: int | None, metric: str, score: float, seconds: float,
                        members: Sequence[tuple[int, float]], seed: int | None = None) -> int:
        """Store an ensemble of runs ``members`` (run id, weight) as one run; returns its id."""
        config = {"ensemble": [{"run_id": int(r), "weight": float(w)} for r, w in members]}
        text = canonical_json(config)
        digest = config_hash(config, ENSEMBLE_SPACE)
        with self.writing() as session:
            config_id = session.scalar(select(ConfigurationRow.id).where(ConfigurationRow.config_hash == digest))
            if config_id is None:
                config_id = session.execute(insert(ConfigurationRow).returning(ConfigurationRow.id), [{
                    "space_version": ENSEMBLE_SPACE, "algorithm": "ensemble", "config_json": text,
                    "config_hash": digest, "created_at": utcnow()}]).scalar_one()
            run_id = session.execute(insert(RunRow).returning(RunRow.id), [{
                "dataset_id": dataset_id, "configuration_id": config_id, "search_id": search_id, "metric": metric,
                "score": float(score), "score_std": None, "seconds": float(seconds), "status": "success",
                "budget": 1.0, "origin": ENSEMBLE_ORIGIN, "seed": seed, "error": None, "run_key": None,
                "created_at": utcnow()}]).scalar_one()
            session.execute(insert(EnsembleMemberRow), [
                {"ensemble_run_id": run_id, "member_run_id": int(r), "weight": float(w)} for r, w in members])
            return int(run_id)

    def ensemble_of(self, search_id: int) -> dict[str, Any] | None:
        """The newest ensemble run of a search: ``{"run_id", "score", "metric", "members": [{run_id, weight}]}``."""
        with self.reading() as session:
            run = session.execute(select(RunRow).where(RunRow.search_id == search_id,
                                                       RunRow.origin == ENSEMBLE_ORIGIN)
                                  .order_by(RunRow.id.desc()).limit(1)).scalar_one_or_none()
            if run is None:
                return None
            members = session.execute(select(EnsembleMemberRow.member_run_id, EnsembleMemberRow.weight)
                                      .where(EnsembleMemberRow.ensemble_run_id == run.id)
                                      .order_by(EnsembleMemberRow.id)).all()
            return {"run_id": run.id, "score": run.score, "metric": run.metric, "seconds": run.seconds,
                    "members": [{"run_id": int(r), "weight": float(w)} for r, w in _rows(members)]}


def _rows(rows: Sequence[Any]) -> Iterator[tuple[int, float]]:
    return ((int(r[0]), float(r[1])) for r in rows)
