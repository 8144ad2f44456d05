"""HTML rendering of a model report: one self-contained page drawn from the report's JSON data.

Plots are drawn with matplotlib's object-oriented API (``Figure`` + Agg canvas, no pyplot state, so it
is safe inside a server) and embedded as base64 PNG ``data:`` URIs; styles are inline, so the page
needs no external asset. Every report section is one ``<section id="...">``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

DPI = 90
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
ORIGIN_COLOURS = {"warm_start": "#d62728", "smac_initial": "#ff7f0e", "smac": "#1f77b4", "random": "#7f7f7f"}
TITLES = {
    "metrics": "Hold-out metrics",
    "confusion-matrix": "Confusion matrix",
    "calibration": "Calibration",
    "permutation-importance": "Permutation importance",
    "partial-dependence": "Partial dependence",
    "shap": "SHAP values",
    "lime": "LIME: individual predictions",
    "surrogate": "Global surrogate tree",
    "fairness": "Fairness",
    "search": "The search",
}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#243447;color:#fff;padding:18px 32px}header h1{margin:0 0 6px;font-size:1.6em}
header p{margin:2px 0;color:#d8e0ea}nav{background:#fff;border-bottom:1px solid #ddd;padding:8px 32px;
position:sticky;top:0}nav a{margin-right:14px;color:#243447;text-decoration:none;font-size:.92em}
main{padding:8px 32px 40px;max-width:1200px}section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;
padding:14px 22px;margin:18px 0}h2{margin-top:4px;color:#243447}h3{color:#35506b;margin-bottom:6px}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}td,th{border:1px solid #ddd;padding:4px 9px;
text-align:right}th{background:#f0f3f6}td.l,th.l{text-align:left}img{max-width:100%;height:auto;display:block;
margin:8px 0}.warn{background:#fff4e5;border:1px solid #f0a040;border-left:6px solid #e67e00;padding:8px 14px;
border-radius:4px;margin:10px 0}.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b}.note{color:#555;
font-size:.9em}pre{background:#f5f5f5;padding:10px;overflow-x:auto;font-size:.85em}details{margin:6px 0}
.kv td:first-child{text-align:left;color:#444}
"""


# ---------------------------------------------------------------------------------------------- helpers


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.2e}"
    return esc(value)


def figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def img(fig: Any, alt: str) -> str:
    """The figure as an ``<img>`` with a base64 PNG data URI (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned labels."""
    head = "".join(f'<th class="l">{esc(h)}</th>' if i < left else f"<th>{esc(h)}</th>" for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = "".join(f'<td class="l">{c if isinstance(c, _Raw) else esc(c)}</td>' if i < left
                        else f"<td>{c if isinstance(c, _Raw) else fmt(c)}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Raw(str):
    """Trusted HTML inside a table cell."""


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def short(text: Any, limit: int = 28) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(sid: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(TITLES.get(sid, sid))}</h2>{body}</section>'


def unavailable(data: Mapping[str, Any]) -> str | None:
    if "error" in data:
        return f'<div class="warn">Not computed: {esc(data["error"])}</div>'
    if "skipped" in data:
        return note(f"Skipped: {data['skipped']}")
    return None


# ---------------------------------------------------------------------------------------------- sections


def render_metrics(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    ev = meta.get("evaluation", {})
    rows = [("accuracy", d["accuracy"]), ("balanced accuracy", d["balanced_accuracy"]),
            ("precision (macro)", d["precision_macro"]), ("recall (macro)", d["recall_macro"]),
            ("F1 (macro)", d["f1_macro"]), (f"ROC-AUC ({d['roc_auc_method']})", d["roc_auc"]),
            ("log loss", d["log_loss"]), ("rows evaluated", d["n"])]
    out = [note(f"Evaluation: {ev.get('method')}" + (f" — {ev['detail']}" if ev.get("detail") else "")
                + (f"; positive class {d['positive_class']!r}" if d.get("positive_class") is not None else "")),
           '<table class="kv">' + "".join(f"<tr><td>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in rows)
           + "</table>",
           "<h3>Per class</h3>",
           table(["class", "precision", "recall", "F1", "support"],
                 [(c["class"], c["precision"], c["recall"], c["f1"], c["support"]) for c in d["per_class"]])]
    if d.get("roc_curves"):
        fig = figure(5.2, 4.2)
        ax = fig.add_subplot()
        for i, curve in enumerate(d["roc_curves"][:10]):
            ax.plot(curve["fpr"], curve["tpr"], color=PALETTE[i % 10], label=short(curve["class"]))
        ax.plot([0, 1], [0, 1], ls="--", color="#999", lw=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC curve" + (" (one-vs-rest)" if len(d["roc_curves"]) > 1 else ""))
        ax.legend(fontsize=8, loc="lower right")
        out.append(img(fig, "ROC curves"))
    out += [note(n) for n in d.get("notes", [])]
    return "".join(out)


def render_confusion(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    labels, matrix = d["labels"], np.asarray(d["matrix"])
    normalized = np.asarray(d["normalized"], dtype=float)
    n = len(labels)
    size = min(11.0, 2.5 + 0.45 * n)
    fig = figure(size, size * 0.85)
    ax = fig.add_subplot()
    image = ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    if n <= 25:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center", fontsize=9 if n <= 10 else 7,
                        color="white" if normalized[i, j] > 0.55 else "black")
    ticks = [short(label, 14) for label in labels]
    ax.set_xticks(range(n), ticks, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center", fontsize=8)
    ax.set_yticks(range(n), ticks, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    rows = [[labels[i], *matrix[i].tolist()] for i in range(n)]
    return (img(fig, "confusion matrix") + note("Rows: true class; columns: predicted class; colour: share of the row.")
            + (table(["true \\ predicted", *map(str, labels)], rows) if n <= 25 else ""))


def render_calibration(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    fig = figure(9.5, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    for i, curve in enumerate(d["curves"][:10]):
        ax1.plot(curve["prob_pred"], curve["prob_true"], marker="o", ms=3, color=PALETTE[i % 10],
                 label=f"{short(curve['name'], 16)} (ECE {curve['ece']:.3f})")
    ax1.plot([0, 1], [0, 1], ls="--", color="#999", lw=1)
    ax1.set_xlabel("predicted probability")
    ax1.set_ylabel("observed frequency")
    ax1.set_title("per class" if len(d["curves"]) > 1 else "positive class")
    ax1.legend(fontsize=7, loc="upper left")
    top = d["top_label"]
    ax2.plot(top["prob_pred"], top["prob_true"], marker="o", ms=3, color="#243447")
    ax2.plot([0, 1], [0, 1], ls="--", color="#999", lw=1)
    ax2.set_xlabel("confidence (max probability)")
    ax2.set_ylabel("accuracy")
    ax2.set_title(f"top label (ECE {top['ece']:.3f})")
    rows = [(c["name"], c["ece"], sum(c["counts"])) for c in d["curves"]] + [("top label", top["ece"],
                                                                              sum(top["counts"]))]
    extra = f"<p>Brier score: {fmt(d['brier'])}</p>" if d.get("brier") is not None else ""
    return note(d["method"]) + img(fig, "calibration curves") + extra + table(["curve", "ECE", "rows"], rows)


def render_permutation(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    features = d["features"][:20]
    fig = figure(7.5, 1.2 + 0.28 * len(features))
    ax = fig.add_subplot()
    names = [short(f["feature"], 30) for f in features][::-1]
    ax.barh(names, [f["mean"] for f in features][::-1], xerr=[f["std"] for f in features][::-1], color="#1f77b4",
            ecolor="#555", capsize=2)
    ax.axvline(0, color="#999", lw=1)
    ax.set_xlabel(f"decrease of {d['scoring']} when the column is shuffled")
    ax.tick_params(axis="y", labelsize=8)
    return (note(f"{d['n_repeats']} shuffles of each original column through the whole pipeline, on {d['n_rows']} "
                 f"rows from {d['rows']}.") + img(fig, "permutation importance")
            + table(["feature", "mean", "std"], [(f["feature"], f["mean"], f["std"]) for f in features]))


def render_pdp(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    features = d["features"]
    if not features:
        return note("No numeric feature to show (partial dependence is drawn for numeric columns only).")
    n = len(features)
    fig = figure(min(4.0 * n, 16), 3.6)
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True))
    for ax, f in zip(axes, features, strict=False):
        for i, (cls, values) in enumerate(list(f["average"].items())[:10]):
            ax.plot(f["grid"], values, color=PALETTE[i % 10], label=short(cls, 14))
        deciles = [v for v in f.get("deciles", []) if v is not None]
        if deciles:
            lo, hi = ax.get_ylim()
            ax.vlines(deciles, lo, lo + 0.05 * (hi - lo), color="#333", lw=1)
        ax.set_xlabel(short(f["feature"], 24))
    axes[0].set_ylabel("average predicted probability")
    axes[0].legend(fontsize=7)
    return note(f"{d['method']}; {d['n_rows']} rows; ticks at the bottom are deciles of the feature.") + img(
        fig, "partial dependence")


def render_shap(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    missing = unavailable(d)
    if missing:
        return missing
    out = [note(f"{d['explainer']}; {d['masker']}; output {d['output']}; {d['n_rows']} rows explained, "
                f"{d['permutations']} permutation(s) each. Additivity check: max |base + Σ SHAP − P(x)| = "
                f"{d['additivity_max_error']:.2e}.")]
    out += [note(n) for n in d.get("notes", [])]
    glob = d["global"][:15]
    fig = figure(7.5, 1.2 + 0.28 * len(glob))
    ax = fig.add_subplot()
    names = [short(g["feature"], 30) for g in glob][::-1]
    if glob and glob[0].get("per_class") is not None:
        left = np.zeros(len(glob))
        for i, cls in enumerate(d["outputs"][:10]):
            widths = np.array([g["per_class"][i] for g in glob][::-1], dtype=float)
            ax.barh(names, widths, left=left, color=PALETTE[i % 10], label=short(cls, 14))
            left += widths
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.barh(names, [g["mean_abs"] for g in glob][::-1], color="#d62728")
    ax.set_xlabel("mean |SHAP value| (probability)")
    ax.tick_params(axis="y", labelsize=8)
    out += ["<h3>Global importance</h3>", img(fig, "SHAP global summary")]
    values = np.asarray(d["values"], dtype=float) if d.get("values") else None
    if values is not None and values.ndim == 2 and d.get("feature_values"):
        out.append(_beeswarm(d, values))
    out.append("<h3>Individual predictions</h3>")
    for local in d["local"]:
        out.append(f"<p><b>row {local['row']}</b> ({esc(local['why'])}): true {esc(local['true'])}, predicted "
                   f"{esc(local['predicted'])} with p = {local['probability']:.3f}; explained output "
                   f"P({esc(local['output_class'])}) = {local['base_value']:.3f} (base) + Σ SHAP = "
                   f"{local['output']:.3f}</p>")
        out.append(_contributions([f"{c['feature']} = {short(c['value'], 14)}" for c in local["contributions"]],
                                  [c["shap"] for c in local["contributions"]], "SHAP value", f"row {local['row']}"))
    return "".join(out)


def _beeswarm(d: Mapping[str, Any], values: np.ndarray) -> str:
    features = list(d["feature_values"])
    index = {f: j for j, f in enumerate(d["features"])}
    fig = figure(7.5, 1.2 + 0.32 * len(features))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    for pos, feature in enumerate(features[::-1]):
        shap_values = values[:, index[feature]]
        raw = d["feature_values"][feature]
        numbers = np.array([v if isinstance(v, int | float) else np.nan for v in raw], dtype=float)
        if np.isfinite(numbers).sum() > 1 and np.nanmax(numbers) > np.nanmin(numbers):
            lo, hi = np.nanpercentile(numbers, [5, 95])
            colour = np.clip((numbers - lo) / max(hi - lo, 1e-12), 0, 1)
            colours = [(0.5, 0.5, 0.5, 1) if not np.isfinite(c) else (c, 0.2, 1 - c, 1) for c in colour]
        else:
            colours = [(0.5, 0.5, 0.5, 1)] * len(shap_values)
        ax.scatter(shap_values, pos + rng.uniform(-0.25, 0.25, len(shap_values)), s=8, c=colours, alpha=0.8)
    ax.set_yticks(range(len(features)), [short(f, 30) for f in features[::-1]], fontsize=8)
    ax.axvline(0, color="#999", lw=1)
    ax.set_xlabel(f"SHAP value ({d['output']})")
    ax.set_title("colour: feature value from low (blue) to high (red); grey: categorical or missing", fontsize=8)
    return "<h3>Distribution over the explained rows</h3>" + img(fig, "SHAP beeswarm")


def _contributions(labels: list[str], values: list[float], xlabel: str, alt: str) -> str:
    fig = figure(7.5, 0.9 + 0.26 * len(values))
    ax = fig.add_subplot()
    ax.barh([short(label, 40) for label in labels][::-1], values[::-1],
            color=["#d62728" if v > 0 else "#1f77b4" for v in values[::-1]])
    ax.axvline(0, color="#999", lw=1)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=8)
    return img(fig, alt)


def render_lime(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    missing = unavailable(d)
    if missing:
        return missing
    out = [note(f"Used because: {d['reason']}. {d['method']}; {d['n_samples']} perturbed samples per row.")]
    for local in d["local"]:
        out.append(f"<p><b>row {local['row']}</b> ({esc(local['why'])}): true {esc(local['true'])}, predicted "
                   f"{esc(local['predicted'])} with p = {local['probability']:.3f}; local linear model: intercept "
                   f"{local['intercept']:.3f}, prediction {local['local_prediction']:.3f}, R² {local['r2']:.3f}</p>")
        out.append(_contributions([w["condition"] for w in local["weights"]], [w["weight"] for w in local["weights"]],
                                  f"weight for P({local['explained_class']})", f"LIME row {local['row']}"))
    return "".join(out)


def render_surrogate(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    missing = unavailable(d)
    if missing:
        return missing
    rows = [("fidelity on held-out rows", d["fidelity_holdout"]), ("fidelity on all rows", d["fidelity_all"]),
            ("accuracy against the true labels", d["accuracy_vs_truth"]), ("depth", d["depth"]),
            ("leaves", d["n_leaves"]), ("rows", d["n_rows"])]
    quality = "ok" if d["fidelity_holdout"] >= 0.9 else "bad"
    return (note(d["method"])
            + f'<p class="{quality}">The tree agrees with the model on {100 * d["fidelity_holdout"]:.1f}% of held-out '
              "rows" + ("" if quality == "ok" else ": read its rules as a rough sketch only") + ".</p>"
            + '<table class="kv">' + "".join(f"<tr><td>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in rows)
            + "</table>" + img(_tree_figure(d["tree"], d["classes"]), "surrogate decision tree")
            + f"<details><summary>Rules (text)</summary><pre>{esc(d['rules'])}</pre></details>")


def _tree_figure(nodes: list[dict[str, Any]], classes: list[Any]) -> Any:
    by_id = {n["id"]: n for n in nodes}
    x: dict[int, float] = {}
    counter = [0]

    def place(i: int) -> float:
        node = by_id[i]
        if node["leaf"]:
            x[i] = counter[0]
            counter[0] += 1
        else:
            x[i] = (place(node["left"]) + place(node["right"])) / 2
        return x[i]

    place(0)
    leaves = max(counter[0], 1)
    depth = max(n["depth"] for n in nodes)
    fig = figure(min(2.0 + 1.35 * leaves, 22), 1.2 + 1.25 * (depth + 1))
    ax = fig.add_subplot()
    ax.set_xlim(-0.6, leaves - 0.4)
    ax.set_ylim(-depth - 0.6, 0.6)
    ax.axis("off")
    colour = {c: PALETTE[i % 10] for i, c in enumerate(classes)}
    for node in nodes:
        if node["leaf"]:
            continue
        for child, label in ((node["left"], "yes"), (node["right"], "no")):
            ax.plot([x[node["id"]], x[child]], [-node["depth"], -by_id[child]["depth"]], color="#999", lw=1, zorder=1)
            ax.text((x[node["id"]] + x[child]) / 2, -(node["depth"] + by_id[child]["depth"]) / 2, label,
                    fontsize=7, color="#555", ha="center", va="center", zorder=3,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"})
    for node in nodes:
        share = max(node["fractions"]) if node["fractions"] else 0
        if node["leaf"]:
            text = f"{short(node['class'], 14)}\n{share:.0%} · n={node['samples']}"
            face = colour.get(node["class"], "#ccc")
            box = {"boxstyle": "round,pad=0.3", "fc": face, "ec": "#333", "alpha": 0.35 + 0.5 * share}
        else:
            feature = short(node["feature"], 22)
            text = f"{feature}\n≤ {node['threshold']:.4g}   n={node['samples']}"
            box = {"boxstyle": "round,pad=0.3", "fc": "#f3f6fa", "ec": "#243447"}
        ax.text(x[node["id"]], -node["depth"], text, ha="center", va="center", fontsize=7, bbox=box, zorder=2)
    return fig


def render_fairness(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    out = [note(f"Differences computed on the {d['predictions']}; warning above {d['threshold']:g}. "
                "Demographic parity difference: largest gap in selection rate between groups; equalized odds "
                "difference: largest gap in true- or false-positive rate.")]
    for attr in d["attributes"]:
        out.append(f"<h3>{esc(attr['attribute'])}</h3>")
        if attr.get("warning"):
            out.append(f'<div class="warn"><b>Warning:</b> {esc(attr["message"])}</div>')
        summary = [("demographic parity difference", attr["demographic_parity_difference"]),
                   ("equalized odds difference", attr["equalized_odds_difference"])]
        out.append('<table class="kv">' + "".join(
            f'<tr><td>{esc(k)}</td><td class="{"bad" if v is not None and v > d["threshold"] else "ok"}">{fmt(v)}'
            "</td></tr>" for k, v in summary) + "</table>")
        out.append(note(attr["method"] + (f"; {attr['binning']}" if attr.get("binning") else "")))
        if attr.get("small_groups"):
            out.append(note(f"Groups with fewer than 30 rows (differences are noisy): "
                            f"{', '.join(map(str, attr['small_groups'][:10]))}"))
        groups = attr["groups"]
        keys = [k for k in groups[0] if k != "group"] if groups else []
        out.append(table(["group", *keys], [[g["group"], *[g.get(k) for k in keys]] for g in groups]))
        if len(attr["per_class"]) > 1:
            out.append(table(["class", "demographic parity difference", "equalized odds difference"],
                             [(c["class"], c["demographic_parity_difference"], c["equalized_odds_difference"])
                              for c in attr["per_class"]]))
            classes = [c["class"] for c in attr["per_class"]]
            rates = {(r["group"], c["class"]): r for c in attr["per_class"] for r in c.get("by_group", [])}
            for key, label in (("selection_rate", "Selection rate"), ("true_positive_rate", "True-positive rate")):
                out.append(f"<p>{label} (one-vs-rest) by group and class</p>" + table(
                    ["group", *map(str, classes)],
                    [[g["group"], *[rates.get((g["group"], c), {}).get(key) for c in classes]] for g in groups]))
        out.append(_fairness_figure(attr))
    return "".join(out)


def _fairness_figure(attr: Mapping[str, Any]) -> str:
    groups = attr["groups"][:20]
    names = [short(g["group"], 18) for g in groups]
    keys = [k for k in ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate")
            if groups and k in groups[0]]
    series: list[tuple[str, list[float]]] = [(k.replace("_", " "), [g.get(k) or 0 for g in groups]) for k in keys]
    if len(attr["per_class"]) > 1:  # multiclass: selection rate of every class, one-vs-rest
        for c in attr["per_class"][:9]:
            rate = {r["group"]: r["selection_rate"] for r in c.get("by_group", [])}
            series.append((f"selection rate {short(c['class'], 12)}", [rate.get(g["group"]) or 0 for g in groups]))
    fig = figure(min(3 + 0.6 * len(groups) * max(len(series), 1) / 2, 14), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(len(series), 1)
    positions = np.arange(len(groups))
    for i, (label, values) in enumerate(series):
        ax.bar(positions + i * width, values, width, color=PALETTE[i % 10], label=label)
    ax.set_xticks(positions + width * (len(series) - 1) / 2, names, fontsize=8)
    ax.set_ylim(0, 1.3)
    ax.legend(fontsize=7, ncol=min(len(series), 4), loc="upper center")
    ax.set_title(f"per group: {attr['attribute']}")
    return img(fig, f"fairness {attr['attribute']}")


def render_search(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    if not d.get("available", True):
        return note(d.get("note", "no search information"))
    missing = unavailable(d)
    if missing:
        return missing
    trials = d["trials"]
    out = [f"<p>Search {esc(d.get('search_id'))} ({esc(d.get('strategy'))}, {esc(d.get('status'))}), "
           f"{d['n_trials']} trials, metric {esc(d.get('metric'))}; source: {esc(d['source'])}.</p>"]
    best = d.get("best")
    if best:
        origin = "from the warm start" if d.get("best_from_warm_start") else f"origin {best['origin']}"
        out.append(f"<p>Best: trial {best['trial']} ({esc(best.get('algorithm'))}), score {fmt(best['score'])}, "
                   f"{esc(origin)}.</p>")
    counts = ", ".join(f"{esc(k)}: {v}" for k, v in d.get("origins", {}).items())
    out.append(f"<p>Trials by origin: {counts or '—'}. Warm-start trials: "
               f"{', '.join(map(str, d.get('warm_start_trials', []))) or 'none'}"
               + (f" (best of them {fmt(d['best_warm_start_score'])})" if d.get("best_warm_start_score") is not None
                  else "") + ".</p>")
    if trials:
        out.append(img(_trajectory_figure(d), "search trajectory"))
    neighbors = d.get("neighbors") or []
    out.append(f"<h3>Neighbour datasets of the warm start</h3>{note(str(d.get('neighbors_source', '')))}")
    if neighbors:
        out.append(table(["dataset", "id", "family", "distance"],
                         [(n["dataset"], n["dataset_id"], n.get("family"), n["distance"]) for n in neighbors], left=1))
        fig = figure(6.5, 0.9 + 0.3 * len(neighbors))
        ax = fig.add_subplot()
        ax.barh([short(n["dataset"], 30) for n in neighbors][::-1], [n["distance"] for n in neighbors][::-1],
                color="#9467bd")
        ax.set_xlabel("meta-feature distance (smaller is closer)")
        ax.tick_params(axis="y", labelsize=8)
        out.append(img(fig, "neighbour distances"))
    rows = [(t["trial"], t["origin"], t.get("algorithm"), t["status"], t.get("score"), t.get("seconds"),
             t.get("elapsed")) for t in trials[:200]]
    out.append("<details><summary>All trials</summary>"
               + table(["trial", "origin", "algorithm", "status", "score", "seconds", "elapsed"], rows, left=4)
               + "</details>")
    return "".join(out)


def _trajectory_figure(d: Mapping[str, Any]) -> Any:
    trials, trajectory = d["trials"], d["trajectory"]
    fig = figure(10, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    best_x = [t["trial"] for t in trajectory if t["best_so_far"] is not None]
    best_y = [t["best_so_far"] for t in trajectory if t["best_so_far"] is not None]
    ax1.step(best_x, best_y, where="post", color="#243447", label="best so far")
    for origin, colour in ORIGIN_COLOURS.items():
        points = [(t["trial"], t["score"]) for t in trials if t["origin"] == origin and t.get("score") is not None]
        if points:
            ax1.scatter(*zip(*points, strict=True), s=18, color=colour, label=origin, zorder=3)
    ax1.set_xlabel("trial")
    ax1.set_ylabel(d.get("metric") or "score")
    ax1.set_title("best score over trials")
    ax1.legend(fontsize=7, loc="lower right")
    timed = [(t["elapsed"], t["best_so_far"]) for t in trajectory
             if t.get("elapsed") is not None and t["best_so_far"] is not None]
    if timed:
        ax2.step(*zip(*timed, strict=True), where="post", color="#243447")
        for origin, colour in ORIGIN_COLOURS.items():
            points = [(t["elapsed"], t["score"]) for t in trials
                      if t["origin"] == origin and t.get("score") is not None and t.get("elapsed") is not None]
            if points:
                ax2.scatter(*zip(*points, strict=True), s=18, color=colour, zorder=3)
    ax2.set_xlabel("seconds since the start")
    ax2.set_title("best score over time")
    return fig


RENDERERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], str]] = {
    "metrics": render_metrics,
    "confusion-matrix": render_confusion,
    "calibration": render_calibration,
    "permutation-importance": render_permutation,
    "partial-dependence": render_pdp,
    "shap": render_shap,
    "lime": render_lime,
    "surrogate": render_surrogate,
    "fairness": render_fairness,
    "search": render_search,
}


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page: header, warnings, navigation, one ``<section>`` per report section."""
    from metalearn.report import SECTIONS

    meta, sections = data["meta"], data["sections"]
    ds, model = meta["dataset"], meta["model"]
    body = []
    for sid in SECTIONS:
        if sid not in sections:
            continue
        try:
            content = unavailable(sections[sid]) or RENDERERS[sid](sections[sid], meta)
        except Exception as exc:  # a figure that cannot be drawn must not lose the page
            content = f'<div class="warn">Could not render this section: {esc(type(exc).__name__)}: {esc(exc)}</div>'
        body.append(section(sid, content))
    nav = "".join(f'<a href="#{sid}">{esc(TITLES[sid])}</a>' for sid in SECTIONS if sid in sections)
    warnings = "".join(f"<li>{esc(w)}</li>" for w in data.get("warnings", []))
    config = json.dumps(model.get("configuration"), indent=1, sort_keys=True) if model.get("configuration") else None
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in meta.get("timings", {}).items())
    summary = [
        f"<p><b>Model:</b> {esc(model.get('algorithm') or model.get('estimator'))} — "
        f"{esc(' → '.join(model.get('steps', [])))}</p>",
        f"<p><b>Evaluation:</b> {esc(meta['evaluation'].get('method'))} on {meta['evaluation'].get('n_rows')} rows. "
        f"<b>Explanations:</b> {esc(meta['sampling']['note'])} ({esc(meta['sampling']['rows'])}).</p>",
        f"<details><summary>Configuration</summary><pre>{esc(config)}</pre></details>" if config else "",
        f'<p class="note">Generated {esc(meta.get("generated_at"))} by metalearn {esc(meta.get("metalearn_version"))}'
        f" in {meta.get('seconds', 0):.1f} s ({esc(timings)}).</p>",
    ]
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(meta['title'])}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(meta['title'])}</h1><p>{esc(ds['name'])}: {ds['n_rows']:,} rows, {ds['n_features']} "
        f"features ({ds['n_categorical']} categorical), {ds['n_classes']} classes, target {esc(ds['target'])}</p>"
        "</header>"
        f"<nav>{nav}</nav><main>"
        + '<section id="summary"><h2>Summary</h2>' + "".join(summary)
        + (f'<div class="warn"><b>Warnings</b><ul>{warnings}</ul></div>' if warnings else "") + "</section>"
        + "".join(body) + "</main></body></html>"
    )
