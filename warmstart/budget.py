"""The whole-job time budget: start-up, meta-features, trials and the final model all count.

A search's ``time_budget`` is wall-clock from the job's start (for the CLI, the process's start, so the
imports count too) until its final model is ready. The trials stop early enough to leave the final model its
time: :func:`final_model_reserve` estimates the refits of the best trials from their measured CV seconds, and
:func:`fit_within` drops ensemble members whose refit would not end before the deadline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from metalearn.warmstart.result import Trial

#: the estimate of a refit is multiplied by this (the fit on all rows, the predictions it skips, noise)
REFIT_SAFETY = 1.25
#: at most this share of the budget is kept back from the trials for the final model
MAX_RESERVE_SHARE = 0.4
#: seconds kept on top of the refits: ensemble selection, the drift profile, the model file and the exit
#: (about 2 s measured after the final model of a CLI search on a 2-core machine)
FIXED_RESERVE = 3.0


@dataclass(frozen=True)
class JobClock:
    """The budget and the job's start on the :func:`time.perf_counter` clock."""

    budget: float | None
    start: float

    @classmethod
    def started(cls, budget: float | None, started_at: float | None = None) -> JobClock:
        """A clock for a job that started at ``started_at`` (epoch seconds, e.g. the process's creation time;
        default now)."""
        before = max(0.0, time.time() - started_at) if started_at is not None else 0.0
        return cls(budget, time.perf_counter() - before)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def deadline(self) -> float | None:
        """The perf_counter time the final model must be ready by (None without a budget)."""
        return None if self.budget is None else self.start + self.budget


def refit_seconds(trial: Trial, folds: int, scale: float = 1.0) -> float:
    """Estimated seconds to fit ``trial``'s pipeline on all rows: one of its ``folds`` CV fits (each on
    ``(folds - 1) / folds`` of the trial rows), times ``scale`` (all rows / trial rows), with a safety factor."""
    per_fit = trial.seconds / max(folds, 1) * max(folds, 2) / max(folds - 1, 1)
    return REFIT_SAFETY * per_fit * max(scale, 1.0)


def final_model_reserve(trials: Sequence[Trial], folds: int, scale: float, members: int, budget: float) -> float:
    """Seconds to keep back from the trials for the final model: the refits of the ``members`` best
    successful trials plus :data:`FIXED_RESERVE`, at most :data:`MAX_RESERVE_SHARE` of ``budget``."""
    done = sorted((t for t in trials if t.ok and t.budget >= 1.0), key=lambda t: -(t.score or -math.inf))
    refits = sum(refit_seconds(t, folds, scale) for t in done[:max(members, 1)])
    return min(FIXED_RESERVE + refits, MAX_RESERVE_SHARE * budget)


def fit_within(members: Sequence[tuple[Trial, float]], fit: Callable[[Trial], object], deadline: float | None,
               estimate: Callable[[Trial], float]) -> list[tuple[Trial, float, object]]:
    """Fit ``members`` (trial, weight) in the given order until the next one would end after ``deadline``;
    the first is always fitted. Returns ``(trial, weight, fitted)`` of the members fitted."""
    fitted: list[tuple[Trial, float, object]] = []
    for trial, weight in members:
        if fitted and deadline is not None and time.perf_counter() + estimate(trial) > deadline:
            continue  # a cheaper member further down may still fit
        fitted.append((trial, weight, fit(trial)))
    return fitted
