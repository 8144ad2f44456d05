"""Summary, report and plots of the equal wall-clock benchmark (``summary.json``, ``report.md``, PNGs).

Reads the rows of ``results.jsonl``; the statistics of a budget use the datasets on which every system run at
that budget has a row at every seed (``complete``; the grids may differ by budget, as 60 s on every dataset and
180 s on a selection, and pairs across budgets use the datasets and seeds both ran). Per dataset the test scores
are averaged over seeds; then:
mean test score (balanced accuracy, or R^2 for regression) with a 95 % bootstrap CI over datasets and the
median, the average rank (1 = best, ties averaged), TabRepo's normalised error
(:func:`metalearn.benchmark.analysis.normalized_error`, the trial study's too: per dataset and budget,
error = 1 - score, 0 = the best system, 1 = the median system, clipped to [0, 1]; for R^2 the error is the
relative squared error, each seed's R^2 floored at :data:`~metalearn.benchmark.config.R2_FLOOR` first),
paired comparisons of the reference (``metalearn``) with every other system (wins / ties / losses, Wilcoxon
signed-rank p, mean difference with a bootstrap CI), the same averaged per family first (datasets derived
from the same data count once), and the distribution of actual seconds and overruns. Regression adds the test
RMSE (negated, higher is better): mean with CI, median and paired.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metalearn import figures
from metalearn.benchmark.analysis import bootstrap_ci, machine_info, normalized_error, paired_comparison
from metalearn.benchmark.checkpoint import now, read_jsonl
from metalearn.benchmark.config import R2_FLOOR
from metalearn.benchmark.report import ci_cell, fmt_number, p_value_text
from metalearn.benchmark.systems import REFERENCE, STATUSES
from metalearn.protocol import dumps_json

KEY = ["dataset_key", "seed", "system", "budget"]
NUMERIC = ("test_score", "test_rmse", "seconds", "process_seconds", "overrun", "cap")
COLORS = {"metalearn": "tab:red", "metalearn-cold": "tab:blue", "flaml": "tab:green", "autogluon": "tab:purple",
          "autogluon-balanced": "tab:pink", "autogluon-best": "tab:brown", "hgb": "tab:gray"}
DPI = 110
Nested = dict[str, dict[str, Any]]


def load_rows(output: Path, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """The rows of ``output/results.jsonl`` (the last one per dataset, seed, system and budget)."""
    records = read_jsonl(output / "results.jsonl")
    frame = pd.DataFrame(records)
    if frame.empty:
        return pd.DataFrame(columns=[*KEY, "dataset", "status", *NUMERIC])
    frame = frame.drop_duplicates(KEY, keep="last").reset_index(drop=True)
    frame = frame.reindex(columns=list(dict.fromkeys([*frame.columns, *NUMERIC])))
    if keys is not None:
        frame = frame[frame["dataset_key"].isin(set(keys))].reset_index(drop=True)
    frame["seed"] = frame["seed"].astype(int)
    frame["budget"] = frame["budget"].astype(int)
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def complete_keys(frame: pd.DataFrame, systems: Sequence[str], budgets: Sequence[int], seeds: int) -> list[str]:
    """Datasets with a row for every system, budget and seed."""
    need = len(systems) * len(budgets) * seeds
    part = frame[frame["system"].isin(systems) & frame["budget"].isin(budgets) & (frame["seed"] < seeds)]
    counts = part.groupby("dataset_key").size()
    return sorted(counts[counts == need].index)


def cells(frame: pd.DataFrame, floor: float | None = None) -> pd.DataFrame:
    """Per (dataset, system, budget): test score (and ``test_rmse`` when present), seconds and overrun averaged
    over seeds; with ``floor``, ``basis`` is the mean of the seeds' test scores floored at it (for the normalised
    error only)."""
    if frame.empty:
        return pd.DataFrame(columns=["dataset_key", "system", "budget", "test_score", "seconds", "overrun"])
    columns = {c: (c, "mean") for c in ("test_score", "test_rmse", "seconds", "overrun") if c in frame.columns}
    if floor is not None:
        frame, columns["basis"] = frame.assign(basis=frame["test_score"].clip(lower=floor)), ("basis", "mean")
    return frame.groupby(["dataset_key", "system", "budget"], as_index=False).agg(**columns)


def ranked(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (from :func:`cells`) with the rank of each system per dataset and budget (1 = best)."""
    out = table.copy()
    out["rank"] = out.groupby(["dataset_key", "budget"])["test_score"].rank(ascending=False, method="average")
    return out


def normalized_errors(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (from :func:`cells`) with the normalised error of each system per dataset and budget
    (:func:`~metalearn.benchmark.analysis.normalized_error`: best and median over the systems), of the floored
    ``basis`` when the table has one."""
    out = table.copy()
    score = "basis" if "basis" in out.columns else "test_score"
    out["normalized_error"] = normalized_error(out, by=("dataset_key", "budget"), score=score)
    return out


def _nested(table: pd.DataFrame, column: str, systems: Sequence[str], how: str = "mean") -> Nested:
    values = table.groupby(["system", "budget"])[column].agg(how)
    out: Nested = {}
    for system in systems:
        row = {str(int(b)): float(v) for (s, b), v in values.items() if s == system and pd.notna(v)}
        if row:
            out[system] = dict(sorted(row.items(), key=lambda kv: int(kv[0])))
    return out


def _per_budget(table: pd.DataFrame, systems: Sequence[str], stat: Any) -> Nested:
    out: Nested = {}
    for system in systems:
        part = table[table["system"] == system]
        if len(part):
            out[system] = {str(int(b)): stat(g) for b, g in sorted(part.groupby("budget"), key=lambda kv: kv[0])}
    return out


def _distribution(values: pd.Series) -> dict[str, float | None]:
    data = values.dropna().to_numpy(dtype=float)
    if not len(data):
        return {"mean": None, "median": None, "p90": None, "max": None}
    return {"mean": float(data.mean()), "median": float(np.median(data)), "p90": float(np.percentile(data, 90)),
            "max": float(data.max())}


def time_stats(frame: pd.DataFrame, systems: Sequence[str]) -> dict[str, Nested]:
    """Per system and budget, over runs: actual seconds and overrun (mean, median, p90, max; share of runs
    over the budget and over it by more than 10 %), and the count of each status."""
    def overrun(group: pd.DataFrame) -> dict[str, Any]:
        budget = float(group["budget"].iloc[0])
        values = group["overrun"].dropna()
        return _distribution(values) | {"share_over": float((values > 0).mean()) if len(values) else None,
                                        "share_over_10pct": float((values > 0.1 * budget).mean())
                                        if len(values) else None}

    return {"seconds": _per_budget(frame, systems, lambda g: _distribution(g["seconds"])),
            "overrun": _per_budget(frame, systems, overrun),
            "status": _per_budget(frame, systems, lambda g: {s: int((g["status"] == s).sum()) for s in STATUSES})}


def paired(frame: pd.DataFrame, systems: Sequence[str], reference: str = REFERENCE, value: str = "test_score"
           ) -> Nested:
    """Per other system and budget: the reference's wins / ties / losses on ``value`` over datasets (seeds
    averaged), median difference and Wilcoxon p (None with fewer than 6 untied pairs), and for scores the mean
    difference with its CI (:func:`~metalearn.benchmark.analysis.paired_comparison`)."""
    if reference not in systems:
        return {}
    renamed = frame.rename(columns={"system": "strategy"})
    return {peer: paired_comparison(renamed, reference, peer, value) for peer in systems if peer != reference}


def by_family(frame: pd.DataFrame) -> pd.DataFrame:
    """Test scores averaged per family (seeds first per dataset, then the family's datasets), ``dataset_key``
    naming the family: families derived from the same data count once."""
    if frame.empty:
        return pd.DataFrame(columns=["dataset_key", "system", "budget", "test_score"])
    family = frame["family"].fillna(frame["dataset_key"]) if "family" in frame.columns else frame["dataset_key"]
    per_dataset = frame.assign(family=family).groupby(["family", "dataset_key", "system", "budget"],
                                                      as_index=False)["test_score"].mean()
    per_family = per_dataset.groupby(["family", "system", "budget"], as_index=False)["test_score"].mean()
    return per_family.rename(columns={"family": "dataset_key"})


def _coverage(frame: pd.DataFrame, setup: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per budget, of the rows :func:`select` kept: the systems run at it (the run's systems with a row there), its
    seeds (the run's, fewer when no row has the later ones yet), and the datasets with a row for every such system
    and seed (``datasets``) or for some (``partial``). Grids may differ by budget (60 s on every dataset, 180 s on a
    selection)."""
    out: dict[str, dict[str, Any]] = {}
    for budget in (int(b) for b in setup["budgets"]):
        part = frame[frame["budget"] == budget]
        if part.empty:
            continue
        systems = [s for s in setup["systems"] if (part["system"] == s).any()]
        seeds = min(int(setup["seeds"]), int(part["seed"].max()) + 1)
        complete = complete_keys(part, systems, [budget], seeds)
        out[str(budget)] = {"systems": systems, "n_seeds": seeds, "n_datasets": len(complete), "datasets": complete,
                            "partial": sorted(set(part["dataset_key"]) - set(complete))}
    return out


def select(frame: pd.DataFrame, setup: dict[str, Any], keys: Iterable[str] | None = None
           ) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """The rows of the run's systems, budgets and seeds on each budget's complete datasets, and the
    coverage of every budget (``_coverage``)."""
    frame = frame[frame["system"].isin(setup["systems"]) & frame["budget"].isin([int(b) for b in setup["budgets"]])
                  & (frame["seed"] < int(setup["seeds"]))]
    if keys is not None:
        frame = frame[frame["dataset_key"].isin(set(keys))]
    grid = _coverage(frame, setup)
    parts = [frame[(frame["budget"] == int(b)) & frame["system"].isin(c["systems"]) & (frame["seed"] < c["n_seeds"])
                   & frame["dataset_key"].isin(c["datasets"])] for b, c in grid.items()]
    rows = pd.concat(parts) if parts else frame.iloc[:0]
    return rows.reset_index(drop=True), grid


def cross_budget(rows: pd.DataFrame, grid: dict[str, dict[str, Any]], reference: str = REFERENCE
                 ) -> list[dict[str, Any]]:
    """For every two budgets, on the datasets complete at both and their common seeds (the same outer splits):
    the reference at the longer budget against itself at the shorter one, and the reference at the shorter budget
    against every other system at the longer one (mean test scores, wins / ties / losses, Wilcoxon p)."""
    out = []
    budgets = sorted(int(b) for b in grid)
    for i, short in enumerate(budgets):
        for long in budgets[i + 1:]:
            a, b = grid[str(short)], grid[str(long)]
            keys = sorted(set(a["datasets"]) & set(b["datasets"]))
            seeds = min(a["n_seeds"], b["n_seeds"])
            if reference not in a["systems"] or not keys:
                continue
            pairs = [((reference, long), (reference, short))] if reference in b["systems"] else []
            pairs += [((reference, short), (peer, long)) for peer in b["systems"] if peer != reference]
            for one, other in pairs:
                out.append(_versus(rows, keys, seeds, one, other))
    return out


def _versus(rows: pd.DataFrame, keys: list[str], seeds: int, one: tuple[str, int], other: tuple[str, int]
            ) -> dict[str, Any]:
    """``one`` against ``other`` (each a system and budget) on ``keys`` and seeds below ``seeds``."""
    names = {one: f"{one[0]}@{one[1]}", other: f"{other[0]}@{other[1]}"}
    part = rows[rows["dataset_key"].isin(keys) & (rows["seed"] < seeds)]
    picked = pd.concat([part[(part["system"] == s) & (part["budget"] == b)].assign(strategy=names[(s, b)], budget=0)
                        for s, b in (one, other)])
    means = picked.groupby(["strategy", "dataset_key"])["test_score"].mean().groupby("strategy").mean()
    cell = paired_comparison(picked, names[one], names[other]).get("0", {})
    return {"system": names[one], "versus": names[other], "n_datasets": len(keys), "n_seeds": seeds,
            "mean": float(means[names[one]]) if names[one] in means.index else None,
            "versus_mean": float(means[names[other]]) if names[other] in means.index else None,
            **cell}


def summarize(frame: pd.DataFrame, setup: dict[str, Any], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The summary (``summary.json``) of the rows ``frame`` of a run described by ``setup``
    (:meth:`EqualTimeConfig.setup`). ``n_datasets`` counts the datasets in the statistics at any budget and
    ``n_seeds`` is the most seeds of a budget; ``coverage`` gives both per budget."""
    return _summary(*select(frame, setup, keys), setup)


def _summary(rows: pd.DataFrame, grid: dict[str, dict[str, Any]], setup: dict[str, Any]) -> dict[str, Any]:
    """:func:`summarize` of the rows and coverage :func:`select` gave."""
    systems, budgets = list(setup["systems"]), [int(b) for b in setup["budgets"]]
    floor = R2_FLOOR if setup.get("task") == "regression" else None
    table = normalized_errors(ranked(cells(rows, floor)))
    complete = sorted({k for c in grid.values() for k in c["datasets"]})
    summary: dict[str, Any] = {
        "n_datasets": len(complete), "n_seeds": max((c["n_seeds"] for c in grid.values()), default=0),
        "budgets": budgets, "systems": systems, "reference": REFERENCE, "task": setup.get("task", "classification"),
        "metric": setup.get("metric", "balanced_accuracy"),
        "coverage": {b: {k: v for k, v in c.items() if k != "datasets"} for b, c in grid.items()},
        "average_rank": _nested(table, "rank", systems),
        "normalized_error": _nested(table, "normalized_error", systems),
    }
    extra = ("rmse",) if summary["task"] == "regression" else ()
    for column in ("test_score", *(f"test_{m}" for m in extra)):
        scored = table.dropna(subset=[column]) if column in table.columns else table.iloc[:0]
        suffix = column.removeprefix("test_")
        summary.update({f"mean_{column}": _nested(scored, column, systems),
                        f"median_{column}": _nested(scored, column, systems, "median"),
                        f"{column}_ci": _per_budget(scored, systems, lambda g, c=column: bootstrap_ci(g[c].tolist())),
                        "paired" if suffix == "score" else f"paired_{suffix}": paired(rows, systems, value=column)})
    families = by_family(rows)
    for budget, part in families.groupby("budget"):
        summary["coverage"][str(int(budget))]["n_families"] = int(part["dataset_key"].nunique())
    summary.update({"family_test_score_ci": _per_budget(families, systems, lambda g: bootstrap_ci(g["test_score"])),
                    "paired_by_family": paired(families, systems)})
    summary["cross_budget"] = cross_budget(rows, grid)
    summary.update(time_stats(rows, systems))
    summary.update({
        "n_rows": int(len(rows)), "datasets": sorted(rows["dataset"].unique().tolist()) if len(rows) else [],
        "partial_datasets": sorted({k for c in grid.values() for k in c["partial"]}),
        "command": setup.get("command"), "protocol": setup.get("protocol"),
        "cap": setup.get("cap"), "machine": machine_info(int(setup.get("jobs", 1))), "created": now()})
    return summary


# --------------------------------------------------------------------------- report.md


def _table(data: Nested, budgets: Sequence[int], cell: Any = fmt_number, first: str = "system") -> list[str]:
    lines = [f"| {first} | " + " | ".join(f"{b} s" for b in budgets) + " |", "|---|" + "---:|" * len(budgets)]
    for system, values in data.items():
        lines.append(f"| {system} | " + " | ".join(cell(values.get(str(b))) for b in budgets) + " |")
    return lines + [""]


def _paired_cell(value: dict[str, Any] | None) -> str:
    if not value:
        return "—"
    text = f"{value['wins']}/{value['ties']}/{value['losses']} ({p_value_text(value.get('p'))})"
    low, high = value.get("difference_ci") or (None, None)
    if value.get("mean_difference") is None or low is None:
        return text
    return f"{text}, {value['mean_difference']:+.3f} [{low:+.3f}, {high:+.3f}]"


def _time_cell(value: dict[str, Any] | None) -> str:
    if not value or value.get("median") is None:
        return "—"
    return f"{value['median']:.1f} / {value['p90']:.1f} / {value['max']:.1f}"


def _overrun_cell(value: dict[str, Any] | None) -> str:
    if not value or value.get("median") is None:
        return "—"
    return f"{value['median']:+.1f} / {value['max']:+.1f} ({100 * value['share_over']:.0f} % over)"


def _status_cell(value: dict[str, int] | None) -> str:
    return "—" if not value else " / ".join(str(value.get(s, 0)) for s in STATUSES)


def _per_dataset(frame: pd.DataFrame, systems: Sequence[str], metric: str) -> list[str]:
    if frame.empty:
        return []
    table = frame.pivot_table(index=["dataset", "budget"], columns="system", values="test_score", aggfunc="mean")
    cols = [s for s in systems if s in table.columns]
    lines = [f"## Per dataset (test {metric}, seeds averaged)", "",
             "| dataset | budget | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for (dataset, budget), row in table.iterrows():
        lines.append(f"| {dataset} | {budget} | " + " | ".join(fmt_number(row.get(c)) for c in cols) + " |")
    return lines + [""]


def _runs_lines(summary: dict[str, Any]) -> list[str]:
    """The commands that produced the rows (from ``state.json``; a report-only call is not one of them)."""
    runs = summary.get("runs", [])
    if not runs:
        return []
    return (["The rows come from these commands (invocations, hours):", ""]
            + [f"* `{r['command']}` ({r['invocations']} x, {r['hours']:.2f} h)" for r in runs] + [""])


def _coverage_lines(summary: dict[str, Any]) -> list[str]:
    """Per budget: its datasets, seeds and systems (when the grids differ by budget) and its partial datasets."""
    grid = summary.get("coverage", {})
    lines = []
    if len({(c["n_datasets"], c["n_seeds"], tuple(c["systems"])) for c in grid.values()}) > 1:
        lines += [f"* {b} s: {c['n_datasets']} datasets x {c['n_seeds']} seeds, {', '.join(c['systems'])}"
                  for b, c in grid.items()] + [""]
    partial = [f"{len(c['partial'])} at {b} s" for b, c in grid.items() if c["partial"]]
    return lines + ([f"Partial (not in the statistics): {', '.join(partial)}.", ""] if partial else [])


def _cross_budget_lines(summary: dict[str, Any]) -> list[str]:
    """The across-budgets table: each pair on the datasets and outer splits both budgets ran."""
    pairs = summary.get("cross_budget", [])
    if not pairs:
        return []
    lines = ["## Across budgets (datasets and outer splits both budgets ran)", "",
             "| system | versus | datasets x seeds | mean | versus mean | wins / ties / losses (Wilcoxon p) |",
             "|---|---|---:|---:|---:|---|"]
    for c in pairs:
        lines.append(f"| {c['system']} | {c['versus']} | {c['n_datasets']} x {c['n_seeds']} | {fmt_number(c['mean'])} "
                     f"| {fmt_number(c['versus_mean'])} | {_paired_cell(c if 'wins' in c else None)} |")
    return lines + [""]


def write_report(summary: dict[str, Any], frame: pd.DataFrame, plots: dict[str, str], output: Path) -> Path:
    """``report.md``: how it was run, the tables, the plots and the per-dataset scores."""
    budgets, metric, task = summary["budgets"], summary.get("metric", "balanced_accuracy"), summary.get("task")
    dummy = "the training mean" if task == "regression" else "the majority class"
    lines = ["# Equal wall-clock benchmark", "",
             f"{summary['n_datasets']} complete {task or 'classification'} datasets x {summary['n_seeds']} seeds; "
             f"whole-process wall-clock per run (spawn to model ready), {summary['protocol'].get('cores')} core(s) "
             f"per run, hard cap {summary['cap']['factor']:g} x budget + {summary['cap']['extra_seconds']:g} s. "
             f"Timeouts and crashes score as {dummy}. Report written by:", "", "```bash", str(summary["command"]),
             "```", "",
             *_runs_lines(summary), *_coverage_lines(summary)]
    sections = [(f"Mean test {metric} [95 % bootstrap CI]", summary["test_score_ci"], ci_cell),
                (f"Median test {metric}", summary.get("median_test_score", {}), fmt_number),
                ("Average rank (1 = best)", summary["average_rank"], fmt_number),
                ("Normalised error (TabRepo: 0 = best system, 1 = median system)", summary["normalized_error"],
                 fmt_number),
                (f"{summary['reference']} vs each system: wins / ties / losses (Wilcoxon p), mean difference "
                 "[95 % CI]", summary["paired"], _paired_cell)]
    if any(c.get("n_families", c["n_datasets"]) < c["n_datasets"] for c in summary["coverage"].values()):
        sections += [("Averaged per family first (each family once): mean test score [95 % bootstrap CI over "
                      "families]", summary["family_test_score_ci"], ci_cell),
                     (f"{summary['reference']} vs each system per family: wins / ties / losses over families "
                      "(Wilcoxon p), mean difference [95 % CI]", summary["paired_by_family"], _paired_cell)]
    if "test_rmse_ci" in summary:
        sections += [("Mean test RMSE, negated (higher is better; each dataset in its target's units) [95 % "
                      "bootstrap CI]", summary["test_rmse_ci"], ci_cell),
                     ("Median test RMSE, negated", summary.get("median_test_rmse", {}), fmt_number),
                     (f"{summary['reference']} vs each system on the test RMSE: wins / ties / losses (Wilcoxon p)",
                      summary.get("paired_rmse", {}), _paired_cell)]
    sections += [("Actual seconds, spawn to model ready: median / p90 / max", summary["seconds"], _time_cell),
                 ("Overrun (actual - budget, s): median / max (share of runs over)", summary["overrun"], _overrun_cell),
                 ("Runs ok / timeout / crash", summary["status"], _status_cell)]
    for title, data, cell in sections:
        lines += [f"## {title}", "", *_table(data, budgets, cell)]
    lines += _cross_budget_lines(summary)
    lines += [f"![{name}]({file})" for name, file in plots.items()] + [""]
    lines += _per_dataset(frame, summary["systems"], metric)
    errors = frame[frame["status"] != "ok"] if "status" in frame.columns else frame.iloc[:0]
    if len(errors):
        lines += ["## Failed runs", ""] + [f"* {r.dataset} seed {r.seed} {r.system} @{r.budget} s: {r.status} — "
                                           f"{str(r.error)[-300:]}" for r in errors.itertuples()] + [""]
    path = output / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- plots (optional: matplotlib)


def _lines(summary: dict[str, Any], key: str, ylabel: str, output: Path, name: str) -> str:
    """One line per system against the budget (error bars from the bootstrap CI for the mean score)."""
    fig = figures.new_figure(6.5, 4)
    ax = fig.subplots()
    for system, values in summary[key].items():
        budgets = sorted(int(b) for b in values)
        if key == "test_score_ci":
            means = [values[str(b)]["mean"] for b in budgets]
            spread = [[m - values[str(b)]["low"] for b, m in zip(budgets, means, strict=True)],
                      [values[str(b)]["high"] - m for b, m in zip(budgets, means, strict=True)]]
            ax.errorbar(budgets, means, yerr=spread, marker="o", capsize=3, label=system, color=COLORS.get(system))
        else:
            ax.plot(budgets, [values[str(b)] for b in budgets], marker="o", label=system, color=COLORS.get(system))
    ax.set_xscale("log")
    ax.set_xticks(summary["budgets"], [str(b) for b in summary["budgets"]])
    ax.set_xlabel("wall-clock budget per run (s)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    figures.save_png(fig, output / f"{name}.png", DPI)
    return f"{name}.png"


def _overrun_plot(frame: pd.DataFrame, systems: Sequence[str], output: Path) -> str:
    """Box plots of the overrun (actual - budget) per system, one panel per budget."""
    budgets = sorted(frame["budget"].unique())
    fig = figures.new_figure(3 + 2.5 * len(budgets), 4)
    axes = fig.subplots(1, len(budgets), squeeze=False)
    for ax, budget in zip(axes[0], budgets, strict=True):
        part = frame[frame["budget"] == budget]
        names = [s for s in systems if (part["system"] == s).any()]
        ax.boxplot([part.loc[part["system"] == s, "overrun"].dropna().to_numpy() for s in names], tick_labels=names)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_title(f"budget {budget} s")
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    axes[0][0].set_ylabel("overrun (s)")
    fig.tight_layout()
    figures.save_png(fig, output / "overrun.png", DPI)
    return "overrun.png"


def make_plots(summary: dict[str, Any], frame: pd.DataFrame, output: Path) -> dict[str, str]:
    """``score_vs_budget.png``, ``rank_vs_budget.png``, ``normalized_error.png`` and ``overrun.png``
    (nothing without matplotlib or without complete datasets)."""
    if not summary["n_datasets"] or not figures.available():
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = summary.get("metric", "balanced_accuracy")
        return {"score": _lines(summary, "test_score_ci", f"mean test {metric}", output, "score_vs_budget"),
                "rank": _lines(summary, "average_rank", "average rank (1 = best)", output, "rank_vs_budget"),
                "normalized error": _lines(summary, "normalized_error", "normalised error (TabRepo)", output,
                                           "normalized_error"),
                "overrun": _overrun_plot(frame, summary["systems"], output)}


def finalize(output: Path, setup: dict[str, Any], keys: Iterable[str] | None = None,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Summarise ``output/results.jsonl``; write ``summary.json``, ``report.md`` and the plots."""
    frame = load_rows(output, keys)
    complete, grid = select(frame, setup, keys)
    summary = _summary(complete, grid, setup)
    summary.update(extra or {})
    plots = make_plots(summary, complete, output)
    summary["plots"] = list(plots.values())
    (output / "summary.json").write_text(dumps_json(summary, indent=1), encoding="utf-8")
    write_report(summary, complete, plots, output)
    return summary
