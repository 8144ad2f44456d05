"""benchmarks/bench_native_categorical.py on a small synthetic corpus: nine cells per dataset, resume, report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_native_categorical.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_native_categorical", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frame(n: int, seed: int) -> pd.DataFrame:
    """A numeric column, a 3-level and a 12-level categorical one (a few missing), a target that depends on both."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n)
    city = rng.choice([f"city{i}" for i in range(12)], n).astype(object)
    city[rng.choice(n, 5, replace=False)] = None
    x = rng.normal(size=n)
    signal = (colour == "red") + np.isin(city, ["city1", "city4", "city7"]) + 0.5 * x
    return pd.DataFrame({"x": x, "colour": colour, "city": city, "target": np.where(signal > 0.8, "yes", "no")})


def _manifest(root: Path) -> Path:
    folder = root / "corpus"
    folder.mkdir()
    _frame(90, 0).to_parquet(folder / "shop-a.parquet")
    _frame(90, 1).to_parquet(folder / "shop-b.parquet")
    _frame(90, 2)[["x", "target"]].to_parquet(folder / "plain.parquet")
    (folder / "manifest.json").write_text(json.dumps([
        {"name": "shop-b", "file": "shop-b.parquet", "target": "target", "family": "shop",
         "categorical": ["colour", "city"]},
        {"name": "shop-a", "file": "shop-a.parquet", "target": "target", "family": "shop",
         "categorical": ["colour", "city"]},
        {"name": "plain", "file": "plain.parquet", "target": "target", "family": "plain", "categorical": []},
    ]))
    return folder


def test_one_dataset_nine_cells_resume_and_report(bench: ModuleType, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    corpus, output = _manifest(tmp_path), tmp_path / "out"
    # one dataset per family (the first by name), only entries with categorical columns
    assert [e.name for e in bench.select_entries(corpus)] == ["shop-a"]
    argv = ["--manifest", str(corpus), "--limit", "1", "--folds", "2", "--output", str(output)]
    bench.main(argv)
    rows = [json.loads(line) for line in (output / "rows.jsonl").read_text().splitlines()]
    assert {(r["family"], r["variant"]) for r in rows} == {(f, v) for f in bench.FAMILIES for v in bench.VARIANTS}
    assert len(rows) == 9 and {r["dataset"] for r in rows} == {"shop-a"}
    assert [r for r in rows if r["status"] != "ok"] == []
    assert all(0.0 <= r["score"] <= 1.0 and len(r["fold_scores"]) == 2 and r["seconds"] > 0 for r in rows)
    assert {r["max_levels"] for r in rows} == {12}  # twelve cities (missing is not a level)
    report = (output / "report.md").read_text()
    assert "**catboost**: too few datasets for a verdict against one_hot" in report
    summary = json.loads((output / "summary.json").read_text())
    assert summary["families"]["lightgbm"]["n_datasets"] == 1
    assert summary["families"]["xgboost"]["by_levels"]["more_than_10_levels"]["n"] == 1
    # a rerun skips the finished dataset: no new rows
    capsys.readouterr()
    bench.main(argv)
    assert "1 already done; 0 to run" in capsys.readouterr().out
    assert len((output / "rows.jsonl").read_text().splitlines()) == 9


def test_native_pipeline_declares_the_categorical_columns(bench: ModuleType) -> None:
    """Native codes reach each library as categorical; an unseen category at predict time is no error."""
    train, test = _frame(80, 3), _frame(20, 4)
    test.loc[0, "colour"] = "purple"  # unseen in training
    X, y = train.drop(columns="target"), train["target"]
    lgbm = bench.native_pipeline("lightgbm", ["x"], ["colour", "city"], 0).fit(X, y)
    assert lgbm.named_steps["classifier"].estimator_.booster_.params["categorical_column"] == [1, 2]
    xgb = bench.native_pipeline("xgboost", ["x"], ["colour", "city"], 0).fit(X, y)
    assert xgb.named_steps["classifier"].estimator_.get_booster().feature_types == ["q", "c", "c"]
    cat = bench.native_pipeline("catboost", ["x"], ["colour", "city"], 0)
    cat.named_steps["classifier"].estimator.estimator.set_params(iterations=20)
    cat.fit(X, y)
    assert cat.named_steps["classifier"].estimator_.estimator_.get_cat_feature_indices() == [1, 2]
    for model in (lgbm, xgb, cat):
        assert set(model.predict(test.drop(columns="target"))) <= {"yes", "no"}


def test_summary_verdicts_follow_the_figures(bench: ModuleType) -> None:
    """Native 0.02 better than one_hot on six datasets: 'helps'; level with ordinal: 'does not help'; an error row
    leaves its dataset out of that family's paired figures and is reported."""
    rows = []
    for i in range(6):
        base = {"dataset": f"d{i}", "max_levels": 20 if i < 2 else 3, "seconds": 1.0 + i, "error": None}
        scores = {"one_hot": 0.70 + 0.01 * i, "ordinal": 0.72 + 0.01 * i, "native": 0.72 + 0.01 * i}
        rows += [{**base, "family": "lightgbm", "variant": v, "status": "ok", "score": s} for v, s in scores.items()]
    rows.append({"dataset": "d6", "max_levels": 3, "seconds": 1.0, "family": "lightgbm", "variant": "native",
                 "status": "error", "score": None, "error": "ValueError: boom"})
    summary = bench.summarise(rows)["families"]["lightgbm"]
    assert summary["n_datasets"] == 6 and summary["errors"][0]["dataset"] == "d6"
    assert summary["native_minus"]["one_hot"]["wins"] == 6 and summary["native_minus"]["one_hot"]["ci95"][0] > 0
    assert summary["verdict"]["one_hot"].startswith("native helps over one_hot by +0.0200")
    assert summary["verdict"]["ordinal"].startswith("native does not help over ordinal (no clear difference")
    assert summary["by_levels"]["more_than_10_levels"]["n"] == 2
    assert summary["variants"]["native"]["median_seconds"] == 3.5
