"""HTML rendering of a model report: one self-contained page drawn from the report's JSON data.

Plots are drawn with matplotlib's object-oriented API and embedded as base64 PNG ``data:`` URIs
(:mod:`metalearn.report.html_parts`); styles are inline, so the page needs no external asset. Every
report section is one ``<section id="...">``, in the order of :data:`SECTIONS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from metalearn.report.html_explanations import render_lime, render_shap, render_surrogate
from metalearn.report.html_parts import esc, unavailable
from metalearn.report.html_regression import (
    render_regression_fairness,
    render_regression_lime,
    render_regression_metrics,
    render_regression_shap,
    render_regression_surrogate,
    render_residuals,
)
from metalearn.report.html_sections import (
    render_calibration,
    render_confusion,
    render_fairness,
    render_metrics,
    render_pdp,
    render_permutation,
    render_search,
)

TITLES = {
    "metrics": "Hold-out metrics",
    "residuals": "Predicted vs actual and residuals",
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
#: Section ids of a classification report, in page order (``lime`` and ``fairness`` only when used).
SECTIONS = tuple(sid for sid in TITLES if sid != "residuals")
#: Section ids of a regression report, in page order (``confusion-matrix`` and ``calibration`` hold a
#: "not applicable to regression" note; ``lime`` and ``fairness`` only when used).
REGRESSION_SECTIONS = tuple(TITLES)

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


def section(sid: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(TITLES.get(sid, sid))}</h2>{body}</section>'


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
#: the renderers of a regression report (the others are shared)
REGRESSION_RENDERERS = {
    **RENDERERS,
    "metrics": render_regression_metrics,
    "residuals": render_residuals,
    "shap": render_regression_shap,
    "lime": render_regression_lime,
    "surrogate": render_regression_surrogate,
    "fairness": render_regression_fairness,
}


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page: header, warnings, navigation, one ``<section>`` per report section."""
    meta, sections = data["meta"], data["sections"]
    ds, model = meta["dataset"], meta["model"]
    regression = meta.get("task") == "regression"
    renderers = REGRESSION_RENDERERS if regression else RENDERERS
    order = REGRESSION_SECTIONS if regression else SECTIONS
    body = []
    for sid in order:
        if sid not in sections:
            continue
        try:
            content = unavailable(sections[sid]) or renderers[sid](sections[sid], meta)
        except Exception as exc:  # a figure that cannot be drawn must not lose the page
            content = f'<div class="warn">Could not render this section: {esc(type(exc).__name__)}: {esc(exc)}</div>'
        body.append(section(sid, content))
    nav = "".join(f'<a href="#{sid}">{esc(TITLES[sid])}</a>' for sid in order if sid in sections)
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
        f"features ({ds['n_categorical']} categorical), "
        + ("regression" if regression else f"{ds['n_classes']} classes") + f", target {esc(ds['target'])}</p>"
        "</header>"
        f"<nav>{nav}</nav><main>"
        + '<section id="summary"><h2>Summary</h2>' + "".join(summary)
        + (f'<div class="warn"><b>Warnings</b><ul>{warnings}</ul></div>' if warnings else "") + "</section>"
        + "".join(body) + "</main></body></html>"
    )
