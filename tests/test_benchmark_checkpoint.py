"""The benchmark checkpoint's compute accounting: kept up to date while a run goes on, estimated from the
rows' times for runs killed before they recorded it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from metalearn.benchmark.checkpoint import compute_clock, compute_hours, hours_from_rows, save_state
from metalearn.benchmark.report import _hours


def _stored(output: Path) -> dict:
    return json.loads((output / "state.json").read_text())


def test_compute_clock_records_while_running_and_at_the_end(tmp_path: Path) -> None:
    state = {"seconds": 100.0, "invocations": [{"started": "x", "seconds": 100.0, "command": "old"}]}
    save_state(tmp_path, state)
    with compute_clock(tmp_path, state, "metalearn benchmark --seeds 2", every=0.05):
        assert _stored(tmp_path)["invocations"][-1]["command"] == "metalearn benchmark --seeds 2"
        time.sleep(0.3)
        during = _stored(tmp_path)  # what a kill -9 now would leave
        assert 100.2 <= during["seconds"] < 101 and during["invocations"][-1]["seconds"] >= 0.2
    after = _stored(tmp_path)
    assert after["seconds"] >= during["seconds"] and len(after["invocations"]) == 2
    assert after["invocations"][0]["seconds"] == 100.0  # earlier invocations untouched


def test_compute_clock_records_a_failed_run(tmp_path: Path) -> None:
    state: dict = {"seconds": 0.0}
    with pytest.raises(KeyboardInterrupt), compute_clock(tmp_path, state, "cmd", every=10):
        time.sleep(0.1)
        raise KeyboardInterrupt
    assert _stored(tmp_path)["seconds"] >= 0.1


def test_hours_from_rows_skips_the_pauses_between_sessions() -> None:
    rows = [{"created": t} for t in ("2026-11-30T10:00:00+00:00", "2026-11-30T10:30:00+00:00",
                                     "2026-11-30T11:00:00+00:00", "2026-11-30T18:00:00+00:00",  # stopped
                                     "2026-11-30T18:15:00+00:00")] + [{"dataset": "no time"}]
    assert hours_from_rows(rows) == pytest.approx(1.25)
    assert hours_from_rows([]) == 0.0
    assert compute_hours({"seconds": 0.0}, rows) == (pytest.approx(1.25), True)  # killed before recording
    assert compute_hours({"seconds": 0.5 * 3600}, rows) == (pytest.approx(1.25), True)  # one invocation lost
    assert compute_hours({"seconds": 2 * 3600}, rows) == (2.0, False)  # recorded, larger than the rows' span


def test_the_report_says_when_the_compute_is_an_estimate() -> None:
    assert _hours({"hours": 1.5}) == "1.50 h"
    assert _hours({"hours": 1.5, "hours_estimated": True}).startswith("about 1.50 h (estimated")
