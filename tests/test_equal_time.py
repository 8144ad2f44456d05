"""The equal wall-clock benchmark (``python -m metalearn.benchmark.equal_time``) on two tiny datasets.

One module-scoped run of metalearn, metalearn-cold and hgb at an 8 s budget (two runs at a time) on
breast_cancer and wine; its rows, times, summary and resumption are checked. The statistics are
checked on a hand-made table, the hard cap and crash handling on stand-in worker commands.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import time
import types
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from typer.testing import CliRunner

from metalearn.benchmark.config import parse_budgets as parse_trial_budgets
from metalearn.benchmark.equal_time import (
    EqualTimeConfig,
    Split,
    Task,
    done_tasks,
    main,
    plain_frame,
    result_row,
    run_equal_time,
)
from metalearn.benchmark.equal_time_report import (
    _paired_cell,
    bootstrap_ci,
    by_family,
    cells,
    complete_keys,
    normalized_errors,
    paired,
    ranked,
    select,
    summarize,
    write_report,
)
from metalearn.benchmark.systems import SYSTEMS as REGISTRY
from metalearn.benchmark.systems import Launcher, Outcome, label_text, parse_budgets, parse_systems, thread_env
from metalearn.cli import app
from metalearn.datasets import from_frame
from metalearn.errors import MetalearnError

pytestmark = pytest.mark.filterwarnings("ignore")

BUDGET = 8
SYSTEMS = ("metalearn", "metalearn-cold", "hgb")
SYSTEMS_OPTIONS = {name: system.options for name, system in REGISTRY.items()}
SUMMARY_KEYS = {"n_datasets", "n_seeds", "budgets", "systems", "mean_test_score", "average_rank", "paired",
                "test_score_ci", "normalized_error", "seconds", "overrun", "status", "command", "machine"}


def write_suite(root: Path) -> Path:
    """A manifest directory (``../shared/datasets`` format) with breast_cancer (text labels) and wine."""
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, loader in (("breast-cancer", load_breast_cancer), ("wine", load_wine)):
        frame = loader(as_frame=True).frame
        frame.columns = [str(c).replace(" ", "_").replace("/", "_") for c in frame.columns]
        if name == "breast-cancer":
            frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
        frame.to_parquet(root / f"{name}.parquet", index=False)
        entries.append({"name": name, "file": f"{name}.parquet", "target": "target", "task": "classification",
                        "family": name, "n_rows": len(frame), "n_features": frame.shape[1] - 1,
                        "n_classes": int(frame["target"].nunique()), "categorical": [], "missing_cells": 0,
                        "source": "scikit-learn", "openml_id": None})
    (root / "manifest.json").write_text(json.dumps(entries, indent=1))
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[EqualTimeConfig, dict, float]:
    root = tmp_path_factory.mktemp("equal-time")
    config = EqualTimeConfig(str(write_suite(root / "suite")), systems=SYSTEMS, budgets=(BUDGET,), seeds=1,
                             jobs=2, output=str(root / "out"))
    start = time.perf_counter()
    summary = run_equal_time(config, echo=lambda _: None)
    return config, summary, time.perf_counter() - start


def _rows(config: EqualTimeConfig) -> list[dict]:
    return [json.loads(line) for line in (Path(config.output) / "results.jsonl").read_text().splitlines()]


def test_rows_times_and_overruns(run: tuple[EqualTimeConfig, dict, float]) -> None:
    config, _, _ = run
    rows = _rows(config)
    assert len(rows) == 2 * len(SYSTEMS)
    assert {(r["dataset"], r["system"], r["budget"], r["seed"]) for r in rows} == {
        (d, s, BUDGET, 0) for d in ("breast-cancer", "wine") for s in SYSTEMS}
    for row in rows:
        assert row["status"] in ("ok", "timeout", "crash"), row
        assert 0 < row["seconds"] <= row["process_seconds"] + 1e-6 <= row["cap"] + 5
        assert row["overrun"] == pytest.approx(row["seconds"] - BUDGET)
        assert row["cap"] == pytest.approx(2 * BUDGET + 60)
        assert 0.0 <= row["test_score"] <= 1.0 and row["cores"] == 1
        assert row["n_train"] + row["n_test"] in (569, 178)
    hgb = [r for r in rows if r["system"] == "hgb"]
    assert all(r["status"] == "ok" and not r["imputed"] and r["test_score"] > 0.85 for r in hgb)
    assert all(r["seconds"] < BUDGET + 5 for r in hgb)  # no budget to use: it fits and stops
    for row in (r for r in rows if r["system"].startswith("metalearn")):
        assert row["status"] == "ok", row["error"]
        assert row["info"]["time_budget"] > 0 and "trials" in row["info"]
    assert not list((Path(config.output) / "splits").iterdir())  # split files removed once used
    assert not list((Path(config.output) / "runs").iterdir())


def test_summary_report_and_paired_stats(run: tuple[EqualTimeConfig, dict, float]) -> None:
    config, summary, _ = run
    assert SUMMARY_KEYS <= set(summary)
    assert summary["n_datasets"] == 2 and summary["n_seeds"] == 1 and summary["budgets"] == [BUDGET]
    assert summary["systems"] == list(SYSTEMS)
    for key in ("mean_test_score", "average_rank", "normalized_error"):
        assert set(summary[key]) == set(SYSTEMS) and all(set(v) == {str(BUDGET)} for v in summary[key].values())
    ranks = [summary["average_rank"][s][str(BUDGET)] for s in SYSTEMS]
    assert sum(ranks) == pytest.approx(6.0)  # 1 + 2 + 3 per dataset
    ci = summary["test_score_ci"]["hgb"][str(BUDGET)]
    assert ci["low"] <= ci["mean"] <= ci["high"]
    assert set(summary["paired"]) == {"metalearn-cold", "hgb"}
    cell = summary["paired"]["hgb"][str(BUDGET)]
    assert cell["wins"] + cell["ties"] + cell["losses"] == 2 and cell["p"] is None  # < 6 pairs
    assert summary["status"]["hgb"][str(BUDGET)] == {"ok": 2, "timeout": 0, "crash": 0}
    assert summary["seconds"]["metalearn"][str(BUDGET)]["median"] > 0
    assert "share_over" in summary["overrun"]["metalearn"][str(BUDGET)]
    output = Path(config.output)
    assert json.loads((output / "summary.json").read_text())["n_datasets"] == 2
    report = (output / "report.md").read_text()
    assert "python -m metalearn.benchmark.equal_time" in report and "Normalised error" in report
    assert "Overrun" in report and "breast-cancer" in report
    if find_spec("matplotlib"):
        assert (output / "score_vs_budget.png").is_file() and (output / "overrun.png").is_file()


def test_resume_adds_nothing(run: tuple[EqualTimeConfig, dict, float], tmp_path: Path) -> None:
    config, summary, seconds = run
    assert seconds < 120
    before = (Path(config.output) / "results.jsonl").read_text()
    again = run_equal_time(config, echo=lambda _: None)
    assert (Path(config.output) / "results.jsonl").read_text() == before
    assert again["new_rows"] == 0 and again["mean_test_score"] == summary["mean_test_score"]
    with pytest.raises(MetalearnError, match="different protocol"):
        run_equal_time(EqualTimeConfig(config.suite, systems=SYSTEMS, budgets=(BUDGET,), output=config.output,
                                       max_rows=100), echo=lambda _: None)
    kb_record = (Path(config.output) / "kb.json").read_text() + "\n"  # marked: any rewrite shows
    (Path(config.output) / "kb.json").write_text(kb_record)
    for scratch in Path(config.output).glob("kb.sqlite*"):  # a report needs the rows only, not the scratch KB
        scratch.unlink()
    assert main(["--suite", config.suite, "--systems", ",".join(SYSTEMS), "--budgets", str(BUDGET), "--jobs", "2",
                 "--output", config.output, "--report-only"]) == 0
    assert (Path(config.output) / "kb.json").read_text() == kb_record  # a report leaves the rows' KB record alone
    written = json.loads((Path(config.output) / "summary.json").read_text())
    (produced,) = written["runs"]  # the fixture's run made every row; the report-only call adds no invocation
    assert produced["invocations"] == 1 and produced["hours"] >= 0 and written["report_only"]
    assert produced["command"].startswith("python -m metalearn.benchmark.equal_time --suite ")
    assert f"* `{produced['command']}` (1 x, " in (Path(config.output) / "report.md").read_text()
    # the same through `metalearn benchmark --time-budgets` (resumes: nothing new)
    cli = CliRunner().invoke(app, ["benchmark", "--suite", config.suite, "--time-budgets", str(BUDGET), "--systems",
                                   ",".join(SYSTEMS), "--seeds", "1", "--jobs", "2", "--output", config.output])
    assert cli.exit_code == 0, cli.output
    assert (Path(config.output) / "results.jsonl").read_text() == before
    bad = CliRunner().invoke(app, ["benchmark", "--suite", config.suite, "--time-budgets", "soon", "--output",
                                   config.output])
    assert bad.exit_code == 2 and "whole numbers of seconds" in bad.output
    pinned = CliRunner().invoke(app, ["benchmark", "--suite", config.suite, "--time-budgets", str(BUDGET), "--systems",
                                      "hgb", "--jobs", "4096", "--pin-cpus", "--output", str(tmp_path / "pinned")])
    assert pinned.exit_code == 2 and "--pin-cpus: 4096 jobs x 1 cores need 4096 CPUs" in pinned.output


@pytest.mark.skipif(find_spec("flaml") is None, reason="flaml is not installed")
def test_one_flaml_run(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite")
    config = EqualTimeConfig(str(suite), systems=("flaml",), budgets=(5,), output=str(tmp_path / "out"), limit=1,
                             cap_extra=15)
    summary = run_equal_time(config, echo=lambda _: None)
    (row,) = _rows(config)
    assert row["system"] == "flaml" and row["status"] == "ok", row["error"]
    assert row["test_score"] > 0.85 and row["info"]["time_budget"] <= 5 and row["python"] == "project"
    assert summary["n_datasets"] == 1 and summary["paired"] == {}


# --------------------------------------------------------------------------- statistics on a hand-made table


def _table() -> pd.DataFrame:
    scores = {"d1": {"a": 0.9, "b": 0.8, "c": 0.7}, "d2": {"a": 0.6, "b": 0.6, "c": 0.9},
              "d3": {"a": 0.8, "b": 0.5, "c": 0.6}, "d4": {"a": 0.7, "b": 0.7, "c": 0.7}}
    return pd.DataFrame([{"dataset_key": d, "dataset": d, "seed": 0, "system": s, "budget": 10, "test_score": v,
                          "seconds": 10.0 + i, "overrun": float(i), "status": "ok"}
                         for d, row in scores.items() for i, (s, v) in enumerate(row.items())])


def test_ranks_normalized_error_and_ci() -> None:
    table = normalized_errors(ranked(cells(_table())))
    rank = table.set_index(["dataset_key", "system"])["rank"]
    assert rank["d1", "a"] == 1 and rank["d1", "c"] == 3
    assert rank["d2", "a"] == rank["d2", "b"] == 2.5 and rank["d2", "c"] == 1
    assert rank["d4", "a"] == rank["d4", "b"] == rank["d4", "c"] == 2
    error = table.set_index(["dataset_key", "system"])["normalized_error"]
    # d1: errors .1 .2 .3, best .1, median .2 -> 0, 1, 1 (clipped)
    assert (error["d1", "a"], error["d1", "b"], error["d1", "c"]) == (0.0, 1.0, 1.0)
    # d3: errors .2 .5 .4, median .4 -> a 0, c 1, b clipped to 1
    assert (error["d3", "a"], error["d3", "b"], error["d3", "c"]) == (0.0, 1.0, 1.0)
    # d2: errors .4 .4 .1: median .4 == the others -> a, b 1; c 0.  d4: all equal -> 0
    assert (error["d2", "a"], error["d2", "c"], error["d4", "b"]) == (1.0, 0.0, 0.0)
    four = pd.DataFrame({"dataset_key": "d1", "system": list("abce"), "budget": 10, "test_score": [.9, .8, .7, .6]})
    fraction = normalized_errors(four).set_index("system")["normalized_error"]
    # errors .1 .2 .3 .4: median .25 -> b (.2 - .1) / .15, c and e clipped
    assert fraction["a"] == 0 and fraction["b"] == pytest.approx(2 / 3) and fraction["c"] == fraction["e"] == 1
    ci = bootstrap_ci([0.9, 0.6, 0.8, 0.7])
    assert ci["mean"] == pytest.approx(0.75) and 0.6 <= ci["low"] < 0.75 < ci["high"] <= 0.9
    assert bootstrap_ci([0.5, 0.5]) == {"mean": 0.5, "low": 0.5, "high": 0.5}
    assert bootstrap_ci([]) == {"mean": None, "low": None, "high": None}


def test_summary_of_hand_made_table() -> None:
    frame = _table()
    frame.loc[frame["system"] == "a", "system"] = "metalearn"
    setup = {"systems": ["metalearn", "b", "c"], "budgets": [10], "seeds": 1, "command": "cmd",
             "protocol": {"cores": 1}, "cap": {"factor": 2, "extra_seconds": 60}}
    summary = summarize(frame, setup)
    assert summary["n_datasets"] == 4
    assert summary["mean_test_score"]["metalearn"]["10"] == pytest.approx(0.75)
    assert summary["average_rank"]["metalearn"]["10"] == pytest.approx((1 + 2.5 + 1 + 2) / 4)
    assert summary["normalized_error"]["metalearn"]["10"] == pytest.approx(0.25)
    versus_b = summary["paired"]["b"]["10"]
    assert (versus_b["wins"], versus_b["ties"], versus_b["losses"], versus_b["p"]) == (2, 2, 0, None)
    assert versus_b["median_difference"] == pytest.approx(0.05) and versus_b["mean_difference"] == pytest.approx(0.1)
    assert 0.0 <= versus_b["difference_ci"][0] < 0.1 < versus_b["difference_ci"][1] <= 0.3
    # without a family column every dataset is its own family
    assert summary["paired_by_family"]["b"]["10"]["wins"] == 2 and summary["coverage"]["10"]["n_families"] == 4
    assert summary["paired"]["c"]["10"]["wins"] == 2 and summary["paired"]["c"]["10"]["losses"] == 1
    assert summary["overrun"]["c"]["10"]["median"] == 2.0 and summary["overrun"]["c"]["10"]["share_over"] == 1.0
    assert summary["seconds"]["metalearn"]["10"]["max"] == 10.0
    # a dataset missing a system is partial: out of the statistics
    part = summarize(frame[~((frame["dataset_key"] == "d4") & (frame["system"] == "c"))], setup)
    assert part["n_datasets"] == 3 and part["partial_datasets"] == ["d4"]
    assert complete_keys(frame, ["metalearn", "b"], [10, 20], 1) == []
    assert set(paired(cells(frame), ["b", "c"])) == set()  # no reference system: nothing to pair
    # p-values read as in the trial study's report: a tiny one is "p<0.001", not a rounded "p 0"
    assert _paired_cell({"wins": 36, "ties": 0, "losses": 4, "p": 2e-7}) == "36/0/4 (p<0.001)"
    assert _paired_cell({"wins": 2, "ties": 2, "losses": 0, "p": None}) == "2/2/0 (p —)"
    assert _paired_cell({"wins": 7, "ties": 1, "losses": 4, "p": 0.6377}) == "7/1/4 (p=0.638)"
    assert (_paired_cell({"wins": 7, "ties": 1, "losses": 4, "p": 0.6377, "mean_difference": 0.0241,
                          "difference_ci": [0.0138, 0.0342]}) == "7/1/4 (p=0.638), +0.024 [+0.014, +0.034]")


def test_families_count_once(tmp_path: Path) -> None:
    """Averaged per family first: two datasets of one family weigh as much as one dataset of another."""
    frame = _table().assign(family=lambda f: f["dataset_key"].map({"d1": "f1", "d2": "f1", "d3": "f2", "d4": "f3"}))
    frame = pd.concat([frame, frame.assign(seed=1, test_score=frame["test_score"] - 0.1)])  # seeds average first
    frame.loc[frame["system"] == "a", "system"] = "metalearn"
    families = by_family(frame).set_index(["dataset_key", "system"])["test_score"]
    assert families["f1", "metalearn"] == pytest.approx((0.9 + 0.6) / 2 - 0.05) and len(families) == 9
    setup = {"systems": ["metalearn", "b", "c"], "budgets": [10], "seeds": 2, "command": "cmd",
             "protocol": {"cores": 1}, "cap": {"factor": 2, "extra_seconds": 60}}
    summary = summarize(frame, setup)
    versus_b = summary["paired_by_family"]["b"]["10"]  # f1 +0.05, f2 +0.3, f3 0
    assert (versus_b["wins"], versus_b["ties"], versus_b["losses"]) == (2, 1, 0)
    assert versus_b["mean_difference"] == pytest.approx(0.35 / 3)
    assert summary["coverage"]["10"]["n_families"] == 3 and summary["coverage"]["10"]["n_datasets"] == 4
    assert summary["family_test_score_ci"]["metalearn"]["10"]["mean"] == pytest.approx((0.7 + 0.75 + 0.65) / 3)
    report = write_report(summary | {"plots": []}, select(frame, setup)[0], {}, tmp_path).read_text()
    assert "per family" in report and "2/1/0 (p —), +0.117" in report


def test_budgets_with_their_own_grids(tmp_path: Path) -> None:
    """60 s on every dataset with every system and 2 seeds, 180 s on a selection with two systems and 1 seed: each
    budget's statistics use its own complete datasets, and the pairs across budgets the datasets both ran."""
    short = pd.concat([_table().assign(seed=seed) for seed in (0, 1)])
    short.loc[short["system"] == "a", "system"] = "metalearn"
    long = pd.DataFrame([{"dataset_key": d, "dataset": d, "seed": 0, "system": s, "budget": 30, "test_score": v,
                          "seconds": 29.0, "overrun": -1.0, "status": "ok"}
                         for d, s, v in [("d1", "metalearn", 0.95), ("d1", "c", 0.8), ("d2", "metalearn", 0.5),
                                         ("d2", "c", 0.7), ("d3", "metalearn", 0.9)]])
    frame = pd.concat([short, long], ignore_index=True)
    setup = {"systems": ["metalearn", "b", "c"], "budgets": [10, 30], "seeds": 2, "command": "cmd",
             "protocol": {"cores": 1}, "cap": {"factor": 2, "extra_seconds": 60}}
    summary = summarize(frame, setup)
    grid = summary["coverage"]
    assert grid["10"] == {"systems": ["metalearn", "b", "c"], "n_seeds": 2, "n_datasets": 4, "partial": [],
                          "n_families": 4}
    assert grid["30"] == {"systems": ["metalearn", "c"], "n_seeds": 1, "n_datasets": 2,
                          "partial": ["d3"], "n_families": 2}
    assert summary["n_datasets"] == 4 and summary["n_seeds"] == 2 and summary["partial_datasets"] == ["d3"]
    assert summary["mean_test_score"]["metalearn"] == {"10": pytest.approx(0.75), "30": pytest.approx(0.725)}
    assert "30" not in summary["mean_test_score"]["b"] and summary["average_rank"]["c"]["30"] == 1.5
    assert summary["paired"]["c"]["30"]["wins"] == 1 and summary["paired"]["c"]["30"]["losses"] == 1
    pairs = {(c["system"], c["versus"]): c for c in summary["cross_budget"]}
    assert set(pairs) == {("metalearn@30", "metalearn@10"), ("metalearn@10", "c@30")}
    # on d1 and d2, seed 0 only: metalearn 0.9 and 0.6 at 10 s, 0.95 and 0.5 at 30 s; c 0.8 and 0.7 at 30 s
    itself = pairs["metalearn@30", "metalearn@10"]
    assert (itself["n_datasets"], itself["n_seeds"], itself["wins"], itself["losses"]) == (2, 1, 1, 1)
    assert itself["mean"] == pytest.approx(0.725) and itself["versus_mean"] == pytest.approx(0.75)
    versus = pairs["metalearn@10", "c@30"]
    assert (versus["wins"], versus["losses"], versus["versus_mean"]) == (1, 1, pytest.approx(0.75))
    report = write_report(summary, select(frame, setup)[0], {}, tmp_path).read_text()
    assert "* 30 s: 2 datasets x 1 seeds, metalearn, c" in report and "1 at 30 s" in report
    assert "| metalearn@30 | metalearn@10 | 2 x 1 | 0.725 | 0.750 | 1/0/1 (p —), -0.025 [" in report


def test_regression_normalised_error_floors_each_seed() -> None:
    # the trial study's normalisation (one home): one diverged seed counts as R^2 = 0, for this figure only
    seeds = {"metalearn": (-1e6, 0.9), "b": (0.9, 0.9), "c": (0.3, 0.3), "d": (0.4, 0.4)}
    frame = pd.DataFrame([{"dataset_key": "d1", "dataset": "d1", "seed": i, "system": s, "budget": 10,
                           "test_score": v, "test_rmse": -1.0, "seconds": 10.0, "overrun": 0.0, "status": "ok"}
                          for s, values in seeds.items() for i, v in enumerate(values)])
    setup = {"systems": list(seeds), "budgets": [10], "seeds": 2, "command": "cmd", "protocol": {"cores": 1},
             "cap": {"factor": 2, "extra_seconds": 60}}
    summary = summarize(frame, setup | {"task": "regression", "metric": "r2"})
    # errors .55 (floored mean .45) .1 .7 .6: best .1, median .575
    assert summary["normalized_error"]["metalearn"]["10"] == pytest.approx(0.45 / 0.475)
    assert summary["normalized_error"]["b"]["10"] == 0.0 and summary["normalized_error"]["d"]["10"] == 1.0  # clipped
    assert summary["mean_test_score"]["metalearn"]["10"] < -1e5  # the raw mean keeps it
    # R^2 differences average over datasets; RMSEs in each dataset's units do not: no mean difference for them
    versus_b = summary["paired"]["b"]["10"], summary["paired_rmse"]["b"]["10"]
    assert "mean_difference" in versus_b[0] and "mean_difference" not in versus_b[1]
    assert summarize(frame, setup)["normalized_error"]["metalearn"]["10"] == 1.0  # classification: no floor


# --------------------------------------------------------------------------- launching, rows, parsing


def test_hard_cap_kills_and_crash_is_recorded(tmp_path: Path) -> None:
    launcher = Launcher()
    start = time.perf_counter()
    sleeper = launcher.run([sys.executable, "-c", "import time; time.sleep(60)"], thread_env(1),
                           {"budget": 1}, tmp_path / "sleep", cap=1.0)
    assert sleeper.status == "timeout" and 1.0 <= sleeper.process_seconds < 10 and time.perf_counter() - start < 15
    crash = launcher.run([sys.executable, "-c", "import sys; sys.exit('boom')"], thread_env(1), {"budget": 5},
                         tmp_path / "crash", cap=30.0)
    assert crash.status == "crash" and "boom" in crash.error and crash.exit_code == 1
    args = json.loads((tmp_path / "crash" / "args.json").read_text())
    assert args["deadline"] == pytest.approx(args["spawned_at"] + 5)
    env = thread_env(3, peers=True, base={"PYTHONPATH": "/x", "OMP_NUM_THREADS": "8"})
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    assert "PYTHONPATH" not in env


def test_a_relative_output_and_suite_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # workers run in their own folders: with a relative --output, their arguments, splits and knowledge base missed
    monkeypatch.chdir(tmp_path)
    write_suite(tmp_path / "suite")
    summary = run_equal_time(EqualTimeConfig("suite", systems=("metalearn", "hgb"), budgets=(BUDGET,), limit=1,
                                             output="results/equal-time"), echo=lambda _: None)
    rows = [json.loads(line) for line in (tmp_path / "results/equal-time/results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "ok"], [r.get("error") for r in rows]
    assert {r["python"] for r in rows} == {"project"}  # a label: results name no machine path
    assert summary["n_datasets"] == 1 and "--output results/equal-time" in summary["command"]


def test_a_relative_worker_folder_reaches_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    worker = ("import json, sys; from pathlib import Path; args = json.loads(Path(sys.argv[1]).read_text()); "
              "Path(args['result']).write_text(json.dumps({'status': 'ok', 'ready_at': args['spawned_at']}))")
    outcome = Launcher().run([sys.executable, "-c", worker], thread_env(1), {"budget": 5},
                             Path("results") / "runs" / "one", cap=30.0)
    assert outcome.status == "ok", outcome.error
    assert (tmp_path / "results" / "runs" / "one" / "args.json").is_file()


def test_rows_of_failed_runs_are_imputed(tmp_path: Path) -> None:
    config = EqualTimeConfig("suite", systems=("hgb",), budgets=(10,)).validate()
    split = Split("k", 0, tmp_path, {"dataset": "d", "family": "d", "n_train": 4, "n_test": 2, "n_classes": 2,
                                     "dummy_score": 0.5}, ["1", "0"])
    task = Task("k", 0, "hgb", 10)
    timeout = result_row(task, split, Outcome("timeout", 80.0, 80.0, None, None, "killed"), config, "python")
    assert timeout["status"] == "timeout" and timeout["imputed"] and timeout["test_score"] == 0.5
    assert timeout["overrun"] == 70.0 and timeout["cap"] == 80.0
    ok = result_row(task, split, Outcome("ok", 9.0, 9.5, 0, {"predictions": [1.0, 0]}), config, "python")
    assert ok["status"] == "ok" and ok["test_score"] == 1.0 and not ok["imputed"] and ok["overrun"] == -1.0
    short = result_row(task, split, Outcome("ok", 9.0, 9.5, 0, {"predictions": [1]}), config, "python")
    assert short["status"] == "crash" and short["imputed"]
    records = [{**timeout, "dataset_key": "k"}, {**ok, "dataset_key": "k", "budget": 20}]
    assert done_tasks(records) == {("k", 0, "hgb", 10), ("k", 0, "hgb", 20)}
    assert done_tasks(records, retry_failed=True) == {("k", 0, "hgb", 20)}


def test_plain_dtypes_labels_and_parsing(tmp_path: Path) -> None:
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "c": pd.Categorical(["x", None, "y"]),
                          "y": [1, 0, 1]})
    plain = plain_frame(from_frame(frame, "y", categorical=["c"]))
    assert plain["n"].dtype == np.float64 and plain["c"].dtype == object and plain["y"].dtype == np.int64
    assert plain["c"].tolist()[0] == "x" and pd.isna(plain["c"].tolist()[1])
    assert label_text(3.0) == label_text(np.int64(3)) == label_text("3") == "3" and label_text("a") == "a"
    assert parse_systems("hgb, metalearn,hgb") == ("hgb", "metalearn")
    assert parse_budgets("180,60") == (60, 180)
    with pytest.raises(MetalearnError, match="unknown system"):
        parse_systems("autosklearn")
    with pytest.raises(MetalearnError, match="at least"):
        EqualTimeConfig("suite", cores=0).validate()
    skipped: list[str] = []
    with pytest.raises(MetalearnError, match="no system left"):
        run_equal_time(EqualTimeConfig("suite", systems=("autogluon",), output=str(tmp_path / "out")),
                       echo=skipped.append)
    assert "peers virtualenv" in skipped[0] and not (tmp_path / "out").exists()


def test_budgets_parse_as_positive_whole_numbers_of_their_unit() -> None:
    assert parse_budgets([180, "60", " 60 "]) == (60, 180) and parse_trial_budgets(" 5,1,,5") == (1, 5)
    with pytest.raises(MetalearnError, match=r"^time budgets must be whole numbers of seconds, got '1.5'$"):
        parse_budgets("1.5")
    with pytest.raises(MetalearnError, match=r"^time budgets must be positive numbers of seconds, got '0,60'$"):
        parse_budgets("0,60")
    with pytest.raises(MetalearnError, match=r"^budgets must be whole numbers of trials, got 'x'$"):
        parse_trial_budgets("x")
    with pytest.raises(MetalearnError, match=r"^budgets must be positive numbers of trials, got ''$"):
        parse_trial_budgets("")


def _peer_worker() -> object:
    """``benchmarks/peers/peer_worker.py`` loaded as a module (it is a standalone script)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "peer_worker.py"
    spec = importlib.util.spec_from_file_location("peer_worker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peer_worker_dtypes_and_autogluon_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _peer_worker()
    tree = ast.parse(Path(worker.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "metalearn" not in imported and "numpy" in imported  # runs in the peers venv without metalearn
    frame = pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "c": pd.array(["x", None], dtype="string")})
    plain = worker.plain(frame, ["c"], as_category=True)
    assert plain["n"].dtype == np.float64 and isinstance(plain["c"].dtype, pd.CategoricalDtype)
    assert worker.plain(frame, ["c"], as_category=False)["c"].dtype == object
    assert worker.plain_target(pd.Series([1.0, 2.0])).dtype == np.int64
    assert worker.plain_target(pd.Series(["a", "b"], dtype="string")).tolist() == ["a", "b"]
    calls: dict[str, dict] = {}

    class FakePredictor:  # records what the worker asks of AutoGluon's TabularPredictor
        model_best = "WeightedEnsemble_L2"

        def __init__(self, **kwargs: object) -> None:
            calls["init"] = kwargs

        def fit(self, train: pd.DataFrame, **kwargs: object) -> FakePredictor:
            calls["fit"] = kwargs | {"columns": list(train.columns)}
            return self

        def model_names(self) -> list[str]:
            return ["LightGBM", self.model_best]

    fake = types.ModuleType("autogluon.tabular")
    fake.TabularPredictor = FakePredictor
    monkeypatch.setitem(sys.modules, "autogluon", types.ModuleType("autogluon"))
    monkeypatch.setitem(sys.modules, "autogluon.tabular", fake)
    args = {"target": "y", "cores": 2, "workdir": str(tmp_path), "options": SYSTEMS_OPTIONS["autogluon-best"]}
    _, info = worker.fit_autogluon(args, plain, np.array([0, 1]), 42.0)
    assert calls["init"]["eval_metric"] == "balanced_accuracy" and calls["init"]["label"] == "y"
    assert calls["init"]["sample_weight"] == "balance_weight"
    assert calls["fit"]["presets"] == "best_quality" and calls["fit"]["time_limit"] == 42.0
    assert calls["fit"]["num_cpus"] == 2 and calls["fit"]["num_gpus"] == 0
    assert calls["fit"]["columns"] == ["n", "c", "y"]
    assert info["models"] == 2
    worker.fit_autogluon(args | {"options": SYSTEMS_OPTIONS["autogluon"]}, plain, np.array([0, 1]), 5.0)
    assert calls["init"]["sample_weight"] is None and "presets" not in calls["fit"]
    assert "problem_type" not in calls["init"]  # classification: AutoGluon infers it
    regression = args | {"task": "regression", "options": SYSTEMS_OPTIONS["autogluon"]}
    worker.fit_autogluon(regression, plain, np.array([0.5, 1.5]), 5.0)
    assert calls["init"]["problem_type"] == "regression" and calls["init"]["eval_metric"] == "r2"
    with pytest.raises(ValueError, match="balances classes"):  # balance_weight is for classes, not regression
        worker.fit_autogluon(regression | {"options": SYSTEMS_OPTIONS["autogluon-balanced"]}, plain,
                             np.array([0.5, 1.5]), 5.0)


def test_peers_python_is_made_absolute_without_resolving_links(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative ``--peers-python`` works from the worker's own directory; the venv's link is not resolved."""
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    link = tmp_path / "venv" / "bin" / "python"
    link.symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path)
    config = EqualTimeConfig(suite="s", peers_python="venv/bin/python")
    assert config.python_for("autogluon") == str(link) and config.python_for("metalearn") == sys.executable
