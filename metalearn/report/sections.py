"""Evaluation sections: metrics with ROC curves, the confusion matrix and calibration curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from metalearn.report.common import as_floats, as_label, thin


def _roc(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, positive: Any,
         notes: list[str]) -> tuple[float | None, list[dict[str, Any]]]:
    """ROC-AUC (binary, or one-vs-rest macro over the classes present) and one ROC curve per explained class."""
    roc_auc = None
    curves = []
    present = np.isin(classes, np.unique(y_true))
    try:
        if len(classes) == 2:
            k = int(np.flatnonzero(classes == positive)[0])
            roc_auc = float(roc_auc_score(y_true == positive, proba[:, k]))
            targets = [k]
        else:
            scores = proba[:, present] / np.clip(proba[:, present].sum(axis=1, keepdims=True), 1e-15, None)
            roc_auc = float(roc_auc_score(y_true, scores, multi_class="ovr", labels=classes[present]))
            if not present.all():
                notes.append("ROC-AUC over the classes present in the evaluation rows only")
            targets = list(np.flatnonzero(present))
        for k in targets:
            fpr, tpr, _ = roc_curve(y_true == classes[k], proba[:, k])
            fpr, tpr = thin(fpr, tpr)
            curves.append({"class": as_label(classes[k]), "fpr": as_floats(fpr, 5), "tpr": as_floats(tpr, 5)})
    except ValueError as exc:
        notes.append(f"ROC-AUC undefined: {exc}")
    return roc_auc, curves


def metrics_section(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes: np.ndarray,
                    positive: Any) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro and per-class precision / recall / F1, ROC-AUC and log loss."""
    notes: list[str] = []
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=classes, average="macro",
                                                    zero_division=0)
    roc_auc, curves = _roc(y_true, proba, classes, positive, notes)
    try:
        loss = float(log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=classes))
    except ValueError as exc:
        loss = None
        notes.append(f"log loss undefined: {exc}")
    return {
        "n": int(len(y_true)),
        "classes": [as_label(c) for c in classes],
        "positive_class": as_label(positive) if len(classes) == 2 else None,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "precision_macro": float(mp), "recall_macro": float(mr), "f1_macro": float(mf),
        "roc_auc": roc_auc, "roc_auc_method": "binary" if len(classes) == 2 else "one-vs-rest, macro",
        "log_loss": loss,
        "per_class": [{"class": as_label(c), "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                       "support": int(s[i])} for i, c in enumerate(classes)],
        "roc_curves": curves,
        "notes": notes,
    }


def confusion_section(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Counts and row-normalised shares (true class by predicted class)."""
    extra = [c for c in pd.unique(y_true) if c not in set(classes.tolist())]
    labels = np.array([*classes.tolist(), *extra], dtype=classes.dtype if not extra else object)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    rows = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    return {"labels": [as_label(c) for c in labels], "matrix": matrix.tolist(),
            "normalized": as_floats(normalized, 4), "rows": "true class", "columns": "predicted class"}


def _curve(event: np.ndarray, prob: np.ndarray, bins: int, name: Any) -> dict[str, Any]:
    """One calibration curve (uniform bins) with its counts and expected calibration error."""
    prob_true, prob_pred = calibration_curve(event.astype(int), prob, n_bins=bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], prob)
    counts = np.bincount(ids, minlength=bins)
    counts = counts[counts > 0]
    ece = float(np.sum(np.abs(prob_true - prob_pred) * counts) / max(counts.sum(), 1))
    return {"name": as_label(name), "prob_pred": as_floats(prob_pred, 5), "prob_true": as_floats(prob_true, 5),
            "counts": counts.tolist(), "ece": ece}


def calibration_section(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes: np.ndarray,
                        positive: Any, bins: int) -> dict[str, Any]:
    """Binary: the positive class's curve and Brier score; multiclass: one-vs-rest curves; both: top-label."""
    top = _curve(y_pred == y_true, proba.max(axis=1), bins, "top-label")
    if len(classes) == 2:
        k = int(np.flatnonzero(classes == positive)[0])
        curve = _curve(y_true == positive, proba[:, k], bins, positive)
        return {"method": f"binary: P({positive}) against the frequency of {positive}, {bins} uniform bins",
                "curves": [curve], "top_label": top,
                "brier": float(brier_score_loss((y_true == positive).astype(int), proba[:, k]))}
    curves = [_curve(y_true == c, proba[:, k], bins, c) for k, c in enumerate(classes)]
    return {"method": f"multiclass: one-vs-rest curve per class (P(k) against y == k) and the top-label curve "
                      f"(max probability against 'prediction is right'), {bins} uniform bins",
            "curves": curves, "top_label": top, "brier": None}
