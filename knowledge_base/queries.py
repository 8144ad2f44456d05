"""Read-only queries over the runs that the recommender, the seeding and the statistics work from."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from metalearn.knowledge_base.models import ConfigurationRow, DatasetRow, MetaFeatureRow, RunRow, SearchRow
from metalearn.protocol import CROSS_EVAL_ORIGIN, ENSEMBLE_ORIGIN, TASKS


@dataclass(frozen=True)
class ScoredConfiguration:
    """A configuration with its (mean) score on one dataset."""

    configuration_id: int
    algorithm: str
    config: dict[str, Any]
    score: float
    std: float | None
    n_runs: int


#: columns of :meth:`EvidenceQueries.performance` (plus ``std`` when asked for)
PERFORMANCE_COLUMNS = ["dataset_id", "configuration_id", "algorithm", "score", "n_runs", "seconds"]


def rows_frame(rows: Iterable[Any], columns: list[str]) -> pd.DataFrame:
    """A frame of query result rows, made from plain tuples: pandas probes every SQLAlchemy ``Row`` for
    attributes (about 0.5 s for the 65,000 rows of the shipped seed's performance table, 5x the tuples)."""
    return pd.DataFrame([tuple(row) for row in rows], columns=columns)


def _frame(rows: Iterable[Any], with_std: bool) -> pd.DataFrame:
    return rows_frame(rows, PERFORMANCE_COLUMNS + (["std"] if with_std else []))


def sets_by(frame: pd.DataFrame, key: str, value: str) -> dict[int, frozenset[int]]:
    """``{key: frozenset of its values}`` of two integer columns, in one pass over plain ints (a pandas group per
    key took 0.4 s for the thousands of configurations of the shipped seed's discovery table)."""
    groups: dict[int, list[int]] = {}
    for k, v in zip(frame[key].astype("int64").tolist(), frame[value].astype("int64").tolist(), strict=True):
        groups.setdefault(k, []).append(v)
    return {k: frozenset(vs) for k, vs in groups.items()}


def rank_configurations(performance: pd.DataFrame) -> pd.DataFrame:
    """The rows of a performance table (``dataset_id``, ``configuration_id``, ``score``, ...) ordered by dataset
    and, within a dataset, best first, with their 0-based ``rank`` there: the higher mean score first, ties broken
    by the lower configuration id, an undefined score (NaN) last. The one definition of a dataset's best
    configurations (the recommender's pooling reasons, the seed's cross-evaluation pool, the studio)."""
    ranked = performance.sort_values(["dataset_id", "score", "configuration_id"], ascending=[True, False, True],
                                     na_position="last")
    ranked["rank"] = ranked.groupby("dataset_id").cumcount()
    return ranked


class EvidenceQueries:
    """Mixin of :class:`~metalearn.knowledge_base.KnowledgeBase`: the performance matrix, where configurations
    were found, why they were pooled, the best configurations of a dataset and the statistics."""

    reading: Callable[[], AbstractContextManager[Session]]  # provided by KnowledgeBase

    def performance(self, metric: str, space_version: str | Collection[str] | None = None,
                    budget: float = 1.0, dataset_ids: Collection[int] | None = None,
                    searched_only: bool = False, with_std: bool = False) -> pd.DataFrame:
        """Mean score and mean seconds of every (dataset, configuration) pair with successful full-budget runs
        (ensemble runs, which are not points of the search space, left out); only of ``dataset_ids`` when given,
        and only of the searches' own runs (no cross-evaluation) when ``searched_only``. ``with_std`` adds a
        ``std`` column: the largest stored fold standard deviation of the pair's runs."""
        query = self._performance_query(metric, space_version, budget, dataset_ids, searched_only, with_std)
        with self.reading() as session:
            return _frame(session.execute(query), with_std)

    def ranked_configurations(self, metric: str, space_version: str | Collection[str] | None = None,
                              budget: float = 1.0, dataset_ids: Collection[int] | None = None,
                              searched_only: bool = False, with_std: bool = False) -> pd.DataFrame:
        """:meth:`performance` (same arguments) with each dataset's configurations best first and a 0-based
        ``rank`` column (see :func:`rank_configurations`)."""
        return rank_configurations(self.performance(metric, space_version, budget, dataset_ids, searched_only,
                                                    with_std))

    @staticmethod
    def _performance_query(metric: str, space_version: str | Collection[str] | None, budget: float,
                           dataset_ids: Collection[int] | None, searched_only: bool, with_std: bool) -> Select:
        """The query of :meth:`performance`."""
        excluded = (ENSEMBLE_ORIGIN, CROSS_EVAL_ORIGIN) if searched_only else (ENSEMBLE_ORIGIN,)
        columns = [RunRow.dataset_id, RunRow.configuration_id, ConfigurationRow.algorithm,
                   func.avg(RunRow.score).label("score"), func.count().label("n_runs"),
                   func.avg(RunRow.seconds).label("seconds")]
        query = (select(*columns, *([func.max(RunRow.score_std).label("std")] if with_std else []))
                 .join(ConfigurationRow, ConfigurationRow.id == RunRow.configuration_id)
                 .where(RunRow.metric == metric, RunRow.status == "success", RunRow.budget == budget,
                        RunRow.origin.not_in(excluded))
                 .group_by(RunRow.dataset_id, RunRow.configuration_id, ConfigurationRow.algorithm))
        if space_version is not None:
            versions = [space_version] if isinstance(space_version, str) else list(space_version)
            query = query.where(ConfigurationRow.space_version.in_(versions))
        if dataset_ids is not None:
            query = query.where(RunRow.dataset_id.in_(list(dataset_ids)))
        return query

    def discovery(self, dataset_ids: Collection[int] | None = None) -> pd.DataFrame:
        """Distinct (configuration_id, dataset_id) pairs where a search proposed the configuration (on
        ``dataset_ids`` when given).

        Cross-evaluation runs (origin ``cross_eval``) are left out: they copy a configuration found on
        one dataset to the others, so they say nothing about where it came from.
        """
        query = (select(RunRow.configuration_id, RunRow.dataset_id).where(RunRow.origin != CROSS_EVAL_ORIGIN)
                 .distinct())
        if dataset_ids is not None:
            query = query.where(RunRow.dataset_id.in_(list(dataset_ids)))
        with self.reading() as session:
            return rows_frame(session.execute(query), ["configuration_id", "dataset_id"])

    def pooled_by(self, metric: str, dataset_ids: Collection[int] | None = None) -> dict[int, frozenset[int]]:
        """For each cross-evaluated configuration, the datasets whose own searches found it best (rank 0 of
        :func:`rank_configurations` over the searches' own runs): the reason it was pooled for cross-evaluation
        (library defaults, pooled for every dataset, have none). Only the winners among ``dataset_ids`` when
        given."""
        searched = self._performance_query(metric, None, 1.0, dataset_ids, searched_only=True, with_std=False)
        pooled = select(RunRow.configuration_id).where(RunRow.origin == CROSS_EVAL_ORIGIN).distinct()
        with self.reading() as session:  # one read: the scores and the pool as of the same moment
            scores = _frame(session.execute(searched), with_std=False)
            crossed = set(session.scalars(pooled))
        if scores.empty:
            return {}
        ranked = rank_configurations(scores)
        winners = ranked[(ranked["rank"] == 0) & ranked["configuration_id"].isin(crossed)]
        return sets_by(winners, "configuration_id", "dataset_id")

    def latest_ids(self) -> tuple[int, int]:
        """The largest run id and meta-feature id (0 when empty)."""
        with self.reading() as session:
            return (int(session.scalar(select(func.max(RunRow.id))) or 0),
                    int(session.scalar(select(func.max(MetaFeatureRow.id))) or 0))

    def changes_since(self, run_id: int, metafeature_id: int) -> tuple[set[int], set[int], int, int]:
        """What was added after the given largest ids: the datasets with new runs, the datasets with new
        meta-feature vectors, and the new largest run and meta-feature ids (primary-key range scans)."""
        with self.reading() as session:
            runs = session.execute(select(RunRow.dataset_id, func.max(RunRow.id)).where(RunRow.id > run_id)
                                   .group_by(RunRow.dataset_id)).all()
            features = session.execute(select(MetaFeatureRow.dataset_id, func.max(MetaFeatureRow.id))
                                       .where(MetaFeatureRow.id > metafeature_id)
                                       .group_by(MetaFeatureRow.dataset_id)).all()
        return ({int(d) for d, _ in runs}, {int(d) for d, _ in features},
                max([run_id, *(int(i) for _, i in runs)]), max([metafeature_id, *(int(i) for _, i in features)]))

    def best_configurations(self, dataset_id: int, metric: str, limit: int = 10,
                            space_version: str | Collection[str] | None = None,
                            budget: float = 1.0) -> list[ScoredConfiguration]:
        """The ``limit`` best configurations seen on a dataset (cross-evaluation included), in the order of
        :func:`rank_configurations`."""
        top = self.ranked_configurations(metric, space_version, budget, [dataset_id], with_std=True).head(limit)
        configs = self.configurations(int(c) for c in top["configuration_id"])
        return [ScoredConfiguration(int(r.configuration_id), r.algorithm, configs[int(r.configuration_id)],
                                    float(r.score), None if pd.isna(r.std) else float(r.std), int(r.n_runs))
                for r in top.itertuples(index=False)]

    def _counts_by(self, session: Session, column: Any) -> dict[str, dict[str, int]]:
        """Datasets and runs per value of a dataset column (source, task)."""
        out: dict[str, dict[str, int]] = {}
        for value, count in session.execute(select(column, func.count()).group_by(column)):
            out[value] = {"datasets": int(count), "runs": 0}
        for value, count in session.execute(select(column, func.count(RunRow.id)).join(
                RunRow, RunRow.dataset_id == DatasetRow.id).group_by(column)):
            out.setdefault(value, {"datasets": 0, "runs": 0})["runs"] = int(count)
        return out

    def stats(self) -> dict[str, Any]:
        """Counts for ``kb stats`` and the API's health and stats endpoints."""
        with self.reading() as session:
            n_datasets = session.scalar(select(func.count()).select_from(DatasetRow)) or 0
            n_runs = session.scalar(select(func.count()).select_from(RunRow)) or 0
            n_configs = session.scalar(select(func.count()).select_from(ConfigurationRow)) or 0
            n_searches = session.scalar(select(func.count()).select_from(SearchRow)) or 0
            with_mf = session.scalar(select(func.count(func.distinct(MetaFeatureRow.dataset_id)))) or 0
            openml_linked = session.scalar(select(func.count()).select_from(DatasetRow).where(
                DatasetRow.openml_id.is_not(None))) or 0
            by_source = self._counts_by(session, DatasetRow.source)
            by_task = {task: {"datasets": 0, "runs": 0} for task in TASKS} | self._counts_by(session, DatasetRow.task)
            by_status = {s: int(c) for s, c in session.execute(
                select(RunRow.status, func.count()).group_by(RunRow.status))}
            by_origin = {s: int(c) for s, c in session.execute(
                select(RunRow.origin, func.count()).group_by(RunRow.origin))}
        return {"datasets": int(n_datasets), "runs": int(n_runs), "configurations": int(n_configs),
                "datasets_with_metafeatures": int(with_mf), "searches": int(n_searches),
                "datasets_linked_to_openml": int(openml_linked), "by_source": by_source, "by_task": by_task,
                "runs_by_status": by_status, "runs_by_origin": by_origin}
