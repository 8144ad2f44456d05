"""SMAC's ask/tell loop over an executor: the one place trials are asked for, run, recorded and told back.

The loop stops when the trial or time budget is spent, when the optimiser has nothing left to ask (``ask()``
returns None: a finished grid), when ``should_stop()`` says so (``cancelled``, or
``interrupted`` when it returns that word: a signal) or on ``KeyboardInterrupt`` (``interrupted``). Finished
trials stay recorded in every case; the trials in flight when it stops are recorded ``cancelled``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smac.runhistory import StatusType, TrialValue

from metalearn.evaluation import CANCELLED, TrialResult, worst_score
from metalearn.space import algorithm_of, canonical_config, canonical_json
from metalearn.warmstart.result import SearchResult, Trial

MAX_REPEATS = 200
#: seconds the loop waits for a parallel trial before it looks at ``should_stop`` again
POLL_SECONDS = 0.5

log = logging.getLogger(__name__)

#: stores a finished trial and returns its run id in the knowledge base (or None)
Recorder = Callable[[Trial, TrialResult], int | None]


def trial_value(status: str, score: float | None, seconds: float, metric: str) -> TrialValue:
    """What SMAC is told about a trial: the negated score as cost (the worst score for a failure)."""
    kind = {"success": StatusType.SUCCESS, "timeout": StatusType.TIMEOUT}.get(status, StatusType.CRASHED)
    cost = -(score if status == "success" and score is not None else worst_score(metric))
    return TrialValue(cost=cost, time=seconds, status=kind)


def origin_of(config: Any, strategy: str) -> str:
    """Where a configuration SMAC proposed came from: warm start, SMAC's initial design, SMAC, random, grid."""
    if strategy in ("random", "grid"):
        return strategy
    origin = (getattr(config, "origin", None) or "").lower()
    if origin == "warm_start":
        return "warm_start"
    return "smac_initial" if "initial" in origin else "smac"


@dataclass
class TrialLoop:
    """Ask SMAC for configurations, evaluate them on ``executor``, record and tell each result.

    ``evaluate(config_values, budget, time_limit)`` submits one evaluation and returns a future;
    ``record(trial, outcome)`` stores a finished trial and returns its run id; ``budget_spent(in_flight)``
    and ``time_limit()`` apply the search's budget. ``should_stop()`` is asked before every trial and while
    parallel trials run: a truthy value stops the search, ``"interrupted"`` naming it interrupted.
    """

    smac: Any
    executor: Any
    result: SearchResult
    evaluate: Callable[[dict[str, Any], float, float | None], Any]
    record: Recorder
    budget_spent: Callable[[int], bool]
    time_limit: Callable[[], float | None]
    start: float
    should_stop: Callable[[], Any] | None = None
    callback: Callable[[Trial, SearchResult], None] | None = None
    #: future -> (SMAC's trial info, configuration values, (config JSON, budget), submitted at)
    pending: dict[Any, tuple[Any, dict[str, Any], tuple[str, float], float]] = field(default_factory=dict)
    repeats: int = 0
    #: the trial being submitted (a serial executor runs it during submission)
    submitting: tuple[Any, dict[str, Any], tuple[str, float], float] | None = None
    cancelled_trial: bool = False
    #: configurations asked again and answered from ``known`` before the loop gives up
    max_repeats: int = MAX_REPEATS
    #: the optimiser had nothing left to ask
    exhausted: bool = False

    def __post_init__(self) -> None:
        self.known = {(canonical_json(t.configuration), round(t.budget, 6)): t for t in self.result.trials
                      if t.status != "cancelled"}  # a cancelled trial is run again if asked again

    def run(self) -> None:
        """Run until a budget is spent, the caller stops it, or Ctrl-C; sets ``result.status`` when stopped."""
        try:
            while True:
                reason = self._stop_reason()
                if reason:
                    self.result.status = reason
                    break
                if not (self.budget_spent(len(self.pending)) or self.repeats > self.max_repeats or self.exhausted):
                    self._fill()
                if not self.pending:
                    break
                self._collect()
        except KeyboardInterrupt:
            self.result.status = "interrupted"
        finally:
            self._cancel_in_flight()

    def _stop_reason(self) -> str | None:
        """``interrupted`` or ``cancelled`` when the caller stops the search (or a trial was cancelled), else None."""
        reason = self.should_stop() if self.should_stop is not None else None
        if reason == "interrupted":
            return "interrupted"
        return "cancelled" if reason or self.cancelled_trial else None

    def _fill(self) -> None:
        """Submit trials until every worker is busy or the budget is spent."""
        while len(self.pending) < self.executor.workers and not self.budget_spent(len(self.pending)):
            info = self.smac.ask()
            if info is None:
                self.exhausted = True
                return
            values = canonical_config(info.config)
            budget = float(info.budget) if info.budget is not None else 1.0
            key = (canonical_json(values), round(budget, 6))
            seen = self.known.get(key)
            if seen is not None:  # evaluated before (a resumed job, or SMAC repeating itself)
                self.smac.tell(info, trial_value(seen.status, seen.score, seen.seconds, self._metric))
                self.repeats += 1
                if self.repeats > self.max_repeats:
                    return
                continue
            self.submitting = (info, values, key, time.perf_counter())
            future = self.evaluate(dict(info.config), budget, self.time_limit())
            self.pending[future], self.submitting = self.submitting, None
            if self._stop_reason():
                return

    def _collect(self) -> None:
        for future in self.executor.wait_any(list(self.pending), timeout=POLL_SECONDS):
            info, values, key, _ = self.pending.pop(future)
            self._record(info, values, key, future.result())

    def _record(self, info: Any, values: dict[str, Any], key: tuple[str, float], outcome: TrialResult) -> None:
        trial = Trial(len(self.result.trials) + 1, values, algorithm_of(values),
                      origin_of(info.config, self.result.settings.strategy), outcome.status, outcome.score,
                      outcome.std, outcome.seconds, time.perf_counter() - self.start, error=outcome.error,
                      budget=key[1])
        trial.run_id = self.record(trial, outcome)
        self.result.trials.append(trial)
        if outcome.status == "cancelled":  # killed in flight: the search stops, SMAC learns nothing from it
            self.cancelled_trial = True
        else:
            self.known[key] = trial
            self.smac.tell(info, trial_value(outcome.status, outcome.score, outcome.seconds, self._metric))
        if self.callback is not None:
            self.callback(trial, self.result)

    def _cancel_in_flight(self) -> None:
        """Record the trials still in flight as ``cancelled`` and cancel them on the executor."""
        futures = list(self.pending)
        in_flight = list(self.pending.values()) + ([self.submitting] if self.submitting else [])
        self.pending, self.submitting = {}, None
        self.executor.cancel(futures)
        for info, values, key, submitted in in_flight:
            outcome = TrialResult("cancelled", None, None, time.perf_counter() - submitted, error=CANCELLED)
            try:
                self._record(info, values, key, outcome)
            except Exception as exc:  # stopping must not fail on the record of a cancelled trial
                log.warning("could not record a cancelled trial: %s", exc)

    @property
    def _metric(self) -> str:
        return self.result.settings.metric
