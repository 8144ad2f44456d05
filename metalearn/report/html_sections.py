"""HTML of the evaluation, permutation, partial-dependence, fairness and search sections (from the JSON data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from metalearn.report.fairness import MIN_GROUP_ROWS
from metalearn.report.html_parts import ORIGIN_COLOURS, PALETTE, esc, figure, fmt, img, note, short, table, unavailable


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
        curves = f["average"] if isinstance(f["average"], Mapping) else {"prediction": f["average"]}  # regression
        for i, (cls, values) in enumerate(list(curves.items())[:10]):
            ax.plot(f["grid"], values, color=PALETTE[i % 10], label=short(cls, 14))
        deciles = [v for v in f.get("deciles", []) if v is not None]
        if deciles:
            lo, hi = ax.get_ylim()
            ax.vlines(deciles, lo, lo + 0.05 * (hi - lo), color="#333", lw=1)
        ax.set_xlabel(short(f["feature"], 24))
    axes[0].set_ylabel(f"average {d.get('output', 'predicted probability')}")
    if any(isinstance(f["average"], Mapping) for f in features):  # one curve per class (not for regression)
        axes[0].legend(fontsize=7)
    return note(f"{d['method']}; {d['n_rows']} rows; ticks at the bottom are deciles of the feature.") + img(
        fig, "partial dependence")


def render_mitigation(m: Mapping[str, Any]) -> str:
    """The before / after table of a fairness-mitigated model (``metalearn.mitigation``), overall and per group."""
    keys = ("balanced_accuracy", "accuracy", "demographic_parity_difference", "equalized_odds_difference")
    out = [f"<h3>Mitigation: {esc(m['constraint'])} on {esc(m['sensitive'])}</h3>",
           note(f"{m['method']}; thresholds fitted on {m['thresholds_fitted_on']}; figures on the "
                f"{m['evaluated_on']}; positive class {m['positive_class']!r}."),
           table(["", *(k.replace("_", " ") for k in keys)], [[side, *(m[side][k] for k in keys)]
                                                            for side in ("before", "after")])]
    rates = ("count", "balanced_accuracy", "selection_rate", "true_positive_rate", "false_positive_rate")
    after = {g["group"]: g for g in m["after"]["groups"]}
    rows = [[g["group"], *(g.get(k) for k in rates), *(after.get(g["group"], {}).get(k) for k in rates[1:])]
            for g in m["before"]["groups"]]
    out.append(table(["group", *(k.replace("_", " ") for k in rates), *(f"after: {k.replace('_', ' ')}"
                                                                       for k in rates[1:])], rows))
    return "".join(out)


def render_fairness(d: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    out = [note(f"Differences computed on the {d['predictions']}; warning above {d['threshold']:g}. "
                "Demographic parity difference: largest gap in selection rate between groups; equalized odds "
                "difference: largest gap in true- or false-positive rate.")]
    if d.get("mitigation"):
        out.append(render_mitigation(d["mitigation"]))
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
            out.append(note(f"Groups with fewer than {MIN_GROUP_ROWS} rows (differences are noisy): "
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
    ensemble = d.get("ensemble")
    if ensemble:
        out.append(f"<p>Final model: an ensemble of {len(ensemble['members'])} trials, out-of-fold score "
                   f"{fmt(ensemble['oof_score'])}.</p>")
        out.append(table(["trial", "algorithm", "weight", "CV score"],
                         [(m["trial"], m.get("algorithm"), m["weight"], m.get("cv_score"))
                          for m in ensemble["members"]], left=1))
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
