"""HTML of the sections a regression report draws differently: metrics, predicted-vs-actual and residuals, SHAP,
LIME, the surrogate regression tree and the per-group error gaps (from the JSON data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from metalearn.report.html_explanations import beeswarm, contributions_figure, tree_figure
from metalearn.report.html_parts import PALETTE, esc, figure, fmt, img, note, short, table, unavailable


def _kv(rows: list[tuple[str, Any]]) -> str:
    return '<table class="kv">' + "".join(f"<tr><td>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in rows) + "</table>"


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
        _kv(rows),
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
            + img(_residual_figure(d), "predicted vs actual and residuals") + _kv(rows)
            + "<details><summary>By decile of the prediction</summary>"
            + table(["predicted", "rows", "mean predicted", "mean actual", "mean residual", "residual q10",
                     "residual q90"], bins) + "</details>")


def render_regression_shap(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    missing = unavailable(d)
    if missing:
        return missing
    out = [note(f"{d['explainer']}; {d['masker']}; output {d['output']}; {d['n_rows']} rows explained, "
                f"{d['permutations']} permutation(s) each. Additivity check: max |base + Σ SHAP − prediction| = "
                f"{d['additivity_max_error']:.2e}."), *[note(n) for n in d.get("notes", [])]]
    glob = d["global"][:15]
    fig = figure(7.5, 1.2 + 0.28 * len(glob))
    ax = fig.add_subplot()
    ax.barh([short(g["feature"], 30) for g in glob][::-1], [g["mean_abs"] for g in glob][::-1], color="#d62728")
    ax.set_xlabel("mean |SHAP value| (target units)")
    ax.tick_params(axis="y", labelsize=8)
    out += ["<h3>Global importance</h3>", img(fig, "SHAP global summary")]
    values = np.asarray(d["values"], dtype=float) if d.get("values") else None
    if values is not None and values.ndim == 2 and d.get("feature_values"):
        out.append(beeswarm(d, values))
    out.append("<h3>Individual predictions</h3>")
    for local in d["local"]:
        out.append(f"<p><b>row {local['row']}</b> ({esc(local['why'])}): true {fmt(local['true'])}, predicted "
                   f"{fmt(local['predicted'])}; {fmt(local['base_value'])} (base) + Σ SHAP = "
                   f"{fmt(local['output'])}</p>")
        out.append(contributions_figure([f"{c['feature']} = {short(c['value'], 14)}" for c in local["contributions"]],
                                        [c["shap"] for c in local["contributions"]], "SHAP value",
                                        f"row {local['row']}"))
    return "".join(out)


def render_regression_lime(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    missing = unavailable(d)
    if missing:
        return missing
    out = [note(f"Used because: {d['reason']}. {d['method']}; {d['n_samples']} perturbed samples per row.")]
    for local in d["local"]:
        out.append(f"<p><b>row {local['row']}</b> ({esc(local['why'])}): true {fmt(local['true'])}, predicted "
                   f"{fmt(local['predicted'])}; local linear model: intercept {fmt(local['intercept'])}, "
                   f"prediction {fmt(local['local_prediction'])}, R² {local['r2']:.3f}</p>")
        out.append(contributions_figure([w["condition"] for w in local["weights"]],
                                        [w["weight"] for w in local["weights"]], "weight for the predicted value",
                                        f"LIME row {local['row']}"))
    return "".join(out)


def render_regression_surrogate(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    missing = unavailable(d)
    if missing:
        return missing
    rows = [("fidelity R² on held-out rows", d["fidelity_holdout"]), ("fidelity R² on all rows", d["fidelity_all"]),
            ("R² against the true values", d["r2_vs_truth"]), ("depth", d["depth"]), ("leaves", d["n_leaves"]),
            ("rows", d["n_rows"])]
    quality = "ok" if d["fidelity_holdout"] >= 0.8 else "bad"
    return (note(d["method"])
            + f'<p class="{quality}">The tree explains {100 * d["fidelity_holdout"]:.1f}% of the variance of the '
              "model's predictions on held-out rows" + ("" if quality == "ok" else
                                                         ": read its rules as a rough sketch only") + ".</p>"
            + _kv(rows) + img(tree_figure(d["tree"], None), "surrogate regression tree")
            + f"<details><summary>Rules (text)</summary><pre>{esc(d['rules'])}</pre></details>")


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
            out.append(note(f"Groups with fewer than 30 rows (gaps are noisy): "
                            f"{', '.join(map(str, attr['small_groups'][:10]))}"))
        groups = attr["groups"]
        keys = [k for k in groups[0] if k != "group"] if groups else []
        out.append(table(["group", *keys], [[g["group"], *[g.get(k) for k in keys]] for g in groups]))
        out.append(_error_figure(attr))
    return "".join(out)
