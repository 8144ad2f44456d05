"""The whole-job time budget: the clock starts with the job, the trials leave time for the final model, and an
ensemble drops the members whose refit would end after the deadline (with its score recomputed)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from metalearn.evaluation import score_proba
from metalearn.warmstart.budget import (
    FIXED_RESERVE,
    MAX_RESERVE_SHARE,
    JobBudget,
    JobClock,
    final_model_reserve,
    fit_within,
    refit_seconds,
    refit_share,
    rows_within,
)
from metalearn.warmstart.ensemble import CandidatePool, build_ensemble
from metalearn.warmstart.result import Trial


def _trial(number: int, score: float, seconds: float, status: str = "success") -> Trial:
    return Trial(number, {"n": number}, "gaussian_nb", "smac", status, score, 0.0, seconds, 0.0)


def test_the_clock_counts_from_the_job_start() -> None:
    clock = JobClock.started(60.0, started_at=time.time() - 10.0)
    assert 10.0 <= clock.elapsed() < 11.0 and clock.deadline == pytest.approx(clock.start + 60.0)
    assert JobClock.started(None).deadline is None and JobClock.started(5.0).elapsed() < 1.0


def test_reserve_covers_the_best_trials_refits_and_is_capped() -> None:
    trials = [_trial(1, 0.9, 6.0), _trial(2, 0.8, 30.0), _trial(3, 0.95, 3.0), _trial(4, None, 99.0, "crashed")]
    # 3 folds: one CV fit ~ seconds / 3 on 2/3 of the rows, so a refit on all rows ~ seconds / 2 (x safety)
    assert refit_seconds(trials[0], 3) == pytest.approx(1.25 * 3.0)
    assert refit_seconds(trials[0], 3, scale=4.0) == pytest.approx(4 * 1.25 * 3.0)
    two_best = final_model_reserve(trials, 3, 1.0, members=2, budget=1000.0)
    assert two_best == pytest.approx(FIXED_RESERVE + 1.25 * (3.0 + 6.0) / 2)  # the crashed trial does not count
    assert final_model_reserve(trials, 3, 1.0, members=5, budget=20.0) == pytest.approx(MAX_RESERVE_SHARE * 20)
    assert final_model_reserve([], 3, 1.0, members=5, budget=60.0) == FIXED_RESERVE


def test_a_trial_and_a_refit_are_cut_to_what_the_deadline_leaves() -> None:
    budget = JobBudget(JobClock.started(60.0, started_at=time.time() - 30.0), folds=3, scale=4.0)
    # 30 s left, 3 s kept back: a trial may run (30 - 3) / (1 + 4 x 1.25 x 1.5 / 3 ... ) so its refit still fits
    limit = budget.trial_limit(60.0, [])
    assert limit == pytest.approx((30.0 - FIXED_RESERVE) / (1 + refit_share(3, 4.0)), abs=0.1)
    assert budget.trial_limit(5.0, []) == 5.0 and JobBudget(JobClock.started(None), 3).trial_limit(7.0, []) == 7.0
    slow = _trial(1, 0.9, 20.0)  # its refit on all rows: 20 x 2.5 = 50 s, 27 s left: about half the rows
    rows = budget.refit_rows(slow, 8000)
    assert rows is not None and 2000 <= rows < 8000 and budget.refit_rows(_trial(2, 0.9, 0.1), 8000) is None
    assert rows_within(1000, 10.0, 20.0, 100) is None and rows_within(1000, 10.0, 0.0, 100) == 100


def test_fit_within_keeps_the_first_member_and_skips_what_would_end_late() -> None:
    members = [(_trial(1, 0.9, 1.0), 0.5), (_trial(2, 0.8, 1.0), 0.3), (_trial(3, 0.7, 1.0), 0.2)]
    costs = {1: 100.0, 2: 50.0, 3: 0.0}
    fitted = fit_within(members, lambda t: f"model-{t.number}", time.perf_counter() + 10.0,
                        lambda t: costs[t.number])
    assert [t.number for t, _, _ in fitted] == [1, 3]  # 1 always, 2 would end late, 3 is free
    assert len(fit_within(members, lambda t: t.number, None, lambda t: 1e9)) == 3


def test_ensemble_under_a_deadline_drops_members_and_rescored(tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = pd.Series(rng.integers(0, 2, 300))
    truth = np.eye(2)[y]
    half = np.arange(300) < 150
    a = np.where(half[:, None], truth * 0.9 + 0.05, (1 - truth) * 0.55 + 0.225)
    b = np.where(~half[:, None], truth * 0.9 + 0.05, (1 - truth) * 0.55 + 0.225)
    trials = [_trial(1, 0.8, 1.0), _trial(2, 0.79, 1.0)]
    pool = CandidatePool(tmp_path / "pool", 5)
    for trial, predictions in zip(trials, (a, b), strict=True):
        pool.offer(trial, predictions)
    def refit(trial: Trial) -> DummyClassifier:
        return DummyClassifier(strategy="constant", constant=trial.number % 2).fit(np.zeros((4, 1)), [0, 1, 0, 1])

    full = build_ensemble(pool, trials, y, "balanced_accuracy", 10, refit)
    assert full is not None and len(full[1].members) == 2 and full[1].dropped == 0
    late = build_ensemble(pool, trials, y, "balanced_accuracy", 10, refit,
                          deadline=time.perf_counter() + 5.0, estimate=lambda t: 60.0)
    assert late is not None and late[1].dropped == 1 and len(late[1].members) == 1
    kept = late[1].members[0]
    assert kept["weight"] == pytest.approx(1.0) and isinstance(late[0], DummyClassifier)  # one member: itself
    alone = a if kept["trial"] == 1 else b
    assert late[1].oof_score == pytest.approx(score_proba("balanced_accuracy", y, alone, np.array([0, 1])))
    assert late[1].oof_score < full[1].oof_score
