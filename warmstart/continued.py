"""Continuing a stored search (``metalearn search --continue``): what the new run takes over from the old one.

The trials themselves are loaded by :meth:`~metalearn.warmstart.search.WarmStartSearch.run` (numbered on by
:mod:`metalearn.warmstart.result`); this module turns them into the optimiser's first configurations
(:func:`prior_configs`: the trial loop then tells SMAC their stored results instead of running them again) and
recomputes the out-of-fold predictions of the earlier ensemble candidates (:func:`replay_candidates`), so the
final ensemble is chosen from all the search's trials. A search whose final model was made fair keeps its fairness
request in its settings (:data:`FAIRNESS`): a continued search's new final model is mitigated again
(:func:`stored_fairness`, read by the API's worker and by ``metalearn search --continue`` alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from metalearn.errors import MetalearnError
from metalearn.evaluation import evaluate_config
from metalearn.knowledge_base import KnowledgeBase
from metalearn.space import canonical_json, config_from_dict
from metalearn.warmstart.ensemble import CandidatePool
from metalearn.warmstart.result import Trial, incumbent

#: the key of a search's stored settings that holds its fairness request (the fields of
#: :class:`metalearn.mitigation.FairnessRequest`: ``sensitive``, ``constraint``)
FAIRNESS = "fairness"


def prior_configs(space: Any, trials: list[Trial]) -> list[Any]:
    """The configurations of a search's finished trials, best first, as configurations of ``space``.

    Successes by score alone, whatever their budget (not :func:`~metalearn.warmstart.result.ranked`, which puts
    the highest budget first: SMAC's initial design would differ for a multi-fidelity search), then the failures
    (SMAC learns from them too)."""
    configs, seen = [], set()
    order = sorted((t for t in trials if t.status != "cancelled"), key=lambda t: (not t.ok, -(t.score or 0.0)))
    for trial in order:
        key = canonical_json(trial.configuration)
        if key in seen:
            continue
        seen.add(key)
        try:
            configs.append(config_from_dict(trial.configuration, space))
        except MetalearnError:  # not of this (restricted) space: SMAC is not told about it
            continue
    return configs


def replay_candidates(pool: CandidatePool, earlier: list[Trial], stored_ensemble: dict[str, Any] | None,
                      X: pd.DataFrame, y: pd.Series, categorical: list[str], settings: Any) -> int:
    """Offer the pool the members of the search's last ensemble and its best earlier trial, evaluated again with
    the same folds and seed (out-of-fold predictions are not stored); returns how many were offered."""
    members = {m["run_id"] for m in (stored_ensemble or {}).get("members", [])}
    best = incumbent(earlier)
    offered = 0
    for trial in earlier:
        if not (trial.ok and trial.budget >= 1.0 and (trial.run_id in members or trial is best)):
            continue
        outcome = evaluate_config(trial.configuration, X, y, categorical, settings.metric, settings.folds,
                                  seed=settings.seed, time_limit=settings.trial_time_limit, keep_predictions=True)
        if outcome.status == "success":
            pool.offer(trial, outcome.predictions)
            offered += 1
    return offered


def stored_fairness(settings: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The fairness request a search's final model was made fair for, from its stored settings; ``None`` for an
    unmitigated search."""
    request = (settings or {}).get(FAIRNESS)
    return dict(request) if request else None


def record_fairness(kb: KnowledgeBase, search_id: int, request: Mapping[str, Any]) -> None:
    """Store the fairness request (its fields) with a search's settings, so continuing it mitigates again."""
    kb.note_search_settings(search_id, {FAIRNESS: dict(request)})
