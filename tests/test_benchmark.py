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
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine
from typer.testing import CliRunner

from metalearn.benchmark import (
    RESULT_COLUMNS,
    BenchmarkConfig,
    cell_scores,
    cv_cells,
    flaml_available,
    gain_by_distance,
    load_results,
    outer_split,
    paired_comparison,
    parse_strategies,
    rank_cells,
    resolve_suite,
    shortfalls,
    summarize,
    trials_to_match,
)
from metalearn.cli import app
from metalearn.datasets import from_frame
from metalearn.errors import MetalearnError

pytestmark = pytest.mark.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[1]
OPENML_FIXTURE = REPO.parent / "shared" / "fixtures" / "openml-cache"
BUDGETS = (1, 2)
FAMILIES = {"iris": "iris", "iris-noisy": "iris", "wine": "wine"}
SUMMARY_KEYS = {"suite", "n_datasets", "n_seeds", "strategies", "budgets", "median_normalized_score",
                "average_rank", "warm_trials_to_match_cold_at_50", "warm_trials_to_match_random_at_50",
                "kb_fraction_curve", "command", "machine", "hours", "targets"}
PLOTS = ("score_vs_trials.png", "score_vs_seconds.png", "rank_vs_budget.png", "kb_fraction_curve.png")


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
    from metalearn import seeding

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
        assert set(summary["median_normalized_score"][strategy]) == {"1", "2"}
        assert all(0 <= v <= 1 for v in summary["median_normalized_score"][strategy].values())
        assert all(1 <= v <= 4 for v in summary["average_rank"][strategy].values())
    assert "warm@0.5" not in summary["average_rank"]  # ablations are not ranked
    assert set(summary["kb_fraction_curve"]) == set(summary["kb_fraction_cv_curve"]) == {"0.5", "1"}
    assert summary["match_budget"] == 2 and "warm_trials_to_match_cold_at_2" in summary
    assert summary["warm_trials_to_match_cold_at_50"] in (None, 1, 2)
    assert summary["command"].startswith("metalearn benchmark --suite")
    assert summary["machine"]["cpus"] >= 1 and summary["hours"] > 0
    assert len(summary["targets"]) == 4
    assert set(summary["median_normalized_cv_score"]) >= {"warm", "cold", "random"}
    assert set(summary["paired"]["warm_vs_cold"]["cv_score"]) == {"1", "2"}
    assert summary["cv_warm_trials_to_match_cold_at_50"] in (None, 1, 2)
    by_distance = summary["warm_gain_by_distance"]
    assert set(by_distance) == {"1", "2"} and all(c["datasets"] == 3 for c in by_distance.values())
    assert all(c["spearman_rho"] is None for c in by_distance.values())  # fewer than 6 datasets
    for name in PLOTS:
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (output / "report.md").read_text()
    assert "## Targets" in report and "score_vs_trials.png" in report
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
    result = CliRunner().invoke(app, [*_args(bench["corpus"], bench["kb"], output), "--report-only"])
    assert result.exit_code == 0, result.output
    summary = json.loads((output / "summary.json").read_text())
    n_all = len({r["dataset"] for r in records})
    assert summary["report_only"] and summary["complete_datasets"] == n_all - 1 == summary["n_datasets"]
    assert "wine" not in summary["datasets"] and "Partial results" in (output / "report.md").read_text()
    assert (output / "results.jsonl").read_text().count("\n") == len(kept)  # nothing was run
    assert set(pd.read_parquet(output / "results.parquet")["dataset"]) == set(summary["datasets"])


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
    a = cells[cells["dataset_key"] == "a"].set_index(["strategy", "budget"])["normalized"]
    assert a[("random", 1)] == pytest.approx(0.0) and a[("warm", 5)] == pytest.approx(1.0)
    assert a[("cold", 5)] == pytest.approx(0.25)
    assert (cells.loc[cells["dataset_key"] == "b", "normalized"] == 1.0).all()
    ranked = rank_cells(cells, ["warm", "cold", "random"]).set_index(["dataset_key", "strategy", "budget"])["rank"]
    assert ranked[("a", "warm", 1)] == 1 and ranked[("a", "random", 1)] == 2.5
    config = BenchmarkConfig(suite="x", strategies=("warm", "cold", "random"), budgets=(1, 5, 50),
                             kb_fractions=()).validate()
    summary = summarize(frame, config)
    assert summary["warm_trials_to_match_cold_at_50"] == 5
    assert summary["median_normalized_score"]["warm"]["5"] == pytest.approx(1.0)
    assert summary["average_rank"]["warm"]["1"] == pytest.approx((1 + 2) / 2)
    assert summary["targets"]["warm_matches_cold_within_10"]["met"] is True
    assert trials_to_match({"warm": {"1": 0.1}, "cold": {"50": 0.5}}, "warm", "cold", 50) is None
    assert summary["median_normalized_cv_score"] == {}  # no CV scores in these rows


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
    assert paired["median_difference"] == pytest.approx(0.05) and paired["wilcoxon_p"] < 0.1
    assert paired_comparison(frame[frame["dataset_key"].isin(["d0", "d1"])], "warm", "cold")["1"]["wilcoxon_p"] is None
    cv = cv_cells(frame)
    assert set(cv["strategy"]) == {"warm", "cold"}
    assert (cv.loc[cv["strategy"] == "warm", "normalized"] == 1.0).all()
    assert (cv.loc[cv["strategy"] == "cold", "normalized"] == 0.0).all()


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
    assert summary["median_normalized_score"] == without["median_normalized_score"]  # the ablation is not the worst
    assert summary["median_normalized_score"]["cold"]["1"] == pytest.approx(0.0)
    assert "warm@0.5" not in summary["median_normalized_score"]
    curve = summary["kb_fraction_curve"]
    assert curve["1"]["50"] == pytest.approx(1.0) and curve["0.5"]["1"] < 0  # below the compared strategies' worst
    assert curve["0.5"]["1"] == pytest.approx((0.5 - 0.7) / (0.9 - 0.7))  # seed 0 only: 0.5 on a 0.7..0.9 scale
    assert summary["kb_fraction_seeds"] == 1
    assert summary["kb_fraction_cv_curve"]["0.5"]["1"] == pytest.approx(-1.0)  # CV: 0.45 on a 0.65..0.85 scale
    assert summary["kb_fraction_cv_curve"]["1"]["50"] == pytest.approx(1.0)
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
    assert "at no budget" in test_line and "0.500 short" in test_line and "Lever:" in test_line  # 0.5 vs 1.0
    assert any(line.startswith("On the CV score") for line in lines)
    rank_lines = [line for line in lines if line.startswith("At ")]
    assert [line.split()[1] for line in rank_lines] == ["10", "50"]  # warm leads at 1 trial only
    assert "behind cold (1.00) by 1.00" in rank_lines[0]
    met = summarize(pd.DataFrame([r for r in rows if r["strategy"] != "cold"]), replace(
        config, strategies=("warm", "random")))
    assert not [line for line in shortfalls(met) if "test score" in line]  # no cold: nothing to match


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
    import openml

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
    import metalearn.benchmark.runner as bench_module

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
    import metalearn.knowledge_base.snapshot as snapshot

    monkeypatch.setattr(snapshot, "seed_path", lambda: tmp_path / "seed-kb.json.gz")
    corpus = _write_corpus(tmp_path / "corpus")
    result = CliRunner().invoke(app, ["benchmark", "--suite", str(corpus), "--output", str(tmp_path / "out"),
                                      "--strategies", "warm,cold", "--no-progress"])
    assert result.exit_code == 2 and "seed snapshot" in result.output and "--db" in result.output
    assert not (tmp_path / "out" / "results.jsonl").exists()
