"""``metalearn benchmark --jobs 2`` (the trial study): datasets run in parallel, every row written once, resumable.

The trial study runs its datasets in spawned worker processes (:func:`metalearn.benchmark.runner._in_workers`)
that share ``results.jsonl`` and the scratch knowledge base; on the three tiny regression tables of
``test_benchmark_regression`` (a knowledge base seeded with two cold trials each) the rows are checked against the
keys a serial run makes: (dataset, seed, strategy, budget), each exactly once, and a second run of the same
command adds nothing. (The equal-time mode's ``--jobs 2`` is covered by ``test_equal_time``.)
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_cli
from test_benchmark import seed_manifest
from test_benchmark_regression import FAMILIES, write_corpus

pytestmark = pytest.mark.filterwarnings("ignore")

STRATEGIES = ("warm", "cold")
BUDGETS = (1, 2)
KEYS = {f"manifest:{name}" for name in FAMILIES}
Key = tuple[str, int, str, int]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("jobs-corpus"))


def _rows(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]


def _counts(rows: list[dict], column: str) -> Counter[Key]:
    return Counter((r["dataset_key"], int(r["seed"]), r[column], int(r["budget"])) for r in rows)


def _trial_study(corpus: Path, kb: Path, output: Path) -> str:
    """``metalearn benchmark --jobs 2`` on the corpus; its stdout (the run must succeed)."""
    result = run_cli("benchmark", "--suite", str(corpus), "--strategies", ",".join(STRATEGIES), "--budgets",
                     ",".join(map(str, BUDGETS)), "--seeds", "1", "--jobs", "2", "--db", str(kb), "--output",
                     str(output), "--kb-fractions", "", "--max-rows", "200", "--folds", "2", "--ensemble-size", "0",
                     "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stderr


def test_trial_study_with_two_jobs_writes_every_row_once_and_resumes(corpus: Path, tmp_path: Path) -> None:
    kb = seed_manifest(corpus, tmp_path / "kb.sqlite", n_trials=2)
    output = tmp_path / "out"
    # what a serial run (--jobs 1) writes: one row per dataset, seed, strategy and budget
    expected = Counter((key, 0, strategy, budget) for key in KEYS for strategy in STRATEGIES for budget in BUDGETS)
    said = _trial_study(corpus, kb, output)
    assert "(0/6 done)" in said  # 3 datasets x 1 seed x 2 strategies to run
    assert not (output / "errors.jsonl").exists(), (output / "errors.jsonl").read_text()
    rows = _rows(output)
    assert _counts(rows, "strategy") == expected  # each key exactly once, none missing, none extra
    assert all(r["task"] == "regression" and math.isfinite(r["test_score"]) for r in rows)
    assert {r["dataset"] for r in rows} == set(FAMILIES)
    summary = json.loads((output / "summary.json").read_text())
    assert summary["n_datasets"] == 3 and summary["n_rows"] == len(expected) and summary["new_rows"] == len(expected)
    assert "--jobs 2" in json.loads((output / "state.json").read_text())["invocations"][-1]["command"]

    # the same command again: everything is done, nothing is appended
    before = (output / "results.jsonl").read_text()
    said = _trial_study(corpus, kb, output)
    assert "(6/6 done)" in said
    assert (output / "results.jsonl").read_text() == before
    assert json.loads((output / "summary.json").read_text())["new_rows"] == 0

