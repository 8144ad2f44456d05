"""The benchmark's ``report.md``, and :func:`finalize`, which writes every output of a run.

``finalize`` reads the checkpoint and writes ``results.parquet``, ``summary.json`` (through
:func:`metalearn.protocol.to_jsonable`), the plots and ``report.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from metalearn.benchmark.analysis import gain_by_distance, load_results, summarize
from metalearn.benchmark.checkpoint import read_jsonl
from metalearn.benchmark.config import BOOTSTRAP, BenchmarkConfig, compared_strategies
from metalearn.benchmark.plots import make_plots
from metalearn.protocol import dumps_json

Lines = list[str]


def fmt_number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def p_value_text(p: float | None) -> str:
    return "p —" if p is None else ("p<0.001" if p < 0.001 else f"p={p:.3f}")


def _table(data: dict[str, dict[str, Any]], budgets: Sequence[int], digits: int = 3, first: str = "strategy",
           cell: Any = None) -> list[str]:
    lines = [f"| {first} | " + " | ".join(str(b) for b in budgets) + " |",
             "|---|" + "---:|" * len(budgets)]
    show = cell or (lambda value: fmt_number(value, digits))
    for strategy, values in data.items():
        lines.append(f"| {strategy} | " + " | ".join(show(values.get(str(b))) for b in budgets) + " |")
    return lines


def shortfalls(summary: dict[str, Any]) -> list[str]:
    """One sentence per missed target (and for the CV view of trials-to-match): by how much, and the next lever."""
    targets, median, ranks = summary["targets"], summary["median_normalized_error"], summary["average_rank"]
    at, out = summary["match_budget"], []
    design = ("the initial design (more neighbours k, a better meta-feature distance, a larger cross-evaluated "
              "portfolio: `benchmarks/bench_recommendation.py` replays such orderings offline), or the search after "
              "the warm start (SMAC's model informed by the neighbours' runs)")
    for view, table, key in (("test", median, "warm_matches_cold_within_10"),
                             ("CV", summary.get("median_normalized_cv_error", {}), None)):
        met = targets[key]["met"] if key else None
        match = summary["warm_trials_to_match_cold_at_50"] if key else summary.get("cv_warm_trials_to_match_cold_at_50")
        goal = table.get("cold", {}).get(str(at))
        if goal is None or "warm" not in table or met is True or (key is None and match is not None and match <= 10):
            continue
        best10 = min((v for b, v in table["warm"].items() if int(b) <= 10), default=None)
        reached = f"after {match} trials" if match is not None else "at no budget"
        gap = "" if best10 is None else f"; within 10 trials warm's best is {best10:.3f}, {best10 - goal:.3f} above"
        out.append(f"On the {view} score warm reaches cold's {at}-trial median normalised error ({goal:.3f}) "
                   f"{reached}, not within 10{gap}. Lever: {design}.")
    rank_target = targets.get("warm_ranks_above_cold_and_random", {})
    if rank_target.get("met") is False:
        for b, ok in rank_target["value"].items():
            if ok:
                continue
            best = min((ranks[o][b], o) for o in ("cold", "random") if o in ranks and b in ranks[o])
            lever = design if int(b) <= 10 else "the search after the warm start (fewer warm trials, SMAC's model)"
            out.append(f"At {b} trials warm's average rank is {ranks['warm'][b]:.2f}, behind {best[1]} "
                       f"({best[0]:.2f}) by {ranks['warm'][b] - best[0]:.2f}. Lever: {lever}.")
    for key, peer, lever in (("warm_beats_flaml_at_equal_wallclock", "flaml",
                              "cheaper trials (a row cap or successive halving within the same wall-clock) or a "
                              "search space closer to FLAML's tuned gradient boosting"),
                             ("warm_one_trial_beats_flaml_zeroshot", "flaml-zeroshot",
                              "the first recommendation: rank the portfolio by expected score on the neighbours, "
                              "or add FLAML-style data-dependent defaults to the portfolio")):
        target = targets.get(key, {})
        if target.get("met") is False:
            value = target["value"]
            out.append(f"{target['description']}: rank {value['warm']:.2f} vs {value[peer]:.2f} "
                       f"({value['warm'] - value[peer]:+.2f}). Lever: {lever}.")
    return out + _ensemble_shortfalls(targets)


def _ensemble_shortfalls(targets: dict[str, Any]) -> list[str]:
    """The sentences of issue #22's missed targets: the ensemble against the single pipeline, 50 vs 10 trials."""
    out = []
    target = targets.get("warm_ensemble_at_10_beats_single_at_50", {})
    if target.get("met") is False:
        (k10, ensemble), (k50, single) = target["value"].items()
        out.append(f"{target['description']}: {ensemble:.4f} vs {single:.4f} ({ensemble - single:+.4f}). Lever: "
                   "more diverse ensemble candidates (more families among the best trials, larger "
                   "ensemble_candidates).")
    target = targets.get("warm_at_50_not_below_warm_at_10", {})
    if target.get("met") is False:
        (b10, early), (b50, late) = target["value"].items()
        out.append(f"{target['description']}: {late:.4f} after {b50} vs {early:.4f} after {b10} "
                   f"({late - early:+.4f}); the later trials over-fit the CV. Lever: selection that does not over-fit "
                   "(repeated CV on small data, selecting and ensembling on out-of-fold predictions; issue #22 §3).")
    return out


def banner(summary: dict[str, Any]) -> Lines:
    """What a ``--report-only`` summary leaves out, as the lines under the report's title: "Partial results"
    only when some dataset has started but not finished; a note when datasets of the suite have no result
    (added to the suite after the run, or not reached yet); nothing for a complete run."""
    if not summary.get("report_only"):
        return []
    complete, unfinished = summary["complete_datasets"], summary.get("unfinished_datasets", 0)
    missing, suite = summary.get("datasets_without_results", 0), summary["datasets_in_suite"]
    lines: Lines = []
    if unfinished:
        lines += [f"**Partial results**: the statistics cover the {complete} datasets whose every strategy and "
                  f"seed has finished; {unfinished} more have started but not finished (`--report-only` on an "
                  "interrupted run; rerunning the command resumes it).", ""]
    if missing:
        lines += [f"**Not in this run**: {missing} of the {suite} datasets the suite lists now have no result "
                  "(added to the suite after the run, or not reached yet; rerunning the command runs them).", ""]
    return lines


def _hours(summary: dict[str, Any]) -> str:
    """The compute spent, said to be an estimate when it is one."""
    if summary.get("hours_estimated"):
        return f"about {summary['hours']:.2f} h (estimated from the rows' times: part of the run was killed " \
               "before it recorded its compute)"
    return f"{summary['hours']:.2f} h"


def _head(summary: dict[str, Any]) -> Lines:
    """Title, protocol, command, compute, the targets table and the shortfalls."""
    budgets = summary["budgets"]
    mark = {True: "met", False: "**not met**", None: "not measured"}
    lines = [
        f"# Warm-start benchmark: {summary['suite']}", "",
        f"{summary['n_datasets']} {summary.get('task', 'classification')} datasets ({summary['families']} families) "
        f"x {summary['n_seeds']} seeds; strategies {', '.join(summary['strategies'])}; budgets (trials) "
        f"{', '.join(map(str, budgets))}; metric: test {summary['metric']}. Protocol: `benchmarks/README.md`.", "",
        f"Command: `{summary['command']}`  ", f"Compute: {_hours(summary)} on "
        f"{summary['machine']['cpus']} CPUs ({summary['machine']['platform']}), {summary['machine']['jobs']} jobs.",
        "", "## Targets", "", "| target | result | value |", "|---|---|---|",
    ]
    lines[4:4] = banner(summary)
    for target in summary["targets"].values():
        lines.append(f"| {target['description']} | {mark[target['met']]} | `{json.dumps(target['value'])}` |")
    misses = shortfalls(summary)
    if misses:
        lines += ["", "Shortfalls and next levers:", ""] + [f"- {m}" for m in misses]
    return lines


def ci_cell(value: dict[str, Any] | None) -> str:
    """A ``{mean, low, high}`` confidence interval as ``mean [low, high]`` (``—`` when missing)."""
    if not value or value.get("mean") is None:
        return "—"
    return f"{value['mean']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def _plot(plots: dict[str, str], name: str, alt: str) -> Lines:
    return ["", f"![{alt}]({plots[name]})"] if name in plots else []


def _headline_section(summary: dict[str, Any], plots: dict[str, str]) -> Lines:
    """The headline: mean test score with its 95 % bootstrap CI (and the best single pipeline's, in a run with
    ensembles), then the median and mean normalised error."""
    budgets, metric, floor = summary["budgets"], summary["metric"], summary.get("normalization_floor")
    model = ("the ensemble each search ends with after that many trials" if summary.get("ensemble_size")
             else "the best single pipeline (the incumbent) after that many trials")
    lines = ["", f"## Headline: mean test {metric} and normalised error", "",
             f"Per dataset, the test scores of {model} are averaged over seeds; mean over datasets with a 95 % "
             f"bootstrap CI ({BOOTSTRAP:,} resamples of the datasets).", ""]
    lines += _table(summary.get("test_score_ci", {}), budgets, cell=ci_cell)
    if summary.get("single_test_score_ci"):
        lines += ["", "The best single pipeline (the incumbent) of the same searches, mean [95 % CI]:", ""]
        lines += _table(summary["single_test_score_ci"], budgets, cell=ci_cell)
    lines += _plot(plots, "raw_score_vs_trials", "mean test score vs trials")
    lines += ["", "Normalised error (TabRepo's): per dataset, error = 1 - the seed-averaged test score, scaled so "
              "that 0 is the dataset's best cell and 1 its median cell over every budget of the compared "
              "strategies, clipped to [0, 1] (lower is better). The median anchors the scale, so one bad cell "
              "(such as cold's first Sobol point) does not set it; these figures are not comparable with the "
              "min-max normalised scores of earlier reports.", ""]
    if floor is not None:
        lines += [f"For this normalisation only, a seed's {metric} below {floor:g} counts as {floor:g} (no better "
                  "than predicting the training mean), so one diverging model does not set a dataset's scale (the "
                  "CV view below likewise); the raw tables keep the unclipped values.", ""]
    lines += ["Median over datasets:", ""] + _table(summary["median_normalized_error"], budgets)
    lines += ["", "Mean over datasets:", ""] + _table(summary["mean_normalized_error"], budgets)
    lines += _plot(plots, "error_vs_trials", "median normalised error vs trials")
    lines += _plot(plots, "error_vs_seconds", "median normalised error vs seconds")
    return lines


def _raw_section(summary: dict[str, Any]) -> Lines:
    """Median raw test scores, and the extra metrics (RMSE for regression) with CI and median."""
    budgets, metric = summary["budgets"], summary["metric"]
    lines = ["", f"## Raw test {metric}: medians and other metrics", "",
             f"Median over datasets of the seed-averaged test {metric}:", ""]
    lines += _table(summary.get("median_test_score", {}), budgets)
    for m in summary.get("extra_metrics", ()):
        lines += ["", f"Test {m} (negated: higher is better); averaged across datasets in each target's own units, "
                  "so large-scale targets dominate the mean: the paired comparison below is scale-free.", "",
                  "Mean [95 % CI]:", ""] + _table(summary.get(f"test_{m}_ci", {}), budgets, cell=ci_cell)
        lines += ["", "Median:", ""] + _table(summary.get(f"median_test_{m}", {}), budgets)
    return lines


def _rank_sections(summary: dict[str, Any], plots: dict[str, str]) -> Lines:
    """Average rank and trials to match."""
    budgets = summary["budgets"]
    lines = ["", "## Average rank (1 = best)", "",
             "Ranked per dataset and budget among the strategies with a result at that budget (flaml-zeroshot at "
             f"{budgets[0]}, flaml at {budgets[-1]}; the warm@fraction ablations are not ranked).", ""]
    lines += _table(summary["average_rank"], budgets, 2)
    lines += _plot(plots, "rank_vs_budget", "average rank vs budget")
    lines += ["", "## Trials to match", "",
              f"Smallest budget at which warm's median normalised error is at most cold's (random's) at "
              f"{summary['match_budget']} trials: cold {fmt_number(summary['warm_trials_to_match_cold_at_50'])}, "
              f"random {fmt_number(summary['warm_trials_to_match_random_at_50'])}.", ""]
    return lines


def _objective_section(summary: dict[str, Any]) -> Lines:
    """The same comparison on the search objective (CV score), and the paired per-dataset comparisons."""
    budgets = summary["budgets"]
    lines = ["## Search objective and paired comparison", "",
             "Held-out test scores of small datasets are noisy, so the same comparison on the objective the "
             "search optimises: the incumbent's cross-validated score on the train part (warm, cold and random "
             "share one code path and the same CV folds), its median normalised error per dataset like the test "
             "score's (best and median cell of warm, cold and random).", ""]
    lines += ["Median over datasets:", ""] + _table(summary["median_normalized_cv_error"], budgets)
    lines += ["", "Mean over datasets:", ""] + _table(summary.get("mean_normalized_cv_error", {}), budgets)
    lines += ["", f"On this view warm reaches cold's (random's) {summary['match_budget']}-trial median after "
              f"{fmt_number(summary['cv_warm_trials_to_match_cold_at_50'])} "
              f"({fmt_number(summary['cv_warm_trials_to_match_random_at_50'])}) trials."]
    for name, by_value in summary["paired"].items():
        values = [v for v in ("test_score", "test_rmse", "cv_score") if v in by_value]
        heads = {"test_score": "test", "test_rmse": "test RMSE", "cv_score": "CV"}
        lines += ["", f"Paired per dataset, {name.replace('_', ' ')} (wins / ties / losses, median difference, "
                  "Wilcoxon signed-rank p):", "",
                  "| budget | " + " | ".join(heads[v] for v in values) + " |", "|---:|" + "---|" * len(values)]
        for b in budgets:
            if not any(by_value[v].get(str(b)) for v in values):
                continue
            cells = []
            for value in values:
                c = by_value.get(value, {}).get(str(b))
                cells.append("—" if c is None else f"{c['wins']} / {c['ties']} / {c['losses']}, "
                             f"{c['median_difference']:+.4f}, {p_value_text(c['p'])}")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return lines


def _distance_section(summary: dict[str, Any]) -> Lines:
    """Where the warm start helps: warm's CV gain against the distance to the nearest neighbour."""
    by_distance = summary.get("warm_gain_by_distance") or {}
    if not by_distance:
        return []
    lines = ["", "## Where the warm start helps", "",
             "warm's CV-score gain over cold (seeds averaged per dataset) against the query's distance to its "
             "nearest knowledge-base neighbour: Spearman correlation, and the mean gain of the far queries (the "
             "nearest neighbour beyond the 90th percentile of the knowledge base's own nearest distances; their "
             "initial design leads with the global portfolio) and of the others.", "",
             "| budget | datasets | Spearman rho | far: datasets, mean gain | near: mean gain |",
             "|---:|---:|---|---|---|"]
    for b in summary["budgets"]:
        c = by_distance.get(str(b))
        if c:
            rho = "—" if c["spearman_rho"] is None else f"{c['spearman_rho']:+.3f} ({p_value_text(c['p'])})"
            lines.append(f"| {b} | {c['datasets']} | {rho} | {c['far_datasets']}, {fmt_number(c['mean_gain_far'], 4)} "
                         f"| {fmt_number(c['mean_gain_near'], 4)} |")
    return lines


def _size_and_seconds_sections(summary: dict[str, Any], plots: dict[str, str]) -> Lines:
    """The knowledge-base size curves and the median wall-clock seconds."""
    budgets = summary["budgets"]
    lines = ["", "## Knowledge-base size", "",
             "warm with a random subset (seeded) of the family-filtered knowledge base; rows are fractions "
             f"(seeds: the first {summary['kb_fraction_seeds']}). Mean normalised error (the median over datasets "
             "sits at 1 for most early budgets), scaled like the tables above (best and median cell of the compared "
             "strategies) on those seeds only, so the `1` row is warm on them.", ""]
    lines += ["Test score:", ""] + _table(summary["kb_fraction_curve"], budgets, first="fraction")
    if summary.get("kb_fraction_cv_curve"):
        lines += ["", "CV score (the search objective, scaled like the CV table above):", ""]
        lines += _table(summary["kb_fraction_cv_curve"], budgets, first="fraction")
    lines += _plot(plots, "kb_fraction_curve", "knowledge-base size curve")
    lines += ["", "## Median wall-clock seconds", ""]
    lines += _table(summary["median_seconds"], budgets, 1)
    return lines


def _per_dataset_section(frame: pd.DataFrame, summary: dict[str, Any]) -> Lines:
    """Mean test score of each compared strategy per dataset, at the largest budget."""
    budgets = summary["budgets"]
    lines = ["", "## Mean test score per dataset (largest budget; flaml-zeroshot at the smallest)", ""]
    if not len(frame):
        return lines
    main = compared_strategies(summary["strategies"])
    top, low = max(budgets), min(budgets)
    pick = frame[((frame["budget"] == top) & (frame["strategy"] != "flaml-zeroshot"))
                 | (frame["strategy"] == "flaml-zeroshot") & (frame["budget"] == low)]
    table = pick.pivot_table(index="dataset", columns="strategy", values="test_score", aggfunc="mean")
    cols = [s for s in main if s in table.columns]
    lines += ["| dataset | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in table.iterrows():
        lines.append(f"| {name} | " + " | ".join(fmt_number(row.get(c)) for c in cols) + " |")
    return lines


def _errors_section(summary: dict[str, Any]) -> Lines:
    errors = summary.get("errors") or []
    if not errors:
        return []
    return ["", f"## Errors ({len(errors)})", ""] + [
        f"- {e.get('dataset') or e.get('dataset_key')} seed {e.get('seed')} {e.get('strategy')}: "
        f"{str(e.get('error'))[:200]}" for e in errors[:50]]


def write_report(frame: pd.DataFrame, summary: dict[str, Any], plots: dict[str, str], output: Path) -> Path:
    """Write ``output/report.md`` from the rows, the summary and the plot files; returns its path."""
    lines = (_head(summary) + _headline_section(summary, plots) + _raw_section(summary)
             + _rank_sections(summary, plots) + _objective_section(summary) + _distance_section(summary)
             + _size_and_seconds_sections(summary, plots) + _per_dataset_section(frame, summary)
             + _errors_section(summary))
    path = output / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def finalize(output: Path, config: BenchmarkConfig, keys: Iterable[str] | None = None, hours: float = 0.0,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write results.parquet, summary.json, the plots and report.md from the checkpoint; returns the summary."""
    frame = load_results(output, config, keys)
    frame.to_parquet(output / "results.parquet", index=False)
    summary = summarize(frame, config, hours=hours, extra=extra)
    summary["warm_gain_by_distance"] = gain_by_distance(frame, read_jsonl(output / "neighbors.jsonl"))
    plots = make_plots(frame, summary, output)
    summary["plots"] = plots
    write_report(frame, summary, plots, output)
    (output / "summary.json").write_text(dumps_json(summary, indent=2))
    return summary
