"""The ensemble step of a search: keep the best trials' out-of-fold predictions, select, refit, record.

:class:`CandidatePool` keeps the out-of-fold probabilities of the ``size`` best full-budget trials on disk
(float32 ``.npy`` files in the search's scratch folder, the others deleted as better ones arrive).
:func:`build_ensemble` runs greedy ensemble selection over them and refits the chosen members on all rows.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metalearn.ensemble import ensemble_of, ensemble_selection
from metalearn.evaluation import score_proba
from metalearn.protocol import task_of_metric, to_jsonable
from metalearn.warmstart.budget import fit_within
from metalearn.warmstart.result import Trial


@dataclass
class CandidatePool:
    """The out-of-fold predictions of the best ``size`` successful full-budget trials, on disk."""

    folder: Path
    size: int
    _heap: list[tuple[float, int, Path]] = field(default_factory=list)

    def offer(self, trial: Trial, predictions: np.ndarray | None) -> None:
        if predictions is None or not trial.ok or trial.budget < 1.0 or self.size <= 0:
            return
        if len(self._heap) >= self.size and trial.score <= self._heap[0][0]:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"trial-{trial.number}.npy"
        np.save(path, np.asarray(predictions, dtype=np.float32))
        heapq.heappush(self._heap, (float(trial.score), -trial.number, path))
        if len(self._heap) > self.size:
            heapq.heappop(self._heap)[2].unlink(missing_ok=True)

    def best_first(self) -> list[tuple[int, np.ndarray]]:
        """(trial number, predictions), best score first (ties: the earlier trial)."""
        ranked = sorted(self._heap, key=lambda item: (-item[0], -item[1]))
        return [(-number, np.load(path)) for _, number, path in ranked]


@dataclass
class EnsembleReport:
    """The ensemble a search ended with, next to the best single trial."""

    members: list[dict[str, Any]]
    oof_score: float
    best_single_oof_score: float
    best_single_cv_score: float | None
    size: int
    run_id: int | None = None
    #: members the selection chose but the time budget left no time to refit
    dropped: int = 0

    def to_json(self) -> dict[str, Any]:
        return to_jsonable({"members": self.members, "oof_score": self.oof_score,
                            "best_single_oof_score": self.best_single_oof_score,
                            "best_single_cv_score": self.best_single_cv_score, "size": self.size,
                            "run_id": self.run_id, "dropped": self.dropped})


def build_ensemble(pool: CandidatePool, trials: list[Trial], y: pd.Series, metric: str, size: int,
                   refit: Callable[[Trial], Any], *, deadline: float | None = None,
                   estimate: Callable[[Trial], float] | None = None) -> tuple[Any, EnsembleReport] | None:
    """Greedy selection over the pool, members refitted with ``refit(trial)``; ``None`` without
    candidates. A one-member ensemble is that member's pipeline itself.

    With a ``deadline`` (perf_counter seconds), members are refitted heaviest weight first and a member whose
    estimated refit (``estimate(trial)``) would end after it is left out: the weights of the others are
    renormalised and the out-of-fold score recomputed for the members kept."""
    candidates = pool.best_first()
    if not candidates:
        return None
    regression = task_of_metric(metric) == "regression"
    labels = None if regression else np.unique(np.asarray(y))
    weights, oof_score = ensemble_selection([p for _, p in candidates], y, labels, metric, size)
    by_number = {t.number: t for t in trials}
    predictions = {number: p for number, p in candidates}
    chosen = [(by_number[number], float(w)) for (number, _), w in zip(candidates, weights, strict=True) if w > 0]
    if deadline is not None:
        chosen.sort(key=lambda item: -item[1])  # stable: equal weights keep the best-first order
    fitted = fit_within(chosen, refit, deadline, estimate or (lambda _: 0.0))
    if len(fitted) < len(chosen):  # the deadline left some out: the score of what is kept
        total = sum(w for _, w, _ in fitted)
        fitted = [(t, w / total, model) for t, w, model in fitted]
        blend = sum(w * predictions[t.number].astype(np.float64) for t, w, _ in fitted)
        oof_score = score_proba(metric, y, blend, labels)
    models, member_weights = [m for _, _, m in fitted], [w for _, w, _ in fitted]
    model = models[0] if len(models) == 1 else ensemble_of(models, member_weights, regression)
    best_number, best_oof = candidates[0]
    report = EnsembleReport(
        members=[{"trial": t.number, "run_id": t.run_id, "algorithm": t.algorithm, "weight": w, "cv_score": t.score}
                 for t, w, _ in fitted],
        oof_score=oof_score, best_single_oof_score=score_proba(metric, y, best_oof, labels),
        best_single_cv_score=by_number[best_number].score, size=size, dropped=len(chosen) - len(fitted))
    return model, report
