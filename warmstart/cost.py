"""What a recommended pipeline is expected to cost here, read from its recorded trials on the neighbours.

A search with a time budget leaves out of its warm start the recommendations expected to take more than
:data:`MAX_TRIAL_SHARE` of the budget: on the equal-time benchmark at 60 s, single CatBoost and XGBoost trials
recommended by the knowledge base took 25 to 38 s on small multi-class tables, and the warm searches that met them
ran fewer than half of cold's trials (and scored below it). The estimate is the median, over the neighbours that
ran the configuration, of its mean recorded seconds scaled to this search's rows and folds (a trial fits
``folds - 1`` folds' worth of rows, ``folds`` times); the knowledge base's trials are taken to follow the seeding
protocol (:data:`~metalearn.defaults.SEED_FOLDS` folds on at most :data:`~metalearn.defaults.SEED_MAX_ROWS` rows).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from metalearn.defaults import SEED_FOLDS, SEED_MAX_ROWS
from metalearn.warmstart.neighbors import Neighbor
from metalearn.warmstart.recommendation import Recommendation

__all__ = ["MAX_TRIAL_SHARE", "affordable", "expected_seconds"]

#: a warm-start recommendation expected to take more than this share of the search's time budget is left out
MAX_TRIAL_SHARE = 0.25


def _work(rows: int, folds: int, max_rows: int | None) -> float:
    """Rows fitted by one CV trial, relative: ``folds`` fits on ``(folds - 1) / folds`` of the trial's rows."""
    used = min(rows, max_rows) if max_rows else rows
    return float(max(used, 1) * max(folds - 1, 1))


def expected_seconds(config_id: int, neighbors: Sequence[Neighbor], recorded: Mapping[tuple[int, int], float],
                     rows_of: Callable[[int], int], n_rows: int, folds: int, max_rows: int | None) -> float | None:
    """Seconds a trial of configuration ``config_id`` is expected to take on a dataset of ``n_rows`` rows with
    ``folds`` folds on at most ``max_rows`` rows: the median over ``neighbors`` of its ``recorded`` mean seconds
    ((dataset id, configuration id) -> seconds) scaled by the rows fitted; None when no neighbour ran it."""
    here = _work(n_rows, folds, max_rows)
    estimates = [seconds * here / _work(rows_of(n.dataset_id), SEED_FOLDS, SEED_MAX_ROWS)
                 for n in neighbors
                 if (seconds := recorded.get((n.dataset_id, config_id))) is not None and math.isfinite(seconds)]
    return float(np.median(estimates)) if estimates else None


def affordable(recommendations: Sequence[Recommendation], neighbors: Sequence[Neighbor],
               recorded: Mapping[tuple[int, int], float], rows_of: Callable[[int], int], n_rows: int, folds: int,
               max_rows: int | None, budget: float) -> tuple[list[Recommendation], list[str]]:
    """The ``recommendations`` expected to take at most :data:`MAX_TRIAL_SHARE` of ``budget`` seconds (and those
    without an estimate), in order; and a note for each one left out."""
    kept, notes = [], []
    limit, rows_of = MAX_TRIAL_SHARE * budget, functools.cache(rows_of)  # one lookup per neighbour
    for rec in recommendations:
        seconds = expected_seconds(rec.configuration_id, neighbors, recorded, rows_of, n_rows, folds, max_rows)
        if seconds is not None and seconds > limit:
            notes.append(f"recommendation {rec.rank} ({rec.algorithm}): expected {seconds:.1f} s per trial, over "
                         f"{MAX_TRIAL_SHARE:.0%} of the {budget:.0f} s budget")
        else:
            kept.append(rec)
    return kept, notes
