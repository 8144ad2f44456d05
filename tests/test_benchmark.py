"""End-to-end test of ``metalearn benchmark`` on three tiny datasets (two sharing a family).

The knowledge base is seeded in the test (a few cold trials on the same datasets), so every query is
itself in the knowledge base: the leak rule (no neighbour, portfolio or evidence dataset of the query's
family) is checked on what the benchmark recorded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import openml
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine
from typer.testing import CliRunner

import metalearn.benchmark.runner as bench_module
import metalearn.knowledge_base.snapshot as snapshot
from metalearn import seeding
from metalearn.benchmark import (
    RESULT_COLUMNS,
    BenchmarkConfig,
    banner,
    cell_scores,
    cv_cells,
    flaml_available,
    gain_by_distance,
    load_results,
    normalized_error,
    outer_split,
    paired_comparison,
    parse_strategies,
    rank_cells,
    resolve_suite,
    shortfalls,
    summarize,
    trials_to_match,
)
from metalearn.benchmark.runner import _sources
from metalearn.benchmark.suite import select_sources
from metalearn.cli import app
from metalearn.datasets import from_frame
from metalearn.errors import MetalearnError
from metalearn.seeding import DatasetSource

pytestmark = pytest.mark.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[1]
OPENML_FIXTURE = REPO.parent / "shared" / "fixtures" / "openml-cache"
BUDGETS = (1, 2)
FAMILIES = {"iris": "iris", "iris-noisy": "iris", "wine": "wine"}
SUMMARY_KEYS = {"suite", "n_datasets", "n_seeds", "strategies", "budgets", "median_normalized_error",
                "mean_normalized_error", "average_rank", "warm_trials_to_match_cold_at_50",
                "warm_trials_to_match_random_at_50", "kb_fraction_curve", "command", "machine", "hours", "targets",
                "mean_test_score", "test_score_ci", "mean_single_test_score", "normalization"}
PLOTS = ("error_vs_trials.png", "error_vs_seconds.png", "raw_score_vs_trials.png", "rank_vs_budget.png",
         "kb_fraction_curve.png")


def _write_corpus(root: Path) -> Path:
    """A manifest directory with iris, a noisy iris variant (same family) and wine."""
    root.mkdir(parents=True, exist_ok=True)
    iris = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    rng = np.random.default_rng(0)
    noisy = iris.sample(n=120, random_state=1).reset_index(drop=True)
    noisy["noise"] = rng.normal(size=len(noisy))
    noisy["colour"] = rng.choice(["red", "green", "blue"], size=len(noisy))
    noisy["target"] = noisy["target"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    wine = load_wine(as_frame=True).frame
    manifest = []
    for name, frame in (("iris", iris), ("iris-noisy", noisy), ("wine", wine)):
        frame.to_parquet(root / f"{name}.parquet", index=False)
        manifest.append({"name": name, "file": f"{name}.parquet", "target": "target", "family": FAMILIES[name],
                         "categorical": ["colour"] if "colour" in frame else [], "n_rows": len(frame)})
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def seed_manifest(corpus: Path, path: Path, n_trials: int) -> Path:
    """A knowledge base at ``path`` seeded with ``n_trials`` cold trials on every dataset of the manifest
    ``corpus`` (also used by ``test_benchmark_regression``)."""
    protocol = seeding.SeedProtocol(n_trials=n_trials, folds=3, max_rows=500, trial_time_limit=60.0)
    outcome = seeding.seed(seeding.manifest_sources(str(corpus)), str(path), protocol)
    assert all(s["status"] == "done" for s in outcome["datasets"]), outcome["datasets"]
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def seeded_kb(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_manifest(corpus, tmp_path_factory.mktemp("kb") / "kb.sqlite", n_trials=4)


def _strategies() -> str:
    return "warm,cold,random" + (",flaml-zeroshot" if flaml_available() else "")


def _args(corpus: Path, kb: Path, output: Path) -> list[str]:
    return ["benchmark", "--suite", str(corpus), "--strategies", _strategies(), "--budgets", "1,2", "--seeds", "1",
            "--db", str(kb), "--output", str(output), "--kb-fractions", "0.5,1.0", "--max-rows", "500",
            "--folds", "3", "--no-progress"]


@pytest.fixture(scope="module")
def bench(corpus: Path, seeded_kb: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("bench") / "out"
    before = _sha256(seeded_kb)
    result = CliRunner().invoke(app, _args(corpus, seeded_kb, output))
    assert result.exit_code == 0, result.output
    return {"output": output, "cli": result, "kb_hash_before": before, "kb": seeded_kb, "corpus": corpus}


def test_results_parquet_schema(bench: dict) -> None:
    frame = pd.read_parquet(bench["output"] / "results.parquet")
    assert set(RESULT_COLUMNS) <= set(frame.columns)
    searches = ["warm", "warm@0.5", "cold", "random"]
    expected = 3 * len(searches) * len(BUDGETS) + (3 if flaml_available() else 0)
    assert len(frame) == expected
    assert set(frame["dataset"]) == set(FAMILIES)
    assert (frame["family"] == frame["dataset"].map(FAMILIES)).all()
    assert frame["test_score"].between(0, 1).all()
    assert (frame["seconds"] > 0).all()
    search = frame[frame["strategy"].isin(searches)]
    assert set(search["budget"]) == set(BUDGETS)
    assert search["cv_score"].notna().all()
    assert (search["trials"] <= search["budget"]).all()
    for _, group in search.groupby(["dataset", "strategy"]):
        group = group.sort_values("budget")
        assert group["seconds"].is_monotonic_increasing  # seconds elapsed at that budget
        assert group["cv_score"].is_monotonic_increasing  # the incumbent only improves
    # ensembles by default: test_score is the ensemble of the trials so far, single_test_score the incumbent's
    assert search["single_test_score"].between(0, 1).all() and (search["ensemble_members"] >= 1).all()
    assert search["ensemble_oof_score"].between(0, 1).all()
    first = search[search["budget"] == 1]  # one trial: the ensemble is that trial's pipeline, the incumbent
    assert (first["ensemble_members"] == 1).all() and (first["test_score"] == first["single_test_score"]).all()
    assert set(frame.loc[frame["strategy"] == "warm@0.5", "kb_fraction"]) == {0.5}
    if flaml_available():
        zeroshot = frame[frame["strategy"] == "flaml-zeroshot"]
        assert set(zeroshot["budget"]) == {1} and (zeroshot["trials"] == 1).all()


def test_summary_plots_and_report(bench: dict) -> None:
    output = bench["output"]
    summary = json.loads((output / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["n_datasets"] == 3 and summary["n_seeds"] == 1
    assert summary["budgets"] == list(BUDGETS)
    for strategy in ("warm", "cold", "random"):
        for key in ("median_normalized_error", "mean_normalized_error"):
            assert set(summary[key][strategy]) == {"1", "2"}
            assert all(0 <= v <= 1 for v in summary[key][strategy].values())
        assert all(1 <= v <= 4 for v in summary["average_rank"][strategy].values())
        assert set(summary["mean_single_test_score"][strategy]) == {"1", "2"}
    assert summary["ensemble_size"] == 25 and summary["protocol"]["ensemble_size"] == 25
    assert not {"median_normalized_score", "median_normalized_cv_score"} & set(summary)  # the old scale is gone
    assert "warm@0.5" not in summary["average_rank"]  # ablations are not ranked
    assert set(summary["kb_fraction_curve"]) == set(summary["kb_fraction_cv_curve"]) == {"0.5", "1"}
    assert summary["match_budget"] == 2 and "warm_trials_to_match_cold_at_2" in summary
    assert summary["warm_trials_to_match_cold_at_50"] in (None, 1, 2)
    assert summary["command"].startswith("metalearn benchmark --suite")
    assert summary["machine"]["cpus"] >= 1 and summary["hours"] > 0
    assert len(summary["targets"]) == 6  # budgets 1, 2: issue #22's targets (10 vs 50 trials) are not measured
    assert summary["targets"]["warm_ensemble_at_10_beats_single_at_50"]["met"] is None
    assert summary["targets"]["warm_ensemble_at_10_beats_single_at_50"]["value"].startswith("not measured")
    assert set(summary["median_normalized_cv_error"]) >= {"warm", "cold", "random"}
    assert set(summary["paired"]["warm_vs_cold"]["cv_score"]) == {"1", "2"}
    assert summary["cv_warm_trials_to_match_cold_at_50"] in (None, 1, 2)
    by_distance = summary["warm_gain_by_distance"]
    assert set(by_distance) == {"1", "2"} and all(c["datasets"] == 3 for c in by_distance.values())
    assert all(c["spearman_rho"] is None for c in by_distance.values())  # fewer than 6 datasets
    for name in PLOTS:
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (output / "report.md").read_text()
    assert "## Targets" in report and "error_vs_trials.png" in report and "not measured" in report
    assert report.index("## Headline") < report.index("## Average rank")
    assert "Partial results" not in report and "Not in this run" not in report  # a complete run: no banner
    assert "report.md" in bench["cli"].output


def test_leak_rule_no_neighbour_of_the_query_family(bench: dict) -> None:
    records = [json.loads(line) for line in (bench["output"] / "neighbors.jsonl").read_text().splitlines()]
    assert {(r["dataset"], r["strategy"]) for r in records} == {(d, s) for d in FAMILIES for s in ("warm", "warm@0.5")}
    for record in records:
        family = record["family"]
        assert family == FAMILIES[record["dataset"]]
        for part in ("neighbors", "portfolio_datasets", "evidence_datasets"):
            assert all(item["family"] != family for item in record[part]), (record["dataset"], part)
    full = {r["dataset"]: r for r in records if r["strategy"] == "warm"}
    # the rule is not vacuous: wine's neighbours are the two iris datasets; an iris query only sees wine
    assert {n["name"] for n in full["wine"]["neighbors"]} == {"iris", "iris-noisy"}
    assert {n["name"] for n in full["iris"]["neighbors"]} == {"wine"}
    assert {n["name"] for n in full["iris-noisy"]["portfolio_datasets"]} == {"wine"}
    frame = pd.read_parquet(bench["output"] / "results.parquet")
    for row in frame.itertuples():
        assert row.family not in list(row.neighbor_families)


def test_source_knowledge_base_is_untouched(bench: dict) -> None:
    assert _sha256(bench["kb"]) == bench["kb_hash_before"]
    scratch = json.loads((bench["output"] / "kb.json").read_text())
    assert {d["name"] for d in scratch["datasets"]} == set(FAMILIES)  # frozen reference set


def test_resume_adds_nothing(bench: dict) -> None:
    output = bench["output"]
    lines = (output / "results.jsonl").read_text().count("\n")
    result = CliRunner().invoke(app, _args(bench["corpus"], bench["kb"], output))
    assert result.exit_code == 0, result.output
    assert (output / "results.jsonl").read_text().count("\n") == lines
    assert json.loads((output / "summary.json").read_text())["new_rows"] == 0
    # a combination missing from the checkpoint (an interrupted run) is run again, and only that one
    records = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    kept = [r for r in records if not (r["dataset"] == "wine" and r["strategy"] == "random")]
    (output / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    result = CliRunner().invoke(app, _args(bench["corpus"], bench["kb"], output))
    assert result.exit_code == 0, result.output
    assert json.loads((output / "summary.json").read_text())["new_rows"] == len(BUDGETS)
    assert len(pd.read_parquet(output / "results.parquet")) == len(records)
    # a changed protocol in the same output directory is refused
    changed = _args(bench["corpus"], bench["kb"], output)
    changed[changed.index("--folds") + 1] = "4"
    result = CliRunner().invoke(app, changed)
    assert result.exit_code == 2 and "different protocol" in result.output


def test_report_only_summarises_the_complete_datasets_and_runs_nothing(bench: dict, tmp_path: Path) -> None:
    output = tmp_path / "partial"
    shutil.copytree(bench["output"], output)
    records = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()]
    kept = [r for r in records if not (r["dataset"] == "wine" and r["strategy"] == "random")]
    (output / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    for name in ("kb.sqlite", "kb.sqlite-wal", "kb.sqlite-shm"):  # as in a committed results directory
        (output / name).unlink(missing_ok=True)
    frozen = (output / "kb.json").read_bytes()
    result = CliRunner().invoke(app, [*_args(bench["corpus"], bench["kb"], output), "--report-only"])
    assert result.exit_code == 0, result.output
    summary = json.loads((output / "summary.json").read_text())
    n_all = len({r["dataset"] for r in records})
    assert summary["report_only"] and summary["complete_datasets"] == n_all - 1 == summary["n_datasets"]
    assert (summary["unfinished_datasets"], summary["datasets_without_results"], summary["datasets_in_suite"]) \
        == (1, 0, n_all)
    report = (output / "report.md").read_text()
    assert "wine" not in summary["datasets"] and "1 more have started but not finished" in report
    assert "Not in this run" not in report
    assert (output / "results.jsonl").read_text().count("\n") == len(kept)  # nothing was run
    assert set(pd.read_parquet(output / "results.parquet")["dataset"]) == set(summary["datasets"])
    # no knowledge base is read or made: the frozen reference list stays as the run left it
    assert not (output / "kb.sqlite").exists() and (output / "kb.json").read_bytes() == frozen


def test_report_only_of_a_run_made_before_ensembles(bench: dict, tmp_path: Path) -> None:
    output = tmp_path / "legacy"
    shutil.copytree(bench["output"], output)
    state = json.loads((output / "state.json").read_text())
    for key in ("ensemble_size", "ensemble_candidates"):  # a state.json that predates them
        del state["protocol"][key]
    (output / "state.json").write_text(json.dumps(state))
    new = {"single_test_score", "single_test_rmse", "ensemble_members", "ensemble_oof_score"}
    records = [{k: v for k, v in json.loads(line).items() if k not in new}
               for line in (output / "results.jsonl").read_text().splitlines()]
    (output / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = CliRunner().invoke(app, [*_args(bench["corpus"], bench["kb"], output), "--report-only"])
    assert result.exit_code == 0, result.output
    summary = json.loads((output / "summary.json").read_text())
    assert summary["ensemble_size"] == 0 and summary["protocol"]["ensemble_size"] == 0
    assert "mean_single_test_score" not in summary
    target = summary["targets"]["warm_ensemble_at_10_beats_single_at_50"]
    assert target["met"] is None and target["value"].startswith("not measured: this run built no ensembles")
    assert summary["command"] == state["invocations"][-1]["command"]  # the command that made the rows
    assert summary["complete_datasets"] == 3 and summary["unfinished_datasets"] == 0
    report = (output / "report.md").read_text()
    assert "Partial results" not in report and "Not in this run" not in report
    # resuming it with ensembles (the default) would mix two protocols: refused
    result = CliRunner().invoke(app, _args(bench["corpus"], bench["kb"], output))
    assert result.exit_code == 2 and "different protocol (ensemble_candidates, ensemble_size)" in result.output


# --------------------------------------------------------------------------- units (fast)


def test_summary_arithmetic() -> None:
    rows = []
    # dataset a: warm reaches cold's best at 2 trials; dataset b: all equal
    for key, table in {"a": {"warm": [0.6, 0.9, 0.9], "cold": [0.5, 0.6, 0.9], "random": [0.5, 0.5, 0.7]},
                       "b": {"warm": [0.8] * 3, "cold": [0.8] * 3, "random": [0.8] * 3}}.items():
        for strategy, scores in table.items():
            for budget, score in zip((1, 5, 50), scores, strict=True):
                for seed in (0, 1):
                    rows.append({"dataset": key, "dataset_key": key, "family": key, "seed": seed,
                                 "strategy": strategy, "budget": budget, "test_score": score + 0.01 * seed,
                                 "seconds": float(budget)})
    frame = pd.DataFrame(rows)
    cells = cell_scores(frame)
    a = cells[cells["dataset_key"] == "a"].set_index(["strategy", "budget"])["normalized_error"]
    # errors .4 .1 .1 / .5 .4 .1 / .5 .5 .3 (less .005): best .1, median .4
    assert a[("warm", 5)] == a[("cold", 50)] == pytest.approx(0.0) and a[("warm", 1)] == pytest.approx(1.0)
    assert a[("random", 50)] == pytest.approx(2 / 3) and a[("random", 1)] == 1.0  # clipped from 4 / 3
    assert (cells.loc[cells["dataset_key"] == "b", "normalized_error"] == 0.0).all()  # all equal: all best
    ranked = rank_cells(cells, ["warm", "cold", "random"]).set_index(["dataset_key", "strategy", "budget"])["rank"]
    assert ranked[("a", "warm", 1)] == 1 and ranked[("a", "random", 1)] == 2.5
    config = BenchmarkConfig(suite="x", strategies=("warm", "cold", "random"), budgets=(1, 5, 50),
                             kb_fractions=()).validate()
    summary = summarize(frame, config)
    assert summary["warm_trials_to_match_cold_at_50"] == 5
    assert summary["median_normalized_error"]["warm"] == {"1": 0.5, "5": 0.0, "50": 0.0}
    assert summary["mean_normalized_error"]["random"]["50"] == pytest.approx((2 / 3 + 0) / 2)
    assert summary["average_rank"]["warm"]["1"] == pytest.approx((1 + 2) / 2)
    assert summary["targets"]["warm_matches_cold_within_10"]["met"] is True
    assert trials_to_match({"warm": {"1": 0.6}, "cold": {"50": 0.5}}, "warm", "cold", 50) is None
    assert trials_to_match({"warm": {"1": 0.6, "5": 0.5}, "cold": {"50": 0.5}}, "warm", "cold", 50) == 5
    assert summary["median_normalized_cv_error"] == {}  # no CV scores in these rows


def test_paired_comparison_and_cv_normalisation() -> None:
    rows = []
    for i in range(8):  # warm wins on 6 datasets, ties on 1, loses on 1 (test); CV: warm always ahead
        diff = 0.05 if i < 6 else (0.0 if i == 6 else -0.02)
        for strategy, delta in (("warm", diff), ("cold", 0.0)):
            rows.append({"dataset_key": f"d{i}", "strategy": strategy, "budget": 1, "seed": 0,
                         "test_score": 0.7 + delta, "cv_score": 0.6 + (0.1 if strategy == "warm" else 0.0),
                         "seconds": 1.0})
    rows.append({"dataset_key": "d0", "strategy": "flaml", "budget": 1, "seed": 0, "test_score": 0.99,
                 "cv_score": 0.1, "seconds": 1.0})  # a peer's own CV is not comparable: left out
    frame = pd.DataFrame(rows)
    paired = paired_comparison(frame, "warm", "cold")["1"]
    assert (paired["wins"], paired["ties"], paired["losses"]) == (6, 1, 1)
    assert paired["median_difference"] == pytest.approx(0.05) and paired["p"] < 0.1
    assert paired_comparison(frame[frame["dataset_key"].isin(["d0", "d1"])], "warm", "cold")["1"]["p"] is None
    cv = cv_cells(frame)
    assert set(cv["strategy"]) == {"warm", "cold"}
    assert (cv.loc[cv["strategy"] == "warm", "normalized_error"] == 0.0).all()
    assert (cv.loc[cv["strategy"] == "cold", "normalized_error"] == 1.0).all()


def test_ablations_do_not_move_the_headline_and_run_on_the_chosen_seeds(tmp_path: Path) -> None:
    rows = []
    for key in ("a", "b"):
        for seed in (0, 1, 2):
            for strategy, score in (("warm", 0.8), ("cold", 0.7), ("warm@0.5", 0.5)):
                for budget in (1, 50):
                    rows.append({"dataset": key, "dataset_key": key, "family": key, "seed": seed,
                                 "strategy": strategy, "budget": budget, "seconds": 1.0,
                                 "test_score": score + 0.1 * (budget == 50) + 0.01 * seed})
                    rows[-1]["cv_score"] = rows[-1]["test_score"] - 0.05
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = BenchmarkConfig(suite="x", strategies=("warm", "cold"), budgets=(1, 50), seeds=3,
                             kb_fractions=(0.5, 1.0), kb_fraction_seeds=1).validate()
    assert config.strategies_for(0) == ("warm", "cold", "warm@0.5")
    assert config.strategies_for(2) == ("warm", "cold")
    assert "--kb-fraction-seeds 1" in config.command()
    frame = load_results(tmp_path, config)
    assert set(frame.loc[frame["strategy"] == "warm@0.5", "seed"]) == {0}  # later seeds' ablation rows left out
    assert len(frame) == 2 * 2 * (3 * 2 + 1)
    summary = summarize(frame, config)
    without = summarize(frame[frame["strategy"] != "warm@0.5"], replace(config, kb_fractions=()))
    assert summary["median_normalized_error"] == without["median_normalized_error"]  # the ablation sets no scale
    assert summary["median_normalized_error"]["warm"]["50"] == pytest.approx(0.0)
    assert "warm@0.5" not in summary["median_normalized_error"]
    curve = summary["kb_fraction_curve"]
    # seed 0 only: errors .2 .1 (warm) .3 .2 (cold): best .1, median .2; warm@0.5 (errors .5, .4) clipped to 1
    assert curve["1"]["50"] == pytest.approx(0.0) and curve["1"]["1"] == pytest.approx(1.0)
    assert curve["0.5"] == {"1": 1.0, "50": 1.0}
    assert summary["kb_fraction_seeds"] == 1
    assert summary["kb_fraction_cv_curve"]["0.5"]["1"] == 1.0 and summary["kb_fraction_cv_curve"]["1"]["50"] == 0.0
    with pytest.raises(MetalearnError, match="kb-fraction-seeds"):
        replace(config, kb_fraction_seeds=0).validate()


def test_missed_targets_are_reported_with_the_gap_and_a_lever() -> None:
    rows = []
    for key in ("a", "b", "c"):  # warm flat at 0.7, cold climbs past it: warm never matches cold at 50
        for strategy, scores in (("warm", (0.7, 0.7, 0.7)), ("cold", (0.6, 0.75, 0.9)), ("random", (0.5, 0.6, 0.8))):
            for budget, score in zip((1, 10, 50), scores, strict=True):
                rows.append({"dataset": key, "dataset_key": key, "family": key, "seed": 0, "strategy": strategy,
                             "budget": budget, "test_score": score, "cv_score": score, "seconds": 1.0})
    config = BenchmarkConfig(suite="x", strategies=("warm", "cold", "random"), budgets=(1, 10, 50),
                             kb_fractions=()).validate()
    summary = summarize(pd.DataFrame(rows), config)
    assert summary["warm_trials_to_match_cold_at_50"] is None
    lines = shortfalls(summary)
    test_line = next(line for line in lines if line.startswith("On the test score"))
    # errors per dataset .3 .3 .3 / .4 .25 .1 / .5 .4 .2: best .1, median .3, so warm is 1.0 and cold@50 0.0
    assert "at no budget" in test_line and "1.000 above" in test_line and "Lever:" in test_line
    assert any(line.startswith("On the CV score") for line in lines)
    rank_lines = [line for line in lines if line.startswith("At ")]
    assert [line.split()[1] for line in rank_lines] == ["10", "50"]  # warm leads at 1 trial only
    assert "behind cold (1.00) by 1.00" in rank_lines[0]
    met = summarize(pd.DataFrame([r for r in rows if r["strategy"] != "cold"]), replace(
        config, strategies=("warm", "random")))
    assert not [line for line in shortfalls(met) if "test score" in line]  # no cold: nothing to match


def test_normalized_error_is_anchored_on_the_median_cell_and_clipped() -> None:
    # one dataset, cold's first point (0.10) far below the rest: it no longer sets the scale
    scores = {("cold", 1): 0.10, ("cold", 10): 0.70, ("cold", 50): 0.80, ("warm", 1): 0.75, ("warm", 10): 0.85,
              ("warm", 50): 0.90, ("warm@0.5", 1): 0.95}
    table = pd.DataFrame([{"dataset_key": "d", "strategy": s, "budget": b, "test_score": v}
                          for (s, b), v in scores.items()])
    error = normalized_error(table, reference=table["strategy"].isin(["warm", "cold"]))
    got = dict(zip(zip(table["strategy"], table["budget"], strict=True), error, strict=True))
    # errors of the reference cells .9 .3 .2 .25 .15 .1: best .1, median (.2 + .25) / 2 = .225
    assert got[("warm", 50)] == 0.0 and got[("warm", 10)] == pytest.approx(0.05 / 0.125)
    assert got[("cold", 50)] == pytest.approx(0.1 / 0.125) and got[("warm", 1)] == 1.0  # .15 / .125, clipped
    assert got[("cold", 1)] == 1.0 and got[("cold", 10)] == 1.0
    assert got[("warm@0.5", 1)] == 0.0  # outside the reference: placed on its scale, clipped at the best
    # the worst cell does not move the others (min-max scaling would: it set 0 and the span there)
    worse = table.copy()
    worse.loc[(worse["strategy"] == "cold") & (worse["budget"] == 1), "test_score"] = -5.0
    assert normalized_error(worse, reference=table["strategy"].isin(["warm", "cold"])).tolist() == error.tolist()
    # a tie at the median: the best is 0, the rest 1; a group without the reference sets its own scale
    tied = pd.DataFrame({"dataset_key": ["t"] * 3 + ["u"] * 2, "test_score": [0.9, 0.8, 0.8, 0.5, 0.7],
                         "strategy": ["warm", "cold", "random", "flaml", "flaml"]})
    assert normalized_error(tied, reference=tied["strategy"] != "flaml").tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    # by dataset and budget (the equal-time benchmark's grouping), NaN scores stay NaN
    two = pd.DataFrame({"dataset_key": "d", "budget": [60, 60, 180, 180], "test_score": [0.9, 0.7, np.nan, 0.6]})
    values = normalized_error(two, by=("dataset_key", "budget"))
    assert values[:2].tolist() == [0.0, 1.0] and np.isnan(values[2]) and values[3] == 0.0


def test_r2_floor_of_the_normalised_error() -> None:
    rows = [{"dataset_key": "d", "strategy": s, "budget": b, "seed": seed, "seconds": 1.0, "test_score": v}
            for s, b, values in (("warm", 1, (-1e6, 0.9)), ("warm", 50, (0.9, 0.9)), ("cold", 1, (0.3, 0.3)),
                                 ("cold", 50, (0.4, 0.4)))
            for seed, v in enumerate(values)]
    frame = pd.DataFrame(rows)
    floored = cell_scores(frame, floor=0.0).set_index(["strategy", "budget"])
    # warm@1 counts as (0 + .9) / 2 = .45: errors .55 .1 .7 .6, median .575 -> (.55 - .1) / .475
    assert floored.loc[("warm", 1), "normalized_error"] == pytest.approx(0.45 / 0.475)
    assert floored.loc[("warm", 1), "test_score"] < -1e5  # the raw mean keeps the diverged seed
    raw = cell_scores(frame).set_index(["strategy", "budget"])
    assert raw.loc[("warm", 1), "normalized_error"] == 1.0


def test_ensemble_targets_and_the_not_measured_path() -> None:
    rows = []
    for key in ("a", "b"):  # the ensemble after 10 (0.86) beats the single pipeline after 50 (0.84)
        for budget, ensemble, single in ((1, 0.70, 0.70), (10, 0.86, 0.83), (50, 0.85, 0.84)):
            for strategy in ("warm", "cold"):
                rows.append({"dataset": key, "dataset_key": key, "family": key, "seed": 0, "strategy": strategy,
                             "budget": budget, "seconds": 1.0, "test_score": ensemble - (strategy == "cold") * 0.1,
                             "single_test_score": single})
    frame = pd.DataFrame(rows)
    config = BenchmarkConfig(suite="x", strategies=("warm", "cold"), budgets=(1, 10, 50), kb_fractions=()).validate()
    targets = summarize(frame, config)["targets"]
    assert targets["warm_ensemble_at_10_beats_single_at_50"]["met"] is True
    assert targets["warm_ensemble_at_10_beats_single_at_50"]["value"] == {"ensemble_at_10": pytest.approx(0.86),
                                                                          "single_at_50": pytest.approx(0.84)}
    assert targets["warm_at_50_not_below_warm_at_10"]["met"] is False  # 0.85 < 0.86
    assert any("after 50 vs 0.8600 after 10" in line for line in shortfalls(summarize(frame, config)))
    # rows without the single pipeline's score (made before it was recorded), or a run without ensembles
    old = summarize(frame.drop(columns=["single_test_score"]), config)["targets"]
    assert old["warm_ensemble_at_10_beats_single_at_50"]["met"] is None
    assert old["warm_ensemble_at_10_beats_single_at_50"]["value"].startswith("not measured: no warm ensemble")
    assert old["warm_at_50_not_below_warm_at_10"]["met"] is False  # measured on any rows
    single = summarize(frame, replace(config, ensemble_size=0))
    assert single["targets"]["warm_ensemble_at_10_beats_single_at_50"]["value"].startswith(
        "not measured: this run built no ensembles")
    assert "mean_single_test_score" not in single and single["protocol"]["ensemble_candidates"] == 0


def test_banner_only_for_incomplete_datasets() -> None:
    base = {"report_only": True, "complete_datasets": 121, "datasets_in_suite": 121, "unfinished_datasets": 0,
            "datasets_without_results": 0}
    assert banner(base) == [] and banner({"complete_datasets": 3}) == []  # complete, or not --report-only
    partial = "\n".join(banner(base | {"complete_datasets": 100, "unfinished_datasets": 2,
                                       "datasets_without_results": 19}))
    assert "**Partial results**" in partial and "the 100 datasets" in partial and "2 more have started" in partial
    assert "19 of the 121 datasets the suite lists now have no result" in partial
    grown = "\n".join(banner(base | {"datasets_in_suite": 185, "datasets_without_results": 64}))
    assert "Partial results" not in grown and "64 of the 185 datasets" in grown


def test_a_dataset_listed_twice_runs_once(tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path / "corpus")
    manifest = json.loads((corpus / "manifest.json").read_text())
    (corpus / "manifest.json").write_text(json.dumps(manifest + [dict(manifest[0], source="another copy")]))
    assert len(resolve_suite(str(corpus))) == 4
    config, sources = _sources(BenchmarkConfig(suite=str(corpus), shuffle=True).validate())
    assert sorted(s.key for s in sources) == ["manifest:iris", "manifest:iris-noisy", "manifest:wine"]
    assert len(_sources(BenchmarkConfig(suite=str(corpus), limit=3).validate())[1]) == 3


def test_gain_by_distance_correlates_the_warm_gain_with_the_nearest_neighbour() -> None:
    rows, records = [], []
    for i in range(8):  # the farther the nearest neighbour, the smaller warm's CV gain; the two farthest are "far"
        for strategy, cv in (("warm", 0.9 - 0.01 * i), ("cold", 0.8)):
            rows.append({"dataset_key": f"d{i}", "seed": 0, "strategy": strategy, "budget": 1, "cv_score": cv,
                         "test_score": cv})
        records.append({"dataset_key": f"d{i}", "seed": 0, "strategy": "warm", "far": i >= 6,
                        "neighbors": [{"distance": 0.1 * (i + 1)}, {"distance": 2.0}]})
    records.append({"dataset_key": "d0", "seed": 0, "strategy": "warm@0.5", "far": True,
                    "neighbors": [{"distance": 9.0}]})  # ablations are not the warm start measured here
    effect = gain_by_distance(pd.DataFrame(rows), records)["1"]
    assert effect["datasets"] == 8 and effect["spearman_rho"] == pytest.approx(-1.0) and effect["p"] < 0.01
    assert effect["far_datasets"] == 2
    assert effect["mean_gain_far"] == pytest.approx(0.1 - 0.065) and effect["mean_gain_near"] == pytest.approx(0.075)
    assert gain_by_distance(pd.DataFrame(rows), []) == {}


def test_outer_split_is_stratified_capped_and_disjoint() -> None:
    frame = load_wine(as_frame=True).frame
    frame.loc[0, "target"] = 7  # a class with a single row goes to train
    dataset = from_frame(frame, "target", "wine", family="wine")
    train, test = outer_split(dataset, seed=0, test_size=1 / 3, max_rows=60)
    assert train.n_rows == 60 and 50 <= test.n_rows <= 62
    assert 7 in set(train.y) and 7 not in set(test.y)
    assert set(np.unique(test.y)) == {0, 1, 2}
    joined = pd.concat([train.X, test.X])
    assert not joined.duplicated().any()
    again, _ = outer_split(dataset, seed=0, test_size=1 / 3, max_rows=60)
    assert again.content_hash == train.content_hash


def test_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(MetalearnError, match="unknown strategy"):
        parse_strategies("warm,hot")
    with pytest.raises(MetalearnError, match="needs warm"):
        BenchmarkConfig(suite="x", strategies=("cold", "flaml")).validate()
    with pytest.raises(MetalearnError, match="no manifest"):
        resolve_suite(str(tmp_path / "nowhere" / "datasets"))
    result = CliRunner().invoke(app, ["benchmark", "--suite", str(tmp_path), "--budgets", "0"])
    assert result.exit_code == 2 and "budgets" in result.output


def test_unknown_openml_suite_is_a_clear_error(tmp_path: Path) -> None:
    if not OPENML_FIXTURE.is_dir():
        pytest.skip("../shared/fixtures/openml-cache is not present")

    cache = tmp_path / "openml-cache"
    shutil.copytree(OPENML_FIXTURE, cache)
    old = (openml.config.server, openml.config.connection_n_retries)
    openml.config.set_root_cache_directory(str(cache))
    openml.config.server = "https://test.openml.org/api/v1/xml"
    openml.config.connection_n_retries = 1
    try:
        with pytest.raises(MetalearnError, match="OpenML suite 'no-such-suite'"):
            resolve_suite("no-such-suite", str(cache))
        result = CliRunner().invoke(app, ["benchmark", "--suite", "no-such-suite", "--cache-dir", str(cache),
                                          "--output", str(tmp_path / "out"), "--no-progress"])
        assert result.exit_code == 2 and "OpenML suite 'no-such-suite'" in result.output
        assert not (tmp_path / "out" / "results.parquet").exists()
    finally:
        openml.config.server, openml.config.connection_n_retries = old


def test_missing_flaml_skips_the_peers_with_a_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bench_module, "flaml_available", lambda: False)
    said: list[str] = []
    config = BenchmarkConfig(suite=str(tmp_path / "missing" / "dir"), strategies=("warm", "flaml"),
                             output=str(tmp_path / "out"))
    with pytest.raises(MetalearnError, match="no manifest"):
        bench_module.run_benchmark(config, echo=said.append, progress=False)
    assert any("skipping flaml" in line for line in said)
    with pytest.raises(MetalearnError, match="no strategy left"):
        bench_module.run_benchmark(replace(config, strategies=("flaml-zeroshot",)), echo=said.append)


def test_without_db_the_seed_snapshot_is_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(snapshot, "seed_path", lambda: tmp_path / "seed-kb.json.gz")
    corpus = _write_corpus(tmp_path / "corpus")
    result = CliRunner().invoke(app, ["benchmark", "--suite", str(corpus), "--output", str(tmp_path / "out"),
                                      "--strategies", "warm,cold", "--no-progress"])
    assert result.exit_code == 2 and "seed snapshot" in result.output and "--db" in result.output
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_select_sources_by_file_dedupes_checks_names_and_limits(tmp_path: Path) -> None:
    """``--datasets FILE`` keeps the named datasets in the file's order; an unknown name is an error."""
    sources = [DatasetSource(f"manifest:{n}", loader=dict) for n in ("a", "b", "c", "a")]
    (tmp_path / "pick.json").write_text(json.dumps({"datasets": ["c", "a"]}))
    assert [s.key for s in select_sources(sources)] == ["manifest:a", "manifest:b", "manifest:c"]
    assert [s.key for s in select_sources(sources, datasets=str(tmp_path / "pick.json"))] == ["manifest:c",
                                                                                                "manifest:a"]
    (tmp_path / "pick.txt").write_text("# chosen\nb\n")
    assert [s.key for s in select_sources(sources, datasets=str(tmp_path / "pick.txt"), limit=1)] == ["manifest:b"]
    (tmp_path / "bad.json").write_text(json.dumps(["a", "zzz"]))
    with pytest.raises(MetalearnError, match="zzz"):
        select_sources(sources, datasets=str(tmp_path / "bad.json"))
