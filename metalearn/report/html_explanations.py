"""HTML of the SHAP, LIME and surrogate-tree sections (from the JSON data).

The ``*_section`` functions draw a section for either task; :mod:`metalearn.report.html_regression` calls them
with the regression wording (what SHAP values add up to, the units, the text above each explained row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from metalearn.report.html_parts import PALETTE, esc, figure, img, kv_table, note, short, unavailable


def shap_section(d: Mapping[str, Any], explained: str, unit: str, row: Callable[[Mapping[str, Any]], str]) -> str:
    """The SHAP section: ``explained`` is what base + SHAP values add up to (``P(x)``, ``prediction``), ``unit``
    the unit of the global importance, ``row(local)`` the paragraph above each explained row's contributions."""
    missing = unavailable(d)
    if missing:
        return missing
    out = [note(f"{d['explainer']}; {d['masker']}; output {d['output']}; {d['n_rows']} rows explained, "
                f"{d['permutations']} permutation(s) each. Additivity check: max |base + Σ SHAP − {explained}| = "
                f"{d['additivity_max_error']:.2e}."), *[note(n) for n in d.get("notes", [])]]
    out += ["<h3>Global importance</h3>", img(shap_global_figure(d["global"][:15], d.get("outputs"), unit),
                                              "SHAP global summary")]
    values = np.asarray(d["values"], dtype=float) if d.get("values") else None
    if values is not None and values.ndim == 2 and d.get("feature_values"):
        out.append(beeswarm(d, values))
    out.append("<h3>Individual predictions</h3>")
    for local in d["local"]:
        out.append(row(local))
        out.append(contributions_figure([f"{c['feature']} = {short(c['value'], 14)}" for c in local["contributions"]],
                                        [c["shap"] for c in local["contributions"]], "SHAP value",
                                        f"row {local['row']}"))
    return "".join(out)


def shap_global_figure(glob: Sequence[Mapping[str, Any]], outputs: Sequence[Any] | None, unit: str) -> Any:
    """Mean |SHAP| per feature, stacked by class when the entries have ``per_class`` (multiclass)."""
    fig = figure(7.5, 1.2 + 0.28 * len(glob))
    ax = fig.add_subplot()
    names = [short(g["feature"], 30) for g in glob][::-1]
    if glob and glob[0].get("per_class") is not None:
        left = np.zeros(len(glob))
        for i, cls in enumerate((outputs or [])[:10]):
            widths = np.array([g["per_class"][i] for g in glob][::-1], dtype=float)
            ax.barh(names, widths, left=left, color=PALETTE[i % 10], label=short(cls, 14))
            left += widths
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.barh(names, [g["mean_abs"] for g in glob][::-1], color="#d62728")
    ax.set_xlabel(f"mean |SHAP value| ({unit})")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def render_shap(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    return shap_section(d, "P(x)", "probability", _shap_row)


def _shap_row(local: Mapping[str, Any]) -> str:
    return (f"<p><b>row {local['row']}</b> ({esc(local['why'])}): true {esc(local['true'])}, predicted "
            f"{esc(local['predicted'])} with p = {local['probability']:.3f}; explained output "
            f"P({esc(local['output_class'])}) = {local['base_value']:.3f} (base) + Σ SHAP = "
            f"{local['output']:.3f}</p>")


def beeswarm(d: Mapping[str, Any], values: np.ndarray) -> str:
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


def contributions_figure(labels: list[str], values: list[float], xlabel: str, alt: str) -> str:
    fig = figure(7.5, 0.9 + 0.26 * len(values))
    ax = fig.add_subplot()
    ax.barh([short(label, 40) for label in labels][::-1], values[::-1],
            color=["#d62728" if v > 0 else "#1f77b4" for v in values[::-1]])
    ax.axvline(0, color="#999", lw=1)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=8)
    return img(fig, alt)


def lime_section(d: Mapping[str, Any], row: Callable[[Mapping[str, Any]], tuple[str, str]]) -> str:
    """The LIME section; ``row(local)`` gives the paragraph above each explained row and the weights' axis label."""
    missing = unavailable(d)
    if missing:
        return missing
    out = [note(f"Used because: {d['reason']}. {d['method']}; {d['n_samples']} perturbed samples per row.")]
    for local in d["local"]:
        paragraph, xlabel = row(local)
        out.append(paragraph)
        out.append(contributions_figure([w["condition"] for w in local["weights"]],
                                        [w["weight"] for w in local["weights"]], xlabel, f"LIME row {local['row']}"))
    return "".join(out)


def render_lime(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    return lime_section(d, _lime_row)


def _lime_row(local: Mapping[str, Any]) -> tuple[str, str]:
    return (f"<p><b>row {local['row']}</b> ({esc(local['why'])}): true {esc(local['true'])}, predicted "
            f"{esc(local['predicted'])} with p = {local['probability']:.3f}; local linear model: intercept "
            f"{local['intercept']:.3f}, prediction {local['local_prediction']:.3f}, R² {local['r2']:.3f}</p>",
            f"weight for P({local['explained_class']})")


def surrogate_section(d: Mapping[str, Any], rows: Sequence[tuple[str, Any]], good: bool, agreement: str,
                      classes: list[Any] | None, alt: str) -> str:
    """The surrogate-tree section: ``rows`` of figures, the ``agreement`` sentence (flagged unless ``good``), the
    tree drawn (leaves coloured by class, or by value when ``classes`` is None) and its rules."""
    quality = "ok" if good else "bad"
    return (note(d["method"])
            + f'<p class="{quality}">{agreement}' + ("" if good else ": read its rules as a rough sketch only")
            + ".</p>" + kv_table(rows) + img(tree_figure(d["tree"], classes), alt)
            + f"<details><summary>Rules (text)</summary><pre>{esc(d['rules'])}</pre></details>")


def render_surrogate(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    missing = unavailable(d)
    if missing:
        return missing
    rows = [("fidelity on held-out rows", d["fidelity_holdout"]), ("fidelity on all rows", d["fidelity_all"]),
            ("accuracy against the true labels", d["accuracy_vs_truth"]), ("depth", d["depth"]),
            ("leaves", d["n_leaves"]), ("rows", d["n_rows"])]
    agreement = f"The tree agrees with the model on {100 * d['fidelity_holdout']:.1f}% of held-out rows"
    return surrogate_section(d, rows, d["fidelity_holdout"] >= 0.9, agreement, d["classes"], "surrogate decision tree")


def tree_figure(nodes: list[dict[str, Any]], classes: list[Any] | None) -> Any:
    """The surrogate tree drawn from its nodes (leaves: class and share, or the mean prediction ``value``)."""
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
    colour = {c: PALETTE[i % 10] for i, c in enumerate(classes or [])}
    values = [n["value"] for n in nodes if n.get("value") is not None]  # regression: leaf colour by value
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    for node in nodes:
        if node["leaf"]:
            continue
        for child, label in ((node["left"], "yes"), (node["right"], "no")):
            ax.plot([x[node["id"]], x[child]], [-node["depth"], -by_id[child]["depth"]], color="#999", lw=1, zorder=1)
            ax.text((x[node["id"]] + x[child]) / 2, -(node["depth"] + by_id[child]["depth"]) / 2, label,
                    fontsize=7, color="#555", ha="center", va="center", zorder=3,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"})
    for node in nodes:
        share = max(node["fractions"]) if node.get("fractions") else 0
        if node["leaf"] and "value" in node:
            text = f"ŷ = {node['value']:.4g}\nn={node['samples']}"
            level = (node["value"] - low) / (high - low) if high > low else 0.5
            box = {"boxstyle": "round,pad=0.3", "fc": (level, 0.35, 1 - level), "ec": "#333", "alpha": 0.45}
        elif node["leaf"]:
            text = f"{short(node['class'], 14)}\n{share:.0%} · n={node['samples']}"
            face = colour.get(node["class"], "#ccc")
            box = {"boxstyle": "round,pad=0.3", "fc": face, "ec": "#333", "alpha": 0.35 + 0.5 * share}
        else:
            feature = short(node["feature"], 22)
            text = f"{feature}\n≤ {node['threshold']:.4g}   n={node['samples']}"
            box = {"boxstyle": "round,pad=0.3", "fc": "#f3f6fa", "ec": "#243447"}
        ax.text(x[node["id"]], -node["depth"], text, ha="center", va="center", fontsize=7, bbox=box, zorder=2)
    return fig
