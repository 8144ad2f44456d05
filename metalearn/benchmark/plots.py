"""The benchmark's PNG plots (optional extra: matplotlib, through :mod:`metalearn.figures`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from metalearn import figures
from metalearn.benchmark.analysis import bootstrap_bands, cell_scores
from metalearn.benchmark.config import compared_strategies

COLORS = {"warm": "tab:red", "cold": "tab:blue", "random": "tab:gray", "flaml": "tab:green",
          "flaml-zeroshot": "tab:olive"}
DPI = 110


def _save(fig: Any, output: Path, name: str) -> str:
    figures.save_png(fig, output / f"{name}.png", DPI)
    return f"{name}.png"


def _ci_bands(ci: dict[str, dict[str, dict[str, float]]]) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
    """A ``{strategy: {budget: {mean, low, high}}}`` CI table as the means and the bands of :func:`_score_plot`."""
    means = {s: {b: v["mean"] for b, v in values.items()} for s, values in ci.items()}
    bands = pd.DataFrame([{"strategy": s, "budget": int(b), "low": v["low"], "high": v["high"]}
                          for s, values in ci.items() for b, v in values.items()],
                         columns=["strategy", "budget", "low", "high"])
    return means, bands


def _score_plot(summary: dict[str, Any], bands: pd.DataFrame, name: str, xlabel: str, output: Path,
                median: dict[str, dict[str, float]] | None = None,
                ylabel: str = "median normalised error (0 = best cell, 1 = median)") -> str:
    """Median normalised test error (or ``median``: another score) against trials (or seconds), with 95%
    bootstrap bands."""
    median = summary["median_normalized_error"] if median is None else median
    seconds = summary["median_seconds"]
    fig = figures.new_figure(7, 4.5)
    ax = fig.subplots()
    for strategy in compared_strategies(median):
        budgets = sorted(int(b) for b in median[strategy])
        y = [median[strategy][str(b)] for b in budgets]
        x = budgets if name != "error_vs_seconds" else [seconds[strategy][str(b)] for b in budgets]
        b = bands[bands["strategy"] == strategy].sort_values("budget")
        color = COLORS.get(strategy)
        marker = "o" if len(x) > 1 else "*"
        ax.plot(x, y, marker=marker, color=color, label=strategy, markersize=6 if len(x) > 1 else 12)
        if len(b) == len(x) and len(x) > 1:
            ax.fill_between(x, b["low"].to_numpy(), b["high"].to_numpy(), color=color, alpha=0.15)
        elif len(b) == len(x):
            ax.errorbar(x, y, yerr=[[y[0] - b["low"].iloc[0]], [b["high"].iloc[0] - y[0]]], color=color,
                        capsize=4)
    ax.set_xscale("log")
    if name != "error_vs_seconds":
        figures.budget_ticks(ax, summary["budgets"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{summary['suite']}: {summary['n_datasets']} datasets x {summary['n_seeds']} seeds "
                 "(95% bootstrap bands)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, output, name)


def _rank_plot(summary: dict[str, Any], output: Path) -> str:
    """Average rank of each compared strategy against the budget."""
    fig = figures.new_figure(7, 4.5)
    ax = fig.subplots()
    for strategy, values in summary["average_rank"].items():
        budgets = sorted(int(b) for b in values)
        ax.plot(budgets, [values[str(b)] for b in budgets], marker="o" if len(budgets) > 1 else "*",
                markersize=6 if len(budgets) > 1 else 12, color=COLORS.get(strategy), label=strategy)
    ax.set_xscale("log")
    figures.budget_ticks(ax, summary["budgets"])
    ax.set_xlabel("trials")
    ax.set_ylabel("average rank (1 = best)")
    ax.invert_yaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, output, "rank_vs_budget")


def _kb_fraction_plot(summary: dict[str, Any], output: Path) -> str:
    """warm's median normalised test and CV error against the fraction of the knowledge base, per budget."""
    fig = figures.new_figure(11, 4.5)
    axes = fig.subplots(1, 2, sharex=True)
    cmap = figures.colormap("viridis")
    for ax, key, label in ((axes[0], "kb_fraction_curve", "test"), (axes[1], "kb_fraction_cv_curve", "CV")):
        curve = summary.get(key) or {}
        fractions = sorted(curve, key=float)
        budgets = sorted({int(b) for values in curve.values() for b in values})
        for i, b in enumerate(budgets):
            xs = [float(f) for f in fractions if str(b) in curve[f]]
            ys = [curve[f][str(b)] for f in fractions if str(b) in curve[f]]
            ax.plot(xs, ys, marker="o", color=cmap(i / max(1, len(budgets) - 1)), label=f"{b} trials")
        ax.set_xlabel("fraction of the (family-filtered) knowledge base")
        ax.set_ylabel(f"warm: mean normalised {label} error")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.suptitle(f"Knowledge-base size: {summary['n_datasets']} datasets, first {summary.get('kb_fraction_seeds', 1)} "
                 "seed(s)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    return _save(fig, output, "kb_fraction_curve")


def make_plots(frame: pd.DataFrame, summary: dict[str, Any], output: Path) -> dict[str, str]:
    """PNG plots (matplotlib, Agg canvas); returns {name: file name}. Raises ImportError without matplotlib."""
    figures.require()
    bands = bootstrap_bands(cell_scores(frame, scale=compared_strategies(summary["strategies"]),
                                        floor=summary.get("normalization_floor")))
    files: dict[str, str] = {}
    for name, xlabel in (("error_vs_trials", "trials"), ("error_vs_seconds", "median wall-clock seconds")):
        files[name] = _score_plot(summary, bands, name, xlabel, output)
    means, ci_bands = _ci_bands(summary.get("test_score_ci", {}))
    files["raw_score_vs_trials"] = _score_plot(summary, ci_bands, "raw_score_vs_trials", "trials", output,
                                               means, f"mean test {summary.get('metric', 'score')}")
    files["rank_vs_budget"] = _rank_plot(summary, output)
    files["kb_fraction_curve"] = _kb_fraction_plot(summary, output)
    return files
