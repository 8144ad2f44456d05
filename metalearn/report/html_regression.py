"""HTML of the sections a regression report draws differently: metrics, predicted-vs-actual and residuals, SHAP,
LIME, the surrogate regression tree and the per-group error gaps (from the JSON data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from metalearn.report.fairness import MIN_GROUP_ROWS
from metalearn.report.html_explanations import lime_section, shap_section, surrogate_section
from metalearn.report.html_parts import PALETTE, esc, figure, fmt, img, kv_table, note, short, table, unavailable


def render_regression_metrics(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    ev = meta.get("evaluation", {})
    target = d["target"]
    rows = [("R²", d["r2"]), ("RMSE", d["rmse"]), ("MAE", d["mae"]), (f"MAPE ({d['mape_unit']})", d["mape"]),
            ("median absolute error", d["median_absolute_error"]), ("explained variance", d["explained_variance"]),
            ("max error", d["max_error"]), ("mean residual (actual − predicted)", d["mean_residual"]),
            ("RMSE of predicting the mean", d["baseline_rmse"]), ("rows evaluated", d["n"])]
    scores = d.get("scores") or {}
    return "".join([
        note(f"Evaluation: {ev.get('method')}" + (f" — {ev['detail']}" if ev.get("detail") else "")),
        kv_table(rows),
        note(f"Target: mean {fmt(target['mean'])}, std {fmt(target['std'])}, range {fmt(target['min'])} to "
             f"{fmt(target['max'])}. Not applicable to regression: {d['not_applicable']}."),
        "<h3>Scores as the search stores them</h3>", note(d["scores_note"]),
        table(["metric", "score"], list(scores.items())),
        *[note(n) for n in d.get("notes", [])],
    ])


def _residual_figure(d: Mapping[str, Any]) -> Any:
    points = d["points"]
    actual = np.array(points["actual"], dtype=float)
    predicted = np.array(points["predicted"], dtype=float)
    residual = np.array(points["residual"], dtype=float)
    fig = figure(13, 4.0)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.scatter(predicted, actual, s=10, alpha=0.6, color=PALETTE[0])
    lo, hi = np.nanmin([actual.min(), predicted.min()]), np.nanmax([actual.max(), predicted.max()])
    ax1.plot([lo, hi], [lo, hi], ls="--", color="#999", lw=1)
    ax1.set_xlabel("predicted")
    ax1.set_ylabel("actual")
    ax1.set_title("predicted vs actual")
    ax2.scatter(predicted, residual, s=10, alpha=0.6, color=PALETTE[1])
    ax2.axhline(0, ls="--", color="#999", lw=1)
    bins = d.get("bins") or []
    if bins:
        ax2.plot([b["predicted_mean"] for b in bins], [b["residual_mean"] for b in bins], color="#243447",
                 marker="o", ms=3, label="mean residual by decile")
        ax2.legend(fontsize=7)
    ax2.set_xlabel("predicted")
    ax2.set_ylabel("residual (actual − predicted)")
    ax2.set_title("residuals")
    hist = d["histogram"]
    edges = np.array(hist["edges"], dtype=float)
    ax3.bar(edges[:-1], hist["counts"], width=np.diff(edges), align="edge", color=PALETTE[2], edgecolor="white")
    ax3.axvline(0, ls="--", color="#999", lw=1)
    ax3.set_xlabel("residual")
    ax3.set_ylabel("rows")
    ax3.set_title("residual distribution")
    return fig


def render_residuals(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    s = d["summary"]
    rows = [("mean", s["mean"]), ("std", s["std"]), ("5th percentile", s["q05"]), ("median", s["median"]),
            ("95th percentile", s["q95"]), ("largest |residual|", s["max_abs"])]
    bins = [(f"{fmt(b['predicted_from'])} to {fmt(b['predicted_to'])}", b["count"], b["predicted_mean"],
             b["actual_mean"], b["residual_mean"], b["residual_q10"], b["residual_q90"]) for b in d["bins"]]
    shown = f"{d['n_points']} of {d['n']} rows drawn" if d.get("thinned") else f"all {d['n']} rows drawn"
    return (note(f"Residual = {d['residual']}; {shown}. {d['method']}.")
            + img(_residual_figure(d), "predicted vs actual and residuals") + kv_table(rows)
            + "<details><summary>By decile of the prediction</summary>"
            + table(["predicted", "rows", "mean predicted", "mean actual", "mean residual", "residual q10",
                     "residual q90"], bins) + "</details>")


def render_regression_shap(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    return shap_section(d, "prediction", "target units", _shap_row)


def _shap_row(local: Mapping[str, Any]) -> str:
    return (f"<p><b>row {local['row']}</b> ({esc(local['why'])}): true {fmt(local['true'])}, predicted "
            f"{fmt(local['predicted'])}; {fmt(local['base_value'])} (base) + Σ SHAP = {fmt(local['output'])}</p>")


def render_regression_lime(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    return lime_section(d, _lime_row)


def _lime_row(local: Mapping[str, Any]) -> tuple[str, str]:
    return (f"<p><b>row {local['row']}</b> ({esc(local['why'])}): true {fmt(local['true'])}, predicted "
            f"{fmt(local['predicted'])}; local linear model: intercept {fmt(local['intercept'])}, "
            f"prediction {fmt(local['local_prediction'])}, R² {local['r2']:.3f}</p>", "weight for the predicted value")


def render_regression_surrogate(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    missing = unavailable(d)
    if missing:
        return missing
    rows = [("fidelity R² on held-out rows", d["fidelity_holdout"]), ("fidelity R² on all rows", d["fidelity_all"]),
            ("R² against the true values", d["r2_vs_truth"]), ("depth", d["depth"]), ("leaves", d["n_leaves"]),
            ("rows", d["n_rows"])]
    agreement = (f"The tree explains {100 * d['fidelity_holdout']:.1f}% of the variance of the model's predictions "
                 "on held-out rows")
    return surrogate_section(d, rows, d["fidelity_holdout"] >= 0.8, agreement, None, "surrogate regression tree")


def _error_figure(attr: Mapping[str, Any]) -> str:
    groups = attr["groups"][:20]
    keys = ("mae", "rmse", "mean_residual")
    fig = figure(min(3 + 0.9 * len(groups), 14), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(keys)
    positions = np.arange(len(groups))
    for i, key in enumerate(keys):
        ax.bar(positions + i * width, [g[key] for g in groups], width, color=PALETTE[i], label=key.replace("_", " "))
    ax.axhline(0, color="#999", lw=1)
    ax.set_xticks(positions + width, [short(g["group"], 18) for g in groups], fontsize=8)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"errors per group: {attr['attribute']}")
    return img(fig, f"fairness {attr['attribute']}")


def render_regression_fairness(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    overall = d["overall"]
    out = [note(f"Per-group errors of the {d['predictions']} (overall MAE {fmt(overall['mae'])}, RMSE "
                f"{fmt(overall['rmse'])}); warning when the largest relative gap is above {d['threshold']:g}.")]
    for attr in d["attributes"]:
        out.append(f"<h3>{esc(attr['attribute'])}</h3>")
        if attr.get("warning"):
            out.append(f'<div class="warn"><b>Warning:</b> {esc(attr["message"])}</div>')
        largest = attr["largest_gap"]
        out.append(f"<p>Largest gap: {esc(largest['metric'].replace('_', ' '))} {fmt(largest['gap'])} "
                   f"({fmt(largest['relative'])} of the overall value; worst group {esc(largest['worst_group'])})"
                   "</p>")
        out.append(table(["gap", "absolute", "relative"],
                         [(k.replace("_", " "), v, attr["relative_gaps"].get(k)) for k, v in attr["gaps"].items()]))
        out.append(note(attr["method"] + (f"; {attr['binning']}" if attr.get("binning") else "")))
        if attr.get("small_groups"):
            out.append(note(f"Groups with fewer than {MIN_GROUP_ROWS} rows (gaps are noisy): "
                            f"{', '.join(map(str, attr['small_groups'][:10]))}"))
        groups = attr["groups"]
        keys = [k for k in groups[0] if k != "group"] if groups else []
        out.append(table(["group", *keys], [[g["group"], *[g.get(k) for k in keys]] for g in groups]))
        out.append(_error_figure(attr))
    return "".join(out)
