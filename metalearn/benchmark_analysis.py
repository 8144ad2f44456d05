"""Analysis of an offline benchmark: normalised scores, ranks, trials-to-match, plots and report.

Reads the rows :mod:`metalearn.benchmark` appended to ``results.jsonl`` and writes
``results.parquet``, ``summary.json``, the PNG plots and ``report.md`` (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metalearn.benchmark import (
    BOOTSTRAP,
    MATCH_BUDGET,
    METRIC,
    RESULT_COLUMNS,
    BenchmarkConfig,
    _fraction_name,
    _json_default,
    _now,
    compared_strategies,
    read_jsonl,
)

# --------------------------------------------------------------------------- summary


def load_results(output: Path, config: BenchmarkConfig | None = None, keys: Iterable[str] | None = None
                 ) -> pd.DataFrame:
    """Checkpoint rows (last write wins per dataset, seed, strategy, budget), optionally restricted to what
    ``config`` asks for."""
    records = read_jsonl(output / "results.jsonl")
    frame = pd.DataFrame(records, columns=RESULT_COLUMNS) if records else pd.DataFrame(columns=RESULT_COLUMNS)
    frame = frame.drop_duplicates(["dataset_key", "seed", "strategy", "budget"], keep="last")
    if config is not None and len(frame):
        wanted = np.array([int(seed) < config.seeds and s in config.strategies_for(int(seed))
                           for s, seed in zip(frame["strategy"], frame["seed"], strict=True)], dtype=bool)
        wanted &= np.array([int(b) in config.budgets_of(s)
                            for s, b in zip(frame["strategy"], frame["budget"], strict=True)], dtype=bool)
        if keys is not None:
            wanted &= frame["dataset_key"].isin(set(keys))
        frame = frame[wanted]
    frame = frame.reset_index(drop=True)
    for column in ("seed", "budget", "trials", "incumbent_trial", "n_train", "n_test", "n_classes", "kb_datasets"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("test_score", "cv_score", "seconds", "kb_fraction", "time_budget"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("neighbors", "neighbor_families"):
        frame[column] = [list(v) if isinstance(v, list | tuple | np.ndarray) else [] for v in frame[column]]
    return frame


def cell_scores(frame: pd.DataFrame, scale: Sequence[str] | None = None) -> pd.DataFrame:
    """Per (dataset, strategy, budget): test score and seconds averaged over seeds, and the normalised score
    ``(score - worst) / (best - worst)`` (1 if all equal). Worst and best are taken over all budgets of the
    ``scale`` strategies of that dataset (default: every strategy); the others are placed on the same scale,
    so they can fall outside [0, 1]."""
    if frame.empty:
        return pd.DataFrame(columns=["dataset_key", "strategy", "budget", "test_score", "seconds", "normalized"])
    cells = (frame.groupby(["dataset_key", "strategy", "budget"], as_index=False)
             .agg(test_score=("test_score", "mean"), seconds=("seconds", "mean")))
    basis = cells if scale is None else cells[cells["strategy"].isin(scale)]
    everything = cells.groupby("dataset_key")["test_score"]
    low = cells["dataset_key"].map(basis.groupby("dataset_key")["test_score"].min()).fillna(
        everything.transform("min"))
    high = cells["dataset_key"].map(basis.groupby("dataset_key")["test_score"].max()).fillna(
        everything.transform("max"))
    span = high - low
    cells["normalized"] = np.where(span > 1e-12, (cells["test_score"] - low) / span.where(span > 1e-12, 1.0), 1.0)
    cells["budget"] = cells["budget"].astype(int)
    return cells


def rank_cells(cells: pd.DataFrame, strategies: Sequence[str]) -> pd.DataFrame:
    """Rank (1 = best, ties averaged) of each strategy among ``strategies`` per dataset and budget."""
    ranked = cells[cells["strategy"].isin(strategies)].copy()
    ranked["rank"] = ranked.groupby(["dataset_key", "budget"])["test_score"].rank(ascending=False, method="average")
    return ranked


def _nested(series: pd.Series, strategies: Sequence[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for strategy in strategies:
        values = {str(int(b)): float(v) for (s, b), v in series.items() if s == strategy and pd.notna(v)}
        if values:
            out[strategy] = dict(sorted(values.items(), key=lambda kv: int(kv[0])))
    return out


def trials_to_match(median: dict[str, dict[str, float]], strategy: str, reference: str, at: int) -> int | None:
    """Smallest budget at which ``strategy``'s median normalised score reaches ``reference``'s at budget ``at``."""
    target = median.get(reference, {}).get(str(at))
    if target is None:
        return None
    for budget, value in sorted(median.get(strategy, {}).items(), key=lambda kv: int(kv[0])):
        if value >= target - 1e-12:
            return int(budget)
    return None


def bootstrap_bands(cells: pd.DataFrame, value: str = "normalized", n: int = BOOTSTRAP, seed: int = 0
                    ) -> pd.DataFrame:
    """2.5 / 97.5 % bootstrap percentiles (resampling datasets) of the median ``value`` per strategy and budget."""
    if cells.empty:
        return pd.DataFrame(columns=["strategy", "budget", "low", "high"])
    table = cells.pivot_table(index="dataset_key", columns=["strategy", "budget"], values=value)
    values = table.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n, len(values)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(values[idx], axis=1)
        low, high = np.nanpercentile(medians, [2.5, 97.5], axis=0)
    return pd.DataFrame({"strategy": [c[0] for c in table.columns], "budget": [int(c[1]) for c in table.columns],
                         "low": low, "high": high})


SEARCH_STRATEGIES = ("warm", "cold", "random")  # one code path, same CV folds: their CV scores compare


def cv_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Like :func:`cell_scores` but on the incumbent's cross-validated score (the search objective), over the
    strategies that share one code path and the same CV folds (warm, cold, random and warm@fraction; the
    scale is set by warm, cold and random)."""
    if "cv_score" not in frame.columns:
        frame = frame.iloc[:0].assign(cv_score=np.nan)
    same_path = frame[frame["strategy"].isin(SEARCH_STRATEGIES) | frame["strategy"].str.startswith("warm@")]
    same_path = same_path.dropna(subset=["cv_score"])
    if same_path.empty:
        return pd.DataFrame(columns=["dataset_key", "strategy", "budget", "test_score", "seconds", "normalized"])
    return cell_scores(same_path.drop(columns=["test_score"]).rename(columns={"cv_score": "test_score"}),
                       scale=SEARCH_STRATEGIES)


def paired_comparison(frame: pd.DataFrame, strategy: str, reference: str, value: str = "test_score"
                      ) -> dict[str, dict[str, Any]]:
    """Per budget, over datasets (seeds averaged): how often ``strategy`` beats, ties or loses to ``reference``
    on ``value``, the median difference, and the two-sided Wilcoxon signed-rank p-value (None if < 6 pairs)."""
    from scipy.stats import wilcoxon

    if value not in frame.columns:
        return {}
    pick = frame[frame["strategy"].isin([strategy, reference])].dropna(subset=[value])
    table = pick.pivot_table(index=["dataset_key", "budget"], columns="strategy", values=value, aggfunc="mean")
    out: dict[str, dict[str, Any]] = {}
    if strategy not in table.columns or reference not in table.columns:
        return out
    table = table.dropna(subset=[strategy, reference])
    for budget, part in table.groupby(level="budget"):
        diff = (part[strategy] - part[reference]).to_numpy(dtype=float, copy=True)
        diff[np.abs(diff) < 1e-9] = 0.0
        nonzero = diff[diff != 0]
        p_value = None
        if len(nonzero) >= 6:
            p_value = round(float(wilcoxon(nonzero).pvalue), 4)
        out[str(int(budget))] = {"wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()),
                                 "losses": int((diff < 0).sum()), "median_difference": float(np.median(diff)),
                                 "wilcoxon_p": p_value}
    return out


def gain_by_distance(frame: pd.DataFrame, records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per budget: how warm's CV gain over cold (seeds averaged per dataset) depends on the query's distance to its
    nearest knowledge-base neighbour (``neighbors.jsonl`` records of warm): Spearman's rho and p (None below 6
    datasets), and the mean gain of the far queries (the recommender put the global portfolio first) and the rest."""
    from scipy.stats import spearmanr

    if frame.empty or "cv_score" not in frame.columns:
        return {}
    seeds, keys = set(frame["seed"].astype(int)), set(frame["dataset_key"])
    nearest = pd.DataFrame([{"dataset_key": r["dataset_key"], "nearest": min(n["distance"] for n in r["neighbors"]),
                             "far": float(bool(r.get("far")))} for r in records
                            if r.get("strategy") == "warm" and r.get("neighbors") and int(r.get("seed", -1)) in seeds
                            and r.get("dataset_key") in keys])
    if nearest.empty:
        return {}
    nearest = nearest.groupby("dataset_key").mean()
    cv = frame[frame["strategy"].isin(["warm", "cold"])].dropna(subset=["cv_score"])
    table = cv.groupby(["budget", "dataset_key", "strategy"])["cv_score"].mean().unstack("strategy")
    if not {"warm", "cold"} <= set(table.columns):
        return {}
    gain = (table["warm"] - table["cold"]).dropna()
    out: dict[str, dict[str, Any]] = {}
    for budget, part in gain.groupby(level="budget"):
        part = part.droplevel("budget")
        info = nearest.reindex(part.index).dropna()
        part = part.reindex(info.index)
        rho = p = None
        if len(part) >= 6 and part.nunique() > 1 and info["nearest"].nunique() > 1:
            result = spearmanr(part.to_numpy(), info["nearest"].to_numpy())
            rho, p = round(float(result.statistic), 4), round(float(result.pvalue), 4)
        far = info["far"] >= 0.5
        out[str(int(budget))] = {
            "datasets": int(len(part)), "spearman_rho": rho, "p": p, "far_datasets": int(far.sum()),
            "mean_gain_far": float(part[far].mean()) if far.any() else None,
            "mean_gain_near": float(part[~far].mean()) if (~far).any() else None}
    return out


def summarize(frame: pd.DataFrame, config: BenchmarkConfig, *, command: str | None = None,
              hours: float = 0.0, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    strategies = config.all_strategies
    main = compared_strategies(strategies)
    cells = cell_scores(frame, scale=main)
    median = _nested(cells.groupby(["strategy", "budget"])["normalized"].median(), main)
    ranked = rank_cells(cells, main)
    ranks = _nested(ranked.groupby(["strategy", "budget"])["rank"].mean(), main)
    seconds = _nested(cells.groupby(["strategy", "budget"])["seconds"].median(), strategies)
    scores = _nested(cells.groupby(["strategy", "budget"])["test_score"].mean(), strategies)
    at = MATCH_BUDGET if MATCH_BUDGET in config.budgets else config.max_budget
    match_cold = trials_to_match(median, "warm", "cold", at)
    match_random = trials_to_match(median, "warm", "random", at)
    cv_median = _nested(cv_cells(frame).groupby(["strategy", "budget"])["normalized"].median(), main)
    curve, cv_curve = kb_fraction_curves(frame, config)
    summary: dict[str, Any] = {
        "suite": config.suite,
        "n_datasets": int(frame["dataset_key"].nunique()) if len(frame) else 0,
        "n_seeds": config.seeds,
        "strategies": list(strategies),
        "budgets": list(config.budgets),
        "metric": METRIC,
        "median_normalized_score": median,
        "average_rank": ranks,
        "median_seconds": seconds,
        "mean_test_score": scores,
        "match_budget": at,
        "warm_trials_to_match_cold_at_50": match_cold,
        "warm_trials_to_match_random_at_50": match_random,
        "kb_fraction_curve": curve,
        "kb_fraction_cv_curve": cv_curve,
        "kb_fraction_seeds": min(config.seeds, config.kb_fraction_seeds or config.seeds),
        "median_normalized_cv_score": cv_median,
        "cv_warm_trials_to_match_cold_at_50": trials_to_match(cv_median, "warm", "cold", at),
        "cv_warm_trials_to_match_random_at_50": trials_to_match(cv_median, "warm", "random", at),
        "paired": {f"warm_vs_{ref}": {value: paired_comparison(frame, "warm", ref, value)
                                       for value in ("test_score", "cv_score")}
                   for ref in ("cold", "random") if "warm" in strategies and ref in strategies},
    }
    if at != MATCH_BUDGET:
        summary[f"warm_trials_to_match_cold_at_{at}"] = match_cold
        summary[f"warm_trials_to_match_random_at_{at}"] = match_random
    summary["targets"] = _targets(summary, config)
    summary.update({
        "datasets": sorted(frame["dataset"].unique().tolist()) if len(frame) else [],
        "families": int(frame["family"].nunique()) if len(frame) else 0,
        "n_rows": int(len(frame)),
        "command": command or config.command(),
        "machine": machine_info(config.jobs),
        "hours": round(float(hours), 6),
        "protocol": config.protocol() | {"seeds": config.seeds, "kb_fractions": list(config.kb_fractions)},
        "created": _now(),
    })
    if extra:
        summary.update(extra)
    return summary


def kb_fraction_curves(frame: pd.DataFrame, config: BenchmarkConfig
                       ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``{fraction: {budget: median normalised score}}`` of warm@fraction on test and on CV, over the seeds the
    ablations ran on (``1`` is warm on those seeds), on the scale set by the compared strategies."""
    if "warm" not in config.strategies or frame.empty:
        return {}, {}
    on = frame if config.kb_fraction_seeds is None else frame[frame["seed"].astype(int) < config.kb_fraction_seeds]
    curves = []
    for cells in (cell_scores(on, scale=config.compared_strategies), cv_cells(on)):
        median = _nested(cells.groupby(["strategy", "budget"])["normalized"].median(), config.all_strategies)
        curves.append({f"{f:g}": median[_fraction_name(f)] for f in sorted(set(config.kb_fractions) | {1.0})
                       if median.get(_fraction_name(f))})
    return curves[0], curves[1]


def _targets(summary: dict[str, Any], config: BenchmarkConfig) -> dict[str, dict[str, Any]]:
    ranks = summary["average_rank"]
    at = summary["match_budget"]
    match = summary["warm_trials_to_match_cold_at_50"]
    targets: dict[str, dict[str, Any]] = {}
    targets["warm_matches_cold_within_10"] = {
        "description": f"warm_trials_to_match_cold_at_{at} <= 10",
        "met": None if "cold" not in ranks or "warm" not in ranks else (match is not None and match <= 10),
        "value": match,
    }
    if "warm" in ranks and ("cold" in ranks or "random" in ranks):
        per_budget = {}
        for b, r in ranks["warm"].items():
            others = [ranks[o][b] for o in ("cold", "random") if o in ranks and b in ranks[o]]
            per_budget[b] = bool(others) and all(r < o for o in others)
        met: bool | None = all(per_budget.values()) if per_budget else None
    else:
        per_budget, met = {}, None
    targets["warm_ranks_above_cold_and_random"] = {
        "description": "warm has a better average rank than cold and random at every budget",
        "met": met, "value": per_budget}
    top, low = str(config.max_budget), str(config.min_budget)
    flaml_rank, warm_top = ranks.get("flaml", {}).get(top), ranks.get("warm", {}).get(top)
    targets["warm_beats_flaml_at_equal_wallclock"] = {
        "description": f"warm after {top} trials beats flaml given the same wall-clock, on average rank",
        "met": None if flaml_rank is None or warm_top is None else warm_top < flaml_rank,
        "value": {"warm": warm_top, "flaml": flaml_rank}}
    zs_rank, warm_low = ranks.get("flaml-zeroshot", {}).get(low), ranks.get("warm", {}).get(low)
    targets["warm_one_trial_beats_flaml_zeroshot"] = {
        "description": f"warm at {low} trial(s) beats flaml-zeroshot on average rank",
        "met": None if zs_rank is None or warm_low is None else warm_low < zs_rank,
        "value": {"warm": warm_low, "flaml-zeroshot": zs_rank}}
    return targets


def machine_info(jobs: int = 1) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("metalearn", "smac", "scikit-learn", "pandas", "numpy", "flaml", "lightgbm", "pymfe"):
        with contextlib.suppress(PackageNotFoundError):
            packages[name] = version(name)
    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "jobs": jobs, "packages": packages}


# --------------------------------------------------------------------------- plots and report

_COLORS = {"warm": "tab:red", "cold": "tab:blue", "random": "tab:gray", "flaml": "tab:green",
           "flaml-zeroshot": "tab:olive"}


def _budget_ticks(ax: Any, budgets: Sequence[int]) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator(list(budgets)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())


def make_plots(frame: pd.DataFrame, summary: dict[str, Any], output: Path) -> dict[str, str]:
    """PNG plots (matplotlib, Agg backend); returns {name: file name}."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    cells = cell_scores(frame, scale=compared_strategies(summary["strategies"]))
    bands = bootstrap_bands(cells)
    median = summary["median_normalized_score"]
    seconds = summary["median_seconds"]
    main = compared_strategies(median)
    files: dict[str, str] = {}

    def band(strategy: str) -> pd.DataFrame:
        return bands[bands["strategy"] == strategy].sort_values("budget")

    for name, xlabel in (("score_vs_trials", "trials"), ("score_vs_seconds", "median wall-clock seconds")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for strategy in main:
            budgets = sorted(int(b) for b in median[strategy])
            y = [median[strategy][str(b)] for b in budgets]
            x = budgets if name == "score_vs_trials" else [seconds[strategy][str(b)] for b in budgets]
            b = band(strategy)
            color = _COLORS.get(strategy)
            marker = "o" if len(x) > 1 else "*"
            ax.plot(x, y, marker=marker, color=color, label=strategy, markersize=6 if len(x) > 1 else 12)
            if len(b) == len(x) and len(x) > 1:
                ax.fill_between(x, b["low"].to_numpy(), b["high"].to_numpy(), color=color, alpha=0.15)
            elif len(b) == len(x):
                ax.errorbar(x, y, yerr=[[y[0] - b["low"].iloc[0]], [b["high"].iloc[0] - y[0]]], color=color,
                            capsize=4)
        ax.set_xscale("log")
        if name == "score_vs_trials":
            _budget_ticks(ax, summary["budgets"])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("median normalised test score")
        ax.set_title(f"{summary['suite']}: {summary['n_datasets']} datasets x {summary['n_seeds']} seeds "
                     "(95% bootstrap bands)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(output / f"{name}.png", dpi=110)
        plt.close(fig)
        files[name] = f"{name}.png"

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, values in summary["average_rank"].items():
        budgets = sorted(int(b) for b in values)
        ax.plot(budgets, [values[str(b)] for b in budgets], marker="o" if len(budgets) > 1 else "*",
                markersize=6 if len(budgets) > 1 else 12, color=_COLORS.get(strategy), label=strategy)
    ax.set_xscale("log")
    _budget_ticks(ax, summary["budgets"])
    ax.set_xlabel("trials")
    ax.set_ylabel("average rank (1 = best)")
    ax.invert_yaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output / "rank_vs_budget.png", dpi=110)
    plt.close(fig)
    files["rank_vs_budget"] = "rank_vs_budget.png"

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    cmap = plt.get_cmap("viridis")
    for ax, key, label in ((axes[0], "kb_fraction_curve", "test"), (axes[1], "kb_fraction_cv_curve", "CV")):
        curve = summary.get(key) or {}
        fractions = sorted(curve, key=float)
        budgets = sorted({int(b) for values in curve.values() for b in values})
        for i, b in enumerate(budgets):
            xs = [float(f) for f in fractions if str(b) in curve[f]]
            ys = [curve[f][str(b)] for f in fractions if str(b) in curve[f]]
            ax.plot(xs, ys, marker="o", color=cmap(i / max(1, len(budgets) - 1)), label=f"{b} trials")
        ax.set_xlabel("fraction of the (family-filtered) knowledge base")
        ax.set_ylabel(f"warm: median normalised {label} score")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.suptitle(f"Knowledge-base size: {summary['n_datasets']} datasets, first {summary.get('kb_fraction_seeds', 1)} "
                 "seed(s)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    fig.savefig(output / "kb_fraction_curve.png", dpi=110)
    plt.close(fig)
    files["kb_fraction_curve"] = "kb_fraction_curve.png"
    return files


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _p_value(p: float | None) -> str:
    return "p —" if p is None else ("p<0.001" if p < 0.001 else f"p={p:.3f}")


def _table(data: dict[str, dict[str, float]], budgets: Sequence[int], digits: int = 3, first: str = "strategy"
           ) -> list[str]:
    lines = [f"| {first} | " + " | ".join(str(b) for b in budgets) + " |",
             "|---|" + "---:|" * len(budgets)]
    for strategy, values in data.items():
        lines.append(f"| {strategy} | " + " | ".join(_fmt(values.get(str(b)), digits) for b in budgets) + " |")
    return lines


def shortfalls(summary: dict[str, Any]) -> list[str]:
    """One sentence per missed target (and for the CV view of trials-to-match): by how much, and the next lever."""
    targets, median, ranks = summary["targets"], summary["median_normalized_score"], summary["average_rank"]
    at, out = summary["match_budget"], []
    design = ("the initial design: more neighbours (k), a better meta-feature distance, or a larger cross-evaluated "
              "portfolio (more seed runs)")
    for view, table, key in (("test", median, "warm_matches_cold_within_10"),
                             ("CV", summary.get("median_normalized_cv_score", {}), None)):
        met = targets[key]["met"] if key else None
        match = summary["warm_trials_to_match_cold_at_50"] if key else summary.get("cv_warm_trials_to_match_cold_at_50")
        goal = table.get("cold", {}).get(str(at))
        if goal is None or "warm" not in table or met is True or (key is None and match is not None and match <= 10):
            continue
        best10 = max((v for b, v in table["warm"].items() if int(b) <= 10), default=None)
        reached = f"after {match} trials" if match is not None else "at no budget"
        gap = "" if best10 is None else f"; within 10 trials warm's best is {best10:.3f}, {goal - best10:.3f} short"
        out.append(f"On the {view} score warm reaches cold's {at}-trial median ({goal:.3f}) {reached}, not within 10"
                   f"{gap}. Lever: {design}.")
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
    return out


def write_report(frame: pd.DataFrame, summary: dict[str, Any], plots: dict[str, str], output: Path) -> Path:
    budgets = summary["budgets"]
    mark = {True: "met", False: "**not met**", None: "n/a"}
    lines = [
        f"# Warm-start benchmark: {summary['suite']}", "",
        f"{summary['n_datasets']} datasets ({summary['families']} families) x {summary['n_seeds']} seeds; "
        f"strategies {', '.join(summary['strategies'])}; budgets (trials) {', '.join(map(str, budgets))}; "
        f"metric: test {summary['metric']}. Protocol: `benchmarks/README.md`.", "",
        f"Command: `{summary['command']}`  ", f"Compute: {summary['hours']:.2f} h on "
        f"{summary['machine']['cpus']} CPUs ({summary['machine']['platform']}), {summary['machine']['jobs']} jobs.",
        "", "## Targets", "", "| target | result | value |", "|---|---|---|",
    ]
    if summary.get("report_only"):
        lines[3:3] = [f"**Partial results**: the {summary['complete_datasets']} datasets (of "
                      f"{summary['datasets_in_suite']} in the suite) whose every strategy and seed has finished "
                      "(`--report-only` on an interrupted run; rerunning the command resumes it).", ""]
    for target in summary["targets"].values():
        lines.append(f"| {target['description']} | {mark[target['met']]} | `{json.dumps(target['value'])}` |")
    misses = shortfalls(summary)
    if misses:
        lines += ["", "Shortfalls and next levers:", ""] + [f"- {m}" for m in misses]
    lines += ["", "## Median normalised test score", "",
              "Per dataset, test scores are averaged over seeds, then normalised to (score - worst) / (best - worst) "
              "over all budgets of the compared strategies on that dataset; the table shows the median over "
              "datasets.", ""]
    lines += _table(summary["median_normalized_score"], budgets)
    lines += ["", f"![median normalised score vs trials]({plots['score_vs_trials']})", "",
              f"![median normalised score vs seconds]({plots['score_vs_seconds']})", "",
              "## Average rank (1 = best)", "",
              "Ranked per dataset and budget among the strategies with a result at that budget (flaml-zeroshot at "
              f"{summary['budgets'][0]}, flaml at {summary['budgets'][-1]}; the warm@fraction ablations are not "
              "ranked).", ""]
    lines += _table(summary["average_rank"], budgets, 2)
    lines += ["", f"![average rank vs budget]({plots['rank_vs_budget']})", "",
              "## Trials to match", "",
              f"Smallest budget at which warm's median normalised score reaches cold's (random's) at "
              f"{summary['match_budget']} trials: cold {_fmt(summary['warm_trials_to_match_cold_at_50'])}, "
              f"random {_fmt(summary['warm_trials_to_match_random_at_50'])}.", "",
              "## Search objective and paired comparison", "",
              "Held-out test scores of small datasets are noisy, so the same comparison on the objective the "
              "search optimises: the incumbent's cross-validated score on the train part (warm, cold and random "
              "share one code path and the same CV folds), normalised per dataset like the test score.", ""]
    lines += _table(summary["median_normalized_cv_score"], budgets)
    lines += ["", f"On this view warm reaches cold's (random's) {summary['match_budget']}-trial median after "
              f"{_fmt(summary['cv_warm_trials_to_match_cold_at_50'])} "
              f"({_fmt(summary['cv_warm_trials_to_match_random_at_50'])}) trials."]
    for name, by_value in summary["paired"].items():
        lines += ["", f"Paired per dataset, {name.replace('_', ' ')} (wins / ties / losses, median difference, "
                  "Wilcoxon signed-rank p):", "",
                  "| budget | test | CV |", "|---:|---|---|"]
        for b in budgets:
            cells = []
            for value in ("test_score", "cv_score"):
                c = by_value.get(value, {}).get(str(b))
                cells.append("—" if c is None else f"{c['wins']} / {c['ties']} / {c['losses']}, "
                             f"{c['median_difference']:+.4f}, {_p_value(c['wilcoxon_p'])}")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
    by_distance = summary.get("warm_gain_by_distance") or {}
    if by_distance:
        lines += ["", "## Where the warm start helps", "",
                  "warm's CV-score gain over cold (seeds averaged per dataset) against the query's distance to its "
                  "nearest knowledge-base neighbour: Spearman correlation, and the mean gain of the far queries (the "
                  "nearest neighbour beyond the 90th percentile of the knowledge base's own nearest distances; their "
                  "initial design leads with the global portfolio) and of the others.", "",
                  "| budget | datasets | Spearman rho | far: datasets, mean gain | near: mean gain |",
                  "|---:|---:|---|---|---|"]
        for b in budgets:
            c = by_distance.get(str(b))
            if c:
                rho = "—" if c["spearman_rho"] is None else f"{c['spearman_rho']:+.3f} ({_p_value(c['p'])})"
                lines.append(f"| {b} | {c['datasets']} | {rho} | {c['far_datasets']}, {_fmt(c['mean_gain_far'], 4)} "
                             f"| {_fmt(c['mean_gain_near'], 4)} |")
    lines += ["", "## Knowledge-base size", "",
              "warm with a random subset (seeded) of the family-filtered knowledge base; rows are fractions "
              f"(seeds: the first {summary['kb_fraction_seeds']}). Scores are normalised like the tables above (worst "
              "and best of the compared strategies), computed on those seeds only, so the `1` row is warm on them "
              "and a fraction can fall below 0.", ""]
    lines += ["Test score:", ""] + _table(summary["kb_fraction_curve"], budgets, first="fraction")
    if summary.get("kb_fraction_cv_curve"):
        lines += ["", "CV score (the search objective, normalised like the CV table above):", ""]
        lines += _table(summary["kb_fraction_cv_curve"], budgets, first="fraction")
    lines += ["", f"![knowledge-base size curve]({plots['kb_fraction_curve']})", "",
              "## Median wall-clock seconds", ""]
    lines += _table(summary["median_seconds"], budgets, 1)
    lines += ["", "## Mean test score per dataset (largest budget; flaml-zeroshot at the smallest)", ""]
    main = compared_strategies(summary["strategies"])
    if len(frame):
        top, low = max(budgets), min(budgets)
        pick = frame[((frame["budget"] == top) & (frame["strategy"] != "flaml-zeroshot"))
                     | (frame["strategy"] == "flaml-zeroshot") & (frame["budget"] == low)]
        table = pick.pivot_table(index="dataset", columns="strategy", values="test_score", aggfunc="mean")
        cols = [s for s in main if s in table.columns]
        lines += ["| dataset | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for name, row in table.iterrows():
            lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    errors = summary.get("errors") or []
    if errors:
        lines += ["", f"## Errors ({len(errors)})", ""]
        lines += [f"- {e.get('dataset') or e.get('dataset_key')} seed {e.get('seed')} {e.get('strategy')}: "
                  f"{str(e.get('error'))[:200]}" for e in errors[:50]]
    path = output / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def finalize(output: Path, config: BenchmarkConfig, keys: Iterable[str] | None = None, hours: float = 0.0,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write results.parquet, summary.json, the plots and report.md from the checkpoint."""
    frame = load_results(output, config, keys)
    frame.to_parquet(output / "results.parquet", index=False)
    summary = summarize(frame, config, hours=hours, extra=extra)
    summary["warm_gain_by_distance"] = gain_by_distance(frame, read_jsonl(output / "neighbors.jsonl"))
    plots = make_plots(frame, summary, output)
    summary["plots"] = plots
    write_report(frame, summary, plots, output)
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default, allow_nan=False))
    return summary
