"""``metalearn benchmark`` on regression: the trial study and the equal wall-clock comparison, on tiny datasets.

Three small regression tables (diabetes, and two Friedman #1 variants sharing a family) are written as a
manifest with ``"task": "regression"``; a knowledge base is seeded on them in the test (a few cold trials),
so every query is itself in the knowledge base and the leave-one-family-out rule is checked on what the
benchmark recorded. The statistics (R^2 floor of the normalised error, raw means with CIs and medians, the
negated RMSE) are checked on hand-made rows.
"""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, make_friedman1
from test_benchmark import seed_manifest
from typer.testing import CliRunner

from metalearn.benchmark import (
    R2_FLOOR,
    BenchmarkConfig,
    cell_scores,
    flaml_available,
    outer_split,
    resolve_suite,
    score_predictions,
    suite_task,
    summarize,
)
from metalearn.benchmark.equal_time import EqualTimeConfig, run_equal_time
from metalearn.benchmark.jobs import DatasetJob, Split
from metalearn.benchmark.peers import run_flaml
from metalearn.cli import app
from metalearn.datasets import from_frame
from metalearn.errors import MetalearnError
from metalearn.seeding import DatasetSource

pytestmark = pytest.mark.filterwarnings("ignore")

FAMILIES = {"diabetes": "diabetes", "friedman": "friedman", "friedman-noisy": "friedman"}
PEERS = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "peer_worker.py"


def _frames() -> dict[str, pd.DataFrame]:
    diabetes = load_diabetes(as_frame=True).frame.sample(n=160, random_state=0).reset_index(drop=True)
    out = {"diabetes": diabetes}
    for name, noise, seed in (("friedman", 0.5, 1), ("friedman-noisy", 2.0, 2)):
        X, y = make_friedman1(n_samples=150, n_features=6, noise=noise, random_state=seed)
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(target=y)
        frame["group"] = np.random.default_rng(seed).choice(["a", "b", "c"], size=len(frame))
        out[name] = frame
    return out


def write_corpus(root: Path, extra: list[dict] | None = None) -> Path:
    """A manifest directory (``../shared/datasets-regression`` format) of the three regression tables."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, frame in _frames().items():
        frame.to_parquet(root / f"{name}.parquet", index=False)
        manifest.append({"name": name, "file": f"{name}.parquet", "target": "target", "task": "regression",
                         "family": FAMILIES[name], "categorical": ["group"] if "group" in frame else [],
                         "n_rows": len(frame), "target_unique": int(frame["target"].nunique())})
    (root / "manifest.json").write_text(json.dumps(manifest + (extra or []), indent=1))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("regression-corpus"))


@pytest.fixture(scope="module")
def seeded_kb(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_manifest(corpus, tmp_path_factory.mktemp("regression-kb") / "kb.sqlite", n_trials=3)


@pytest.fixture(scope="module")
def bench(corpus: Path, seeded_kb: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("regression-bench") / "out"
    strategies = "warm,cold" + (",flaml-zeroshot" if flaml_available() else "")
    result = CliRunner().invoke(app, ["benchmark", "--suite", str(corpus), "--strategies", strategies,
                                      "--budgets", "1,2", "--seeds", "1", "--db", str(seeded_kb), "--output",
                                      str(output), "--kb-fractions", "1", "--max-rows", "500", "--folds", "3",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    return {"output": output, "cli": result}


def test_trial_study_rows_are_regression_rows(bench: dict) -> None:
    frame = pd.read_parquet(bench["output"] / "results.parquet")
    searches = ["warm", "cold"]
    assert len(frame) == 3 * len(searches) * 2 + (3 if flaml_available() else 0)
    assert set(frame["task"]) == {"regression"} and frame["n_classes"].isna().all()
    assert set(frame["dataset"]) == set(FAMILIES)
    assert np.isfinite(frame["test_score"]).all() and (frame["test_score"] <= 1).all()
    assert (frame["test_rmse"] < 0).all()  # negated: higher is better
    assert frame["test_score"].max() > 0.2  # some model beats the mean
    search = frame[frame["strategy"].isin(searches)]
    assert search["cv_score"].notna().all()
    for _, group in search.groupby(["dataset", "strategy"]):
        assert group.sort_values("budget")["cv_score"].is_monotonic_increasing
    if flaml_available():
        zeroshot = frame[frame["strategy"] == "flaml-zeroshot"]
        assert set(zeroshot["budget"]) == {1} and (zeroshot["algorithm"] == "lgbm").all()


def test_trial_study_summary_report_and_plots(bench: dict) -> None:
    output = bench["output"]
    summary = json.loads((output / "summary.json").read_text())
    assert summary["task"] == "regression" and summary["metric"] == "r2"
    assert summary["normalization_floor"] == R2_FLOOR and summary["extra_metrics"] == ["rmse"]
    assert summary["protocol"]["metric"] == "r2" and "--task regression" in summary["command"]
    for strategy in ("warm", "cold"):
        for column in ("test_score", "test_rmse"):
            assert set(summary[f"mean_{column}"][strategy]) == {"1", "2"}
            assert set(summary[f"median_{column}"][strategy]) == {"1", "2"}
            ci = summary[f"{column}_ci"][strategy]["2"]
            assert ci["low"] <= ci["mean"] <= ci["high"]
            assert ci["mean"] == pytest.approx(summary[f"mean_{column}"][strategy]["2"])
        assert all(0 <= v <= 1 for v in summary["median_normalized_error"][strategy].values())
        assert set(summary["mean_single_test_score"][strategy]) == {"1", "2"}  # ensembles: the incumbent's R^2
    assert set(summary["paired"]["warm_vs_cold"]) == {"test_score", "test_rmse", "cv_score"}
    assert sum(summary["paired"]["warm_vs_cold"]["test_rmse"]["2"][k] for k in ("wins", "ties", "losses")) == 3
    assert summary["warm_trials_to_match_cold_at_50"] in (None, 1, 2)
    assert len(summary["targets"]) == 6
    for name in ("error_vs_trials", "error_vs_seconds", "raw_score_vs_trials", "rank_vs_budget"):
        assert (output / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    report = (output / "report.md").read_text()
    assert "## Raw test r2" in report and "rmse (negated" in report and "counts as 0" in report
    assert "| budget | test | test RMSE | CV |" in report
    assert "3 regression datasets" in report
    reference = json.loads((output / "kb.json").read_text())
    assert reference["task"] == "regression" and {d["name"] for d in reference["datasets"]} == set(FAMILIES)


def test_trial_study_leaves_the_query_family_out(bench: dict) -> None:
    records = [json.loads(line) for line in (bench["output"] / "neighbors.jsonl").read_text().splitlines()]
    assert {r["dataset"] for r in records} == set(FAMILIES)
    for record in records:
        for part in ("neighbors", "portfolio_datasets", "evidence_datasets"):
            assert all(item["family"] != record["family"] for item in record[part]), (record["dataset"], part)
    full = {r["dataset"]: r for r in records}
    assert {n["name"] for n in full["diabetes"]["neighbors"]} == {"friedman", "friedman-noisy"}
    assert {n["name"] for n in full["friedman"]["neighbors"]} == {"diabetes"}


# --------------------------------------------------------------------------- one task per run


def test_one_task_per_run(tmp_path: Path) -> None:
    classification = pd.DataFrame({"a": np.arange(40.0), "target": ["x", "y"] * 20})
    classification.to_parquet(tmp_path / "labels.parquet", index=False)
    extra = [{"name": "labels", "file": "labels.parquet", "target": "target", "task": "classification",
              "family": "labels", "categorical": []}]
    suite = write_corpus(tmp_path / "mixed", extra)
    sources = resolve_suite(str(suite))
    with pytest.raises(MetalearnError, match="mixes tasks .*3 regression.*--task"):
        suite_task(sources)
    task, chosen = suite_task(sources, "regression")
    assert task == "regression" and {s.key for s in chosen} == {f"manifest:{n}" for n in FAMILIES}
    assert [s.key for s in suite_task(sources, "classification")[1]] == ["manifest:labels"]
    result = CliRunner().invoke(app, ["benchmark", "--suite", str(suite), "--output", str(tmp_path / "out"),
                                      "--no-progress"])
    assert result.exit_code == 2 and "mixes tasks" in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(MetalearnError, match="no regression dataset"):
        suite_task([DatasetSource("k", lambda: None, "classification")], "regression")
    config = BenchmarkConfig(suite="x")
    assert config.for_task("regression").output_dir == "benchmarks/results/warmstart-regression"
    assert config.output_dir == "benchmarks/results/warmstart" and config.metric == "balanced_accuracy"
    assert BenchmarkConfig(suite="x", output="o").for_task("regression").output_dir == "o"
    assert "--task regression" in config.for_task("regression").command()
    assert EqualTimeConfig("x").for_task("regression").output_dir == "benchmarks/results/equal-time-regression"
    with pytest.raises(MetalearnError, match="unknown task"):
        BenchmarkConfig(suite="x", task="ranking").validate()


def test_outer_split_of_a_regression_dataset_is_binned_capped_and_disjoint() -> None:
    frame = _frames()["friedman"]
    dataset = from_frame(frame, "target", "friedman", ["group"], task="regression")
    train, test = outer_split(dataset, seed=0, test_size=1 / 3, max_rows=80)
    assert train.task == test.task == "regression"
    assert train.n_rows == 80 and test.n_rows == 50
    assert not pd.concat([train.X, test.X]).duplicated().any()
    # stratified on quantile bins: the test part spans the target's range
    assert test.y.min() < frame["target"].quantile(0.1) and test.y.max() > frame["target"].quantile(0.9)
    again, _ = outer_split(dataset, seed=0, test_size=1 / 3, max_rows=80)
    assert again.content_hash == train.content_hash
    scores = score_predictions("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert scores["test_rmse"] == pytest.approx(-np.sqrt(4 / 3))
    assert scores["test_score"] == pytest.approx(1 - 4 / 2)


# --------------------------------------------------------------------------- statistics on hand-made rows


def test_r2_floor_keeps_one_diverging_model_from_setting_the_scale() -> None:
    rows = []
    for key in ("a", "b", "c"):  # warm 0.8 -> 0.9, cold 0.6 -> 0.8; random diverges once on dataset a
        for strategy, scores in (("warm", (0.8, 0.9)), ("cold", (0.6, 0.8)), ("random", (0.5, 0.7))):
            for budget, score in zip((1, 50), scores, strict=True):
                for seed in (0, 1):
                    diverged = key == "a" and strategy == "random" and budget == 1 and seed == 0
                    rows.append({"dataset": key, "dataset_key": key, "family": key, "seed": seed,
                                 "strategy": strategy, "budget": budget, "seconds": 1.0, "cv_score": score,
                                 "test_score": -1e6 if diverged else score, "test_rmse": -(1 - score)})
    frame = pd.DataFrame(rows)
    config = BenchmarkConfig(suite="x", strategies=("warm", "cold", "random"), budgets=(1, 50), seeds=2,
                             kb_fractions=(), task="regression").validate()
    summary = summarize(frame, config)
    # errors per dataset .2 .1 (warm) .4 .2 (cold) .5 .3 (random; on a, with the floor, (0 + .5) / 2 -> .75):
    # best .1, median .25, whatever the diverged seed did
    assert summary["median_normalized_error"]["warm"] == {"1": pytest.approx(2 / 3), "50": 0.0}
    assert summary["median_normalized_error"]["cold"] == {"1": 1.0, "50": pytest.approx(2 / 3)}
    floored = cell_scores(frame, scale=["warm", "cold", "random"], floor=0.0)
    assert floored.set_index(["dataset_key", "strategy", "budget"]).loc[("a", "random", 1), "normalized_error"] == 1
    raw = cell_scores(frame, scale=["warm", "cold", "random"]).set_index(["dataset_key", "strategy", "budget"])
    assert raw.loc[("a", "cold", 50), "normalized_error"] == pytest.approx(2 / 3)  # the median anchor holds
    # raw statistics keep the unclipped value; the median shows what most datasets got
    assert summary["mean_test_score"]["random"]["1"] < -1e5
    assert summary["median_test_score"]["random"]["1"] == pytest.approx(0.5)
    ci = summary["test_score_ci"]["random"]["1"]
    assert ci["low"] <= ci["mean"] <= ci["high"]
    assert summary["mean_test_rmse"]["warm"]["50"] == pytest.approx(-0.1)
    assert summary["paired"]["warm_vs_cold"]["test_rmse"]["50"]["wins"] == 3
    assert summary["average_rank"]["warm"]["1"] == pytest.approx(1.0)
    assert summary["warm_trials_to_match_cold_at_50"] == 1


# --------------------------------------------------------------------------- peers


@pytest.mark.skipif(not flaml_available(), reason="flaml is not installed")
def test_flaml_in_the_trial_study_runs_as_regression(corpus: Path) -> None:
    dataset = resolve_suite(str(corpus))[1].loader()
    train, test = outer_split(dataset, seed=0)
    config = BenchmarkConfig(suite=str(corpus), strategies=("warm", "flaml"), budgets=(1, 2), folds=3,
                             task="regression").validate()
    job = DatasetJob(resolve_suite(str(corpus))[1], config, "", [], "", ("flaml",))
    (row,) = run_flaml(job, Split(dataset, train, test, 0), time_budget=2.0)
    assert row["strategy"] == "flaml" and row["budget"] == 2 and row["task"] == "regression"
    assert row["test_score"] > 0 and row["test_rmse"] < 0 and row["cv_score"] is not None


def _peer_worker() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("peer_worker", PEERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peer_worker_regression() -> None:
    worker = _peer_worker()
    frame = _frames()["friedman"]
    X = worker.plain(frame.drop(columns=["target"]), ["group"], as_category=False)
    y = worker.plain_target(frame["target"], "regression")
    assert y.dtype == np.float64 and not float(y[0]).is_integer()
    model, info = worker.fit_hgb({"task": "regression", "categorical": ["group"], "seed": 0}, X, y, 10.0)
    assert type(model[-1]).__name__ == "HistGradientBoostingRegressor" and info["native_categorical"] == 1
    assert model.predict(X).dtype == np.float64
    # a column with no value in the training rows (anneal's split crashed scikit-learn's binning): dropped
    empty = X.assign(blank=np.nan, blank_group=pd.Series([None] * len(X), dtype=object))
    args = {"task": "regression", "categorical": ["group", "blank_group"], "seed": 0}
    model, info = worker.fit_hgb(args, empty, y, 10.0)
    assert np.isfinite(model.predict(empty.assign(blank=1.0))).all() and info["native_categorical"] == 1
    if flaml_available():
        automl, info = worker.fit_flaml({"task": "regression", "cores": 1, "seed": 0}, X.astype(
            {"group": "category"}), y, 2.0)
        assert np.isfinite(automl.predict(X)).all() and info["cv_score"] is not None


# --------------------------------------------------------------------------- equal wall-clock


def test_equal_time_regression(corpus: Path, seeded_kb: Path, tmp_path: Path) -> None:
    config = EqualTimeConfig(str(corpus), systems=("metalearn", "hgb"), budgets=(6,), seeds=1, jobs=2,
                             output=str(tmp_path / "out"), db=str(seeded_kb), limit=2)
    said: list[str] = []
    summary = run_equal_time(config, echo=said.append)
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert all(r["test_rmse"] < 0 and np.isfinite(r["test_score"]) for r in rows)
    assert max(r["test_score"] for r in rows if r["system"] == "hgb") > 0.3
    assert summary["task"] == "regression" and summary["metric"] == "r2" and summary["n_datasets"] == 2
    assert {"mean_test_score", "average_rank", "paired", "test_score_ci", "median_test_score", "mean_test_rmse",
            "test_rmse_ci", "paired_rmse", "normalized_error"} <= set(summary)
    assert set(summary["paired"]) == set(summary["paired_rmse"]) == {"hgb"}
    assert json.loads((tmp_path / "out" / "state.json").read_text())["protocol"]["metric"] == "r2"
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Mean test r2" in report and "test RMSE" in report and "training mean" in report
    # the balance_weight variants make no sense for regression: skipped with a message
    again = run_equal_time(EqualTimeConfig(str(corpus), systems=("metalearn", "hgb", "autogluon-balanced"),
                                           budgets=(6,), seeds=1, jobs=2, output=str(tmp_path / "out"),
                                           db=str(seeded_kb), limit=2), echo=said.append, report_only=True)
    assert any("skipping autogluon-balanced" in line and "regression" in line for line in said)
    assert again["systems"] == ["metalearn", "hgb"] and again["n_datasets"] == 2
    with pytest.raises(MetalearnError, match="no system left to run for regression"):
        run_equal_time(EqualTimeConfig(str(corpus), systems=("autogluon-best",), output=str(tmp_path / "o2")),
                       echo=said.append, report_only=True)
