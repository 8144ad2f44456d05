"""A search that ends without a model says why and exits non-zero (CLI)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli
from sklearn.datasets import make_classification

from metalearn.knowledge_base import KnowledgeBase


def test_a_budget_too_small_for_any_trial_is_an_error_with_the_reason(tmp_path: Path) -> None:
    X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    csv = tmp_path / "t.csv"
    rows = (",".join(map(str, [*row, label])) for row, label in zip(X, y, strict=True))
    csv.write_text("a,b,c,d,e,target\n" + "\n".join(rows))
    db = str(tmp_path / "kb.sqlite")
    kb = KnowledgeBase(db)  # holds a dataset already: the search does not spend its budget loading the seed
    kb.register_dataset(name="placeholder", content_hash="0" * 64, n_rows=2, n_features=1, n_classes=2)
    kb.dispose()
    done = run_cli("search", str(csv), "--target", "target", "--strategy", "random", "--db", db, "--json",
                   "--time-budget", "0.5")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["status"] == "failed"
    assert "no trial finished within the time budget of 0.5 s" in done.stderr
    assert "--time-budget" in done.stderr.splitlines()[-1]
