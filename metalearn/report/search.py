"""The report's ``search`` section, from a :class:`SearchResult` or from the knowledge base.

Trials, their numbering, the best trial and the trajectory come from :mod:`metalearn.warmstart.result`
(:func:`trials_from_runs`, :func:`incumbent`, :func:`trajectory`), so the report names the same best
trial as the search result, the CLI and the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd

from metalearn.errors import MetalearnError
from metalearn.knowledge_base import KnowledgeBase
from metalearn.metafeatures import EXTRACTOR_VERSION
from metalearn.protocol import DEFAULT_METRIC, DEFAULTS
from metalearn.warmstart.recommend import Recommender
from metalearn.warmstart.result import (
    SearchResult,
    Trial,
    incumbent,
    stored_ensemble,
    trajectory,
    trials_from_runs,
)

NOT_WARM = "none (not a warm-started search)"


def _trial_rows(trials: Sequence[Trial], run_ids: bool = False) -> list[dict[str, Any]]:
    rows = []
    for t in trials:
        row = {"trial": t.number, "origin": t.origin, "algorithm": t.algorithm, "status": t.status,
               "score": t.score, "seconds": t.seconds, "elapsed": t.elapsed}
        if run_ids:
            row["run_id"] = t.run_id
        rows.append(row)
    return rows


def _summary(trials: Sequence[Trial], rows: list[dict[str, Any]], metric: str | None) -> dict[str, Any]:
    """Trials, trajectory, origins and the incumbent (the best trial, as the search names it)."""
    best = incumbent(trials)
    origins: dict[str, int] = {}
    for t in trials:
        origins[t.origin] = origins.get(t.origin, 0) + 1
    warm_scores = [t.score for t in trials if t.origin == "warm_start" and t.ok]
    return {"metric": metric, "n_trials": len(trials), "trials": rows,
            "trajectory": [{"trial": p["trial"], "elapsed": p["elapsed"], "best_so_far": p["best_so_far"]}
                           for p in trajectory(trials)],
            "origins": origins, "warm_start_trials": [t.number for t in trials if t.origin == "warm_start"],
            "best_warm_start_score": max(warm_scores) if warm_scores else None,
            "best": None if best is None else {"trial": best.number, "score": best.score, "origin": best.origin,
                                               "algorithm": best.algorithm},
            "best_from_warm_start": None if best is None else best.origin == "warm_start"}


def search_section_from_result(result: SearchResult) -> dict[str, Any]:
    """The ``search`` section from a :class:`~metalearn.warmstart.result.SearchResult`."""
    data = {"source": "search result", "search_id": result.search_id, "strategy": result.settings.strategy,
            "status": result.status, "settings": asdict(result.settings),
            **_summary(result.trials, _trial_rows(result.trials), result.settings.metric),
            "ensemble": None if result.ensemble is None else result.ensemble.to_json()}
    rec = result.recommendations
    if rec is not None:
        data["neighbors"] = [{"dataset": n.name, "dataset_id": n.dataset_id, "family": n.family,
                              "distance": float(n.distance)} for n in rec.neighbors]
        data["neighbors_source"] = "used by this search"
        data["far_from_knowledge_base"] = bool(rec.far)
    else:
        data["neighbors"] = []
        data["neighbors_source"] = NOT_WARM
    return data


def _run_key_prefix(runs: pd.DataFrame) -> str | None:
    """The common ``prefix`` of run keys ``{prefix}{trial number}`` (a resumed seeding job), if any."""
    prefixes = set()
    for key in runs["run_key"].dropna():
        head, _, number = str(key).rpartition(":")
        if not number.isdigit():
            return None
        prefixes.add(f"{head}:")
    return prefixes.pop() if len(prefixes) == 1 else None


def search_trials(kb: KnowledgeBase, search_id: int) -> tuple[dict[str, Any], pd.DataFrame, list[Trial]]:
    """A stored search, its runs and its trials (numbered as :func:`trials_from_runs` numbers them)."""
    search = kb.search(search_id)
    runs = kb.runs_frame(search_id=search_id)
    started = pd.Timestamp(search["started_at"]) if search.get("started_at") is not None else None
    return search, runs, trials_from_runs(runs, started, _run_key_prefix(runs))


def search_section_from_kb(kb: KnowledgeBase, search_id: int, *, neighbors: bool = True) -> dict[str, Any]:
    """The ``search`` section from the knowledge base (runs of the search; neighbours recomputed)."""
    search, runs, trials = search_trials(kb, search_id)
    settings = search.get("settings") or {}
    metric = settings.get("metric") or (runs["metric"].iloc[0] if len(runs) else None)
    data = {"source": "knowledge base", "search_id": search_id, "strategy": search["strategy"],
            "status": search["status"], "settings": settings, "dataset_id": search["dataset_id"],
            **_summary(trials, _trial_rows(trials, run_ids=True), metric), "neighbors": [],
            "neighbors_source": NOT_WARM, "ensemble": stored_ensemble(kb.ensemble_of(search_id), trials)}
    if neighbors and search["strategy"] == "warm":
        try:
            data["neighbors"], data["neighbors_source"] = _kb_neighbors(kb, search["dataset_id"], settings)
        except Exception as exc:  # the knowledge base may lack meta-features; the rest of the section stands
            data["neighbors_source"] = f"not available ({type(exc).__name__}: {exc})"
    return data


def _kb_neighbors(kb: KnowledgeBase, dataset_id: int,
                  settings: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    features = kb.metafeatures(dataset_id, EXTRACTOR_VERSION)
    if features is None:
        return [], f"not available (no {EXTRACTOR_VERSION} meta-features for dataset {dataset_id})"
    info = kb.dataset(dataset_id)
    recommender = Recommender(kb, settings.get("metric") or DEFAULT_METRIC)
    found = recommender.neighbors(features, int(settings.get("k") or DEFAULTS.k), exclude_hashes={info.content_hash})
    source = "recomputed from the current knowledge base (runs added since the search may change them)"
    if not found:
        source += ": it holds no other dataset with runs and meta-features"
    return ([{"dataset": n.name, "dataset_id": n.dataset_id, "family": n.family, "distance": float(n.distance)}
             for n in found], source)


def best_configuration(kb: KnowledgeBase, search_id: int) -> dict[str, Any]:
    """The configuration of a search's best run: the one it stored, else its :func:`incumbent`."""
    search, runs, trials = search_trials(kb, search_id)
    stored = search.get("best_run_id")
    for trial in trials:
        if stored is not None and trial.run_id == stored:
            return trial.configuration
    best = incumbent(trials)
    if best is None:
        raise MetalearnError(f"search {search_id} has no successful trial to report on")
    return best.configuration
