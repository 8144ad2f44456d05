"""The whole-job time budget: start-up, meta-features, trials and the final model all count.

A search's ``time_budget`` is wall-clock from the job's start (for the CLI, the process's start, so the
imports count too) until its final model is ready. The trials stop early enough to leave the final model its
time: :func:`final_model_reserve` estimates the refits of the best trials from their measured CV seconds, a
trial may only run as long as its own refit would still fit, :func:`fit_within` drops ensemble members whose
refit would not end before the deadline, and :func:`rows_within` shrinks the rows of a refit that cannot fit
otherwise (a model on fewer rows rather than a late one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from metalearn.warmstart.result import Trial, ranked

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


def refit_share(folds: int, scale: float = 1.0) -> float:
    """Seconds of refit on all rows per second of trial: one of the trial's ``folds`` CV fits (each on
    ``(folds - 1) / folds`` of the trial rows), times ``scale`` (all rows / trial rows), with a safety factor."""
    return REFIT_SAFETY / max(folds, 1) * max(folds, 2) / max(folds - 1, 1) * max(scale, 1.0)


def refit_seconds(trial: Trial, folds: int, scale: float = 1.0) -> float:
    """Estimated seconds to fit ``trial``'s pipeline on all rows (:func:`refit_share`)."""
    return trial.seconds * refit_share(folds, scale)


def rows_within(n_rows: int, estimate: float, remaining: float, floor: int) -> int | None:
    """How many rows a refit estimated at ``estimate`` seconds on ``n_rows`` rows may use to end within
    ``remaining`` seconds (linear in rows; at least ``floor``); None when all of them fit."""
    if estimate <= remaining:
        return None
    return max(floor, int(n_rows * max(remaining, 0.0) / estimate))


def final_model_reserve(trials: Sequence[Trial], folds: int, scale: float, members: int, budget: float) -> float:
    """Seconds to keep back from the trials for the final model: the refits of the ``members`` best
    successful trials plus :data:`FIXED_RESERVE`, at most :data:`MAX_RESERVE_SHARE` of ``budget``."""
    done = ranked(t for t in trials if t.budget >= 1.0)
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


@dataclass
class JobBudget:
    """The time budget of one search: when the trials stop, how long a trial may run, what a refit may use.

    ``members`` refits are kept in reserve (the ensemble's likely members, or 1); ``scale`` is all rows /
    trial rows. Without a budget nothing is limited.
    """

    clock: JobClock
    folds: int
    refit: bool = True
    members: int = 1
    scale: float = 1.0

    def reserve(self, trials: Sequence[Trial]) -> float:
        """Seconds the trials leave for the final model (0 without a refit or a budget)."""
        if not self.refit or self.clock.budget is None:
            return 0.0
        return final_model_reserve(trials, self.folds, self.scale, self.members, self.clock.budget)

    def spent(self, trials: Sequence[Trial]) -> bool:
        """Whether no further trial should start."""
        return self.clock.budget is not None and self.clock.elapsed() + self.reserve(trials) >= self.clock.budget

    def trial_limit(self, limit: float | None, trials: Sequence[Trial]) -> float | None:
        """``limit`` shortened so a trial cannot run into the time kept for the final model, nor so long that
        its own refit would no longer fit."""
        if self.clock.budget is None:
            return limit
        share = refit_share(self.folds, self.scale) if self.refit else 0.0
        left = (self.clock.budget - self.reserve(trials) - self.clock.elapsed()) / (1.0 + share)
        remaining = max(1.0, left)
        return min(limit, remaining) if limit else remaining

    def refit_rows(self, trial: Trial, n_rows: int) -> int | None:
        """Rows the refit of ``trial`` may use to be ready by the deadline (None: all of them)."""
        deadline = self.clock.deadline
        if deadline is None:
            return None
        estimate = refit_seconds(trial, self.folds, self.scale)
        return rows_within(n_rows, estimate, deadline - time.perf_counter() - FIXED_RESERVE,
                           int(n_rows / max(self.scale, 1.0)))

    def refit_estimate(self, trial: Trial) -> float:
        return refit_seconds(trial, self.folds, self.scale)
