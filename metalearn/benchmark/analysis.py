"""Summary statistics of a benchmark: raw and normalised scores, ranks, trials-to-match, paired tests, targets.

Reads the rows the runner appended to ``results.jsonl`` (see ``benchmarks/README.md``); every
function here is pure apart from :func:`load_results` (reads the checkpoint) and :func:`machine_info`.
The metric is the run's (:attr:`BenchmarkConfig.metric`). :func:`normalized_error` is the one normalisation of
both benchmarks (TabRepo's: 0 = the best cell of a dataset, 1 = its median cell, clipped). For regression the
R^2 of a bad model can be hugely negative, so the normalised error floors it
(:data:`~metalearn.benchmark.config.R2_FLOOR`), while the raw tables keep it and give the median beside the mean.
"""

from __future__ import annotations

import contextlib
import os
import platform
import warnings
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr, wilcoxon

from metalearn.benchmark.checkpoint import now, read_jsonl
from metalearn.benchmark.config import (
    BOOTSTRAP,
    ENSEMBLE_BUDGET,
    MATCH_BUDGET,
    RESULT_COLUMNS,
    BenchmarkConfig,
    compared_strategies,
    fraction_name,
)
from metalearn.protocol import SINGLE_FIDELITY

#: one code path and the same CV folds: their CV scores compare
SAME_PATH = SINGLE_FIDELITY


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
    for column in ("seed", "budget", "trials", "incumbent_trial", "n_train", "n_test", "n_classes", "kb_datasets",
                   "ensemble_members"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("test_score", "test_rmse", "cv_score", "seconds", "kb_fraction", "time_budget",
                   "single_test_score", "single_test_rmse", "ensemble_oof_score"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("neighbors", "neighbor_families"):
        frame[column] = [list(v) if isinstance(v, list | tuple | np.ndarray) else [] for v in frame[column]]
    return frame


#: what ``summary["normalization"]`` says of the normalised error (the report explains it in words)
NORMALIZATION = ("TabRepo normalised error per dataset: error = 1 - score (seeds averaged); 0 = the best cell, "
                 "1 = the median cell, over every budget of the compared strategies; clipped to [0, 1]")
#: the seed-averaged columns of :func:`cell_scores` besides ``test_score`` and ``seconds``, when a row has them
CELL_COLUMNS = ("test_rmse", "single_test_score", "single_test_rmse")
EPS = 1e-12
COMMON_SCALE = ("test_score", "cv_score", "single_test_score")  # a mean difference over datasets means something


def normalized_error(table: pd.DataFrame, by: Sequence[str] = ("dataset_key",), score: str = "test_score",
                     reference: pd.Series | None = None) -> pd.Series:
    """TabRepo's normalised error of every row of ``table``: ``error = 1 - score`` (for R^2 the relative squared
    error), then per group of ``by`` ``(error - best) / (median - best)`` clipped to [0, 1], best and median
    taken over the group's ``reference`` rows (a boolean mask; default every row, and every row of a group
    without one): 0 = the best reference cell, 1 = the median one or worse. Where the median is the best, 0 at
    the best and 1 above it. Rows outside the reference are placed on its scale (and clipped too)."""
    error = 1.0 - pd.to_numeric(table[score], errors="coerce").astype(float)
    keys = [table[column] for column in by]
    basis = error if reference is None else error.where(reference.to_numpy(dtype=bool))
    best, median = basis.groupby(keys).transform("min"), basis.groupby(keys).transform("median")
    if reference is not None:  # a group without reference rows: its own rows set the scale
        best = best.fillna(error.groupby(keys).transform("min"))
        median = median.fillna(error.groupby(keys).transform("median"))
    span, gap = median - best, error - best
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = (gap / span.where(span > EPS)).clip(0.0, 1.0)
    out = scaled.where(span > EPS, (gap > EPS).astype(float))
    return out.where(error.notna())


def cell_scores(frame: pd.DataFrame, scale: Sequence[str] | None = None, floor: float | None = None) -> pd.DataFrame:
    """Per (dataset, strategy, budget): test score (and the :data:`CELL_COLUMNS` present) and seconds averaged
    over seeds, and the :func:`normalized_error` of the test score per dataset, best and median taken over all
    budgets of the ``scale`` strategies (default: every strategy); the others are placed on that scale. With
    ``floor``, each seed's score below it counts as ``floor`` in the normalised error only (before the average);
    ``test_score`` stays the raw mean."""
    if frame.empty:
        return pd.DataFrame(columns=["dataset_key", "strategy", "budget", "test_score", "seconds",
                                     "normalized_error"])
    basis_score = frame["test_score"] if floor is None else frame["test_score"].clip(lower=floor)
    columns = {"test_score": ("test_score", "mean"), "seconds": ("seconds", "mean"), "basis": ("basis", "mean")}
    columns |= {c: (c, "mean") for c in CELL_COLUMNS if c in frame.columns and frame[c].notna().any()}
    cells = (frame.assign(basis=basis_score).groupby(["dataset_key", "strategy", "budget"], as_index=False)
             .agg(**columns))
    reference = None if scale is None else cells["strategy"].isin(scale)
    cells["normalized_error"] = normalized_error(cells, score="basis", reference=reference)
    cells["budget"] = cells["budget"].astype(int)
    return cells.drop(columns=["basis"])


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
    """Smallest budget at which ``strategy``'s median normalised error is at most ``reference``'s at budget
    ``at`` (None if never, or without that reference)."""
    target = median.get(reference, {}).get(str(at))
    if target is None:
        return None
    for budget, value in sorted(median.get(strategy, {}).items(), key=lambda kv: int(kv[0])):
        if value <= target + EPS:
            return int(budget)
    return None


def bootstrap_bands(cells: pd.DataFrame, value: str = "normalized_error", n: int = BOOTSTRAP, seed: int = 0
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


def bootstrap_ci(values: Sequence[float], n: int = BOOTSTRAP, seed: int = 0, level: float = 0.95
                 ) -> dict[str, float | None]:
    """Mean of ``values`` and its percentile bootstrap confidence interval (resampling the values)."""
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not len(data):
        return {"mean": None, "low": None, "high": None}
    means = data[np.random.default_rng(seed).integers(0, len(data), size=(n, len(data)))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"mean": float(data.mean()), "low": float(low), "high": float(high)}


def raw_scores(cells: pd.DataFrame, column: str, strategies: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The raw ``column`` of :func:`cell_scores` per strategy and budget, over datasets: ``mean`` (nested
    ``{strategy: {budget: value}}``), ``median`` and ``ci`` (``{mean, low, high}``, 95 % bootstrap over datasets)."""
    if column not in cells.columns:
        return {"mean": {}, "median": {}, "ci": {}}
    groups = cells.groupby(["strategy", "budget"])[column]
    ci: dict[str, dict[str, Any]] = {}
    for (strategy, budget), values in groups:
        if strategy in strategies and values.notna().any():
            ci.setdefault(strategy, {})[str(int(budget))] = bootstrap_ci(values.tolist())
    ci = {s: dict(sorted(ci[s].items(), key=lambda kv: int(kv[0]))) for s in strategies if s in ci}
    return {"mean": _nested(groups.mean(), strategies), "median": _nested(groups.median(), strategies), "ci": ci}


def cv_cells(frame: pd.DataFrame, floor: float | None = None) -> pd.DataFrame:
    """Like :func:`cell_scores` but on the incumbent's cross-validated score (the search objective), over the
    strategies that share one code path and the same CV folds (warm, cold, random and warm@fraction; the
    scale is set by warm, cold and random)."""
    if "cv_score" not in frame.columns:
        frame = frame.iloc[:0].assign(cv_score=np.nan)
    same_path = frame[frame["strategy"].isin(SAME_PATH) | frame["strategy"].str.startswith("warm@")]
    same_path = same_path.dropna(subset=["cv_score"])
    if same_path.empty:
        return pd.DataFrame(columns=["dataset_key", "strategy", "budget", "test_score", "seconds",
                                     "normalized_error"])
    renamed = same_path.drop(columns=["test_score", *CELL_COLUMNS], errors="ignore")
    return cell_scores(renamed.rename(columns={"cv_score": "test_score"}), scale=SAME_PATH, floor=floor)


def paired_comparison(frame: pd.DataFrame, strategy: str, reference: str, value: str = "test_score"
                      ) -> dict[str, dict[str, Any]]:
    """Per budget, over datasets (seeds averaged): how often ``strategy`` beats, ties or loses to ``reference``
    on ``value``, the median difference, the two-sided Wilcoxon signed-rank p-value ``p`` (None if < 6 pairs) and,
    for the scores on one scale (:data:`COMMON_SCALE`; not an RMSE in each dataset's units), the mean difference
    with its 95 % bootstrap CI over datasets (``difference_ci``)."""
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
            p_value = float(f"{wilcoxon(nonzero).pvalue:.3g}")  # 3 significant digits: 1e-12 is not 0
        cell = {"wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()),
                "median_difference": float(np.median(diff)), "p": p_value}
        if value in COMMON_SCALE:
            ci = bootstrap_ci(diff.tolist())
            cell.update(mean_difference=ci["mean"], difference_ci=[ci["low"], ci["high"]])
        out[str(int(budget))] = cell
    return out


def gain_by_distance(frame: pd.DataFrame, records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per budget: how warm's CV gain over cold (seeds averaged per dataset) depends on the query's distance to its
    nearest knowledge-base neighbour (``neighbors.jsonl`` records of warm): Spearman's rho and p (None below 6
    datasets), and the mean gain of the far queries (the recommender put the global portfolio first) and the rest."""
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
    """The summary (``summary.json``) of the result rows ``frame``: raw test scores, the median and mean
    normalised error, average ranks, seconds, trials-to-match, the KB-size curves, paired comparisons, the
    targets, and how it was made."""
    strategies = config.all_strategies
    main = compared_strategies(strategies)
    floor = config.score_floor
    cells = cell_scores(frame, scale=main, floor=floor)
    errors = cells.groupby(["strategy", "budget"])["normalized_error"]
    median = _nested(errors.median(), main)
    ranked = rank_cells(cells, main)
    ranks = _nested(ranked.groupby(["strategy", "budget"])["rank"].mean(), main)
    seconds = _nested(cells.groupby(["strategy", "budget"])["seconds"].median(), strategies)
    at = MATCH_BUDGET if MATCH_BUDGET in config.budgets else config.max_budget
    match_cold = trials_to_match(median, "warm", "cold", at)
    match_random = trials_to_match(median, "warm", "random", at)
    cv_errors = cv_cells(frame, floor).groupby(["strategy", "budget"])["normalized_error"]
    cv_median = _nested(cv_errors.median(), main)
    curve, cv_curve = kb_fraction_curves(frame, config)
    summary: dict[str, Any] = {
        "suite": config.suite,
        "n_datasets": int(frame["dataset_key"].nunique()) if len(frame) else 0,
        "n_seeds": config.seeds,
        "strategies": list(strategies),
        "budgets": list(config.budgets),
        "task": config.task or "classification",
        "metric": config.metric,
        "extra_metrics": list(config.extra_metrics),
        "ensemble_size": config.ensemble_size,
        "normalization": NORMALIZATION,
        "normalization_floor": floor,
        "median_normalized_error": median,
        "mean_normalized_error": _nested(errors.mean(), main),
        "average_rank": ranks,
        "median_seconds": seconds,
        "match_budget": at,
        "warm_trials_to_match_cold_at_50": match_cold,
        "warm_trials_to_match_random_at_50": match_random,
        "kb_fraction_curve": curve,
        "kb_fraction_cv_curve": cv_curve,
        "kb_fraction_seeds": min(config.seeds, config.kb_fraction_seeds or config.seeds),
        "median_normalized_cv_error": cv_median,
        "mean_normalized_cv_error": _nested(cv_errors.mean(), main),
        "cv_warm_trials_to_match_cold_at_50": trials_to_match(cv_median, "warm", "cold", at),
        "cv_warm_trials_to_match_random_at_50": trials_to_match(cv_median, "warm", "random", at),
        "paired": _paired(frame, config),
    }
    summary.update(_raw(cells, config))
    if at != MATCH_BUDGET:
        summary[f"warm_trials_to_match_cold_at_{at}"] = match_cold
        summary[f"warm_trials_to_match_random_at_{at}"] = match_random
    summary["targets"] = _targets(summary, config)
    summary.update({
        "datasets": sorted(frame["dataset"].unique().tolist()) if len(frame) else [],
        "families": int(frame["family"].nunique()) if len(frame) else 0,
        "n_rows": int(len(frame)),
        "command": command or config.command(),
        "output": config.output_dir,
        "machine": machine_info(config.jobs),
        "hours": round(float(hours), 6),
        "protocol": config.protocol() | {"seeds": config.seeds, "kb_fractions": list(config.kb_fractions)},
        "created": now(),
    })
    if extra:
        summary.update(extra)
    return summary


def _paired(frame: pd.DataFrame, config: BenchmarkConfig) -> dict[str, dict[str, dict[str, Any]]]:
    """warm against every other compared strategy on the test score (and RMSE for regression) and, for the
    strategies on warm's code path (cold, random), on the CV score."""
    if "warm" not in config.strategies:
        return {}
    values = ("test_score", *(f"test_{m}" for m in config.extra_metrics))
    return {f"warm_vs_{ref}": {value: paired_comparison(frame, "warm", ref, value)
                               for value in values + (("cv_score",) if ref in SAME_PATH else ())}
            for ref in config.compared_strategies if ref != "warm"}


def _raw(cells: pd.DataFrame, config: BenchmarkConfig) -> dict[str, Any]:
    """Raw test scores over datasets (seeds averaged): mean (``mean_test_score``), median and 95 % bootstrap CI
    of the mean per strategy and budget; likewise ``test_<metric>`` of the extra metrics (RMSE, negated) and,
    in a run with ensembles, ``single_test_score``: the best single pipeline's (the incumbent's)."""
    out: dict[str, Any] = {}
    columns = ["test_score", *(f"test_{m}" for m in config.extra_metrics)]
    if config.ensemble_size > 0:
        columns.append("single_test_score")
    for column in columns:
        stats = raw_scores(cells, column, config.all_strategies)
        out.update({f"mean_{column}": stats["mean"], f"median_{column}": stats["median"], f"{column}_ci": stats["ci"]})
    return out


def kb_fraction_curves(frame: pd.DataFrame, config: BenchmarkConfig
                       ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``{fraction: {budget: mean normalised error}}`` of warm@fraction on test and on CV, over the seeds the
    ablations ran on (``1`` is warm on those seeds), on the scale set by the compared strategies (the mean: with
    the median cell as the anchor, the median over datasets sits at 1 for most early budgets)."""
    if "warm" not in config.strategies or frame.empty:
        return {}, {}
    on = frame if config.kb_fraction_seeds is None else frame[frame["seed"].astype(int) < config.kb_fraction_seeds]
    curves = []
    floor = config.score_floor
    for cells in (cell_scores(on, scale=config.compared_strategies, floor=floor), cv_cells(on, floor)):
        mean = _nested(cells.groupby(["strategy", "budget"])["normalized_error"].mean(), config.all_strategies)
        curves.append({f"{f:g}": mean[fraction_name(f)] for f in sorted(set(config.kb_fractions) | {1.0})
                       if mean.get(fraction_name(f))})
    return curves[0], curves[1]


def _targets(summary: dict[str, Any], config: BenchmarkConfig) -> dict[str, dict[str, Any]]:
    """The targets of the benchmark (issue #22's included): description, met (None when they cannot be judged,
    e.g. not measured by these rows) and value."""
    ranks = summary["average_rank"]
    at = summary["match_budget"]
    match = summary["warm_trials_to_match_cold_at_50"]
    targets: dict[str, dict[str, Any]] = {}
    targets["warm_matches_cold_within_10"] = {
        "description": f"warm_trials_to_match_cold_at_{at} <= 10 (median normalised error)",
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
    return targets | _ensemble_targets(summary, config)


def _ensemble_targets(summary: dict[str, Any], config: BenchmarkConfig) -> dict[str, dict[str, Any]]:
    """Issue #22's: warm's ensemble after 10 trials beats its best single pipeline after 50, and warm after 50
    trials is no worse than after 10 (mean test score; 50 is the match budget, 10 :data:`ENSEMBLE_BUDGET`)."""
    low, top, metric = str(ENSEMBLE_BUDGET), str(summary["match_budget"]), summary["metric"]
    mean = summary["mean_test_score"].get("warm", {})
    ensemble, single = mean.get(low), summary.get("mean_single_test_score", {}).get("warm", {}).get(top)
    missing = None
    if config.ensemble_size <= 0:
        missing = "not measured: this run built no ensembles (ensemble size 0)"
    elif ensemble is None or single is None:
        missing = f"not measured: no warm ensemble at {low} trials or single-pipeline test score at {top}"
    return {
        "warm_ensemble_at_10_beats_single_at_50": {
            "description": f"warm's ensemble after {low} trials beats its best single pipeline after {top} on mean "
                           f"test {metric}",
            "met": None if missing else bool(ensemble > single),
            "value": missing or {f"ensemble_at_{low}": ensemble, f"single_at_{top}": single}},
        "warm_at_50_not_below_warm_at_10": {
            "description": f"warm after {top} trials >= warm after {low} on mean test {metric}",
            "met": None if mean.get(low) is None or mean.get(top) is None else bool(mean[top] >= mean[low]),
            "value": {low: mean.get(low), top: mean.get(top)}},
    }


def machine_info(jobs: int = 1) -> dict[str, Any]:
    """Platform, CPUs, Python and the versions of the packages that shape the results."""
    packages = {}
    for name in ("metalearn", "smac", "scikit-learn", "pandas", "numpy", "flaml", "lightgbm", "pymfe"):
        with contextlib.suppress(PackageNotFoundError):
            packages[name] = version(name)
    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "jobs": jobs, "packages": packages}
