"""Evaluation sections of a regression model: metrics, predicted-vs-actual and residuals, and the notes of the
classification-only sections.

Residuals are ``actual - predicted`` (positive: the model under-predicts). The scatter data are thinned to at
most :data:`POINTS_LIMIT` rows, evenly spaced over the rows sorted by the actual value (the extremes kept);
the summaries (quantiles, histogram, bins of the prediction) use every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    explained_variance_score,
    max_error,
    mean_absolute_error,
    mean_absolute_percentage_error,
    median_absolute_error,
    r2_score,
    root_mean_squared_error,
)

from metalearn.evaluation import score_proba
from metalearn.protocol import NEGATED_METRICS, REGRESSION_METRICS
from metalearn.report.common import as_floats, thin

#: most points of the predicted-vs-actual and residual scatter plots kept in the JSON data
POINTS_LIMIT = 500
#: the sections that only classification has, and why regression has none
CLASSIFICATION_ONLY = {
    "confusion-matrix": "a confusion matrix counts class predictions",
    "calibration": "calibration curves compare predicted class probabilities with class frequencies",
}


def not_applicable(section: str) -> dict[str, Any]:
    """The entry of a classification-only section in a regression report (rendered as a note)."""
    return {"not_applicable": "regression",
            "skipped": f"not applicable to regression ({CLASSIFICATION_ONLY[section]})"}


def _scores(y_true: np.ndarray, y_pred: np.ndarray, mape_defined: bool) -> dict[str, float | None]:
    """Every regression metric as the search stores it: higher is better, error metrics negated."""
    return {m: score_proba(m, y_true, y_pred, None) if (m != "mape" or mape_defined) else None
            for m in REGRESSION_METRICS}


def regression_metrics_section(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """R², RMSE, MAE, MAPE (only without zero targets), and more, with the target's spread for scale."""
    notes: list[str] = []
    residual = y_true - y_pred
    mape_defined = bool(np.all(y_true != 0))
    if not mape_defined:
        notes.append(f"MAPE undefined: {int(np.sum(y_true == 0))} target value(s) are zero")
    if len(y_true) < 2:
        notes.append("R² undefined for fewer than two rows")
    rmse = float(root_mean_squared_error(y_true, y_pred))
    return {
        "task": "regression",
        "n": int(len(y_true)),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) >= 2 else None,
        "rmse": rmse,
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "mape": float(mean_absolute_percentage_error(y_true, y_pred)) if mape_defined else None,
        "median_absolute_error": float(median_absolute_error(y_true, y_pred)),
        "explained_variance": float(explained_variance_score(y_true, y_pred)) if len(y_true) >= 2 else None,
        "max_error": float(max_error(y_true, y_pred)),
        "mean_residual": float(residual.mean()),
        "target": {"mean": float(y_true.mean()), "std": float(y_true.std()), "min": float(y_true.min()),
                   "max": float(y_true.max())},
        "baseline_rmse": float(y_true.std()),
        "scores": _scores(y_true, y_pred, mape_defined),
        "scores_note": f"higher is better: {', '.join(m for m in REGRESSION_METRICS if m in NEGATED_METRICS)} "
                       "negated, as the search stores them",
        "mape_unit": "fraction (0.1 = 10%)",
        "baseline_note": "baseline_rmse: RMSE of always predicting the mean of the evaluated targets (their std)",
        "not_applicable": "ROC curves, ROC-AUC, log loss and per-class figures (classification only)",
        "notes": notes,
    }


def _bins(y_true: np.ndarray, y_pred: np.ndarray, n_bins: int = 10) -> list[dict[str, Any]]:
    """Rows grouped by quantile bins of the prediction: mean prediction, mean actual and residual spread."""
    if len(y_pred) == 0:
        return []
    edges = np.unique(np.quantile(y_pred, np.linspace(0, 1, n_bins + 1)))
    ids = np.clip(np.searchsorted(edges[1:-1], y_pred, side="right"), 0, max(len(edges) - 2, 0))
    out = []
    for b in np.unique(ids):
        hit = ids == b
        res = y_true[hit] - y_pred[hit]
        out.append({"predicted_from": float(y_pred[hit].min()), "predicted_to": float(y_pred[hit].max()),
                    "count": int(hit.sum()), "predicted_mean": float(y_pred[hit].mean()),
                    "actual_mean": float(y_true[hit].mean()), "residual_mean": float(res.mean()),
                    "residual_q10": float(np.quantile(res, 0.1)), "residual_q90": float(np.quantile(res, 0.9))})
    return out


def residuals_section(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Predicted-vs-actual and residual data: thinned points, residual summary, histogram and prediction bins."""
    residual = y_true - y_pred
    order = np.argsort(y_true, kind="stable")
    rows, actual, predicted, res = thin(order, y_true[order], y_pred[order], residual[order], limit=POINTS_LIMIT)
    counts, edges = np.histogram(residual, bins=min(30, max(5, int(np.sqrt(len(residual))))))
    quantiles = np.quantile(residual, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {
        "n": int(len(y_true)), "residual": "actual - predicted",
        "n_points": int(len(rows)), "thinned": bool(len(rows) < len(y_true)),
        "points": {"rows": [int(i) for i in rows], "actual": as_floats(actual, 6),
                   "predicted": as_floats(predicted, 6), "residual": as_floats(res, 6)},
        "summary": {"mean": float(residual.mean()), "std": float(residual.std()),
                    "q05": float(quantiles[0]), "q25": float(quantiles[1]), "median": float(quantiles[2]),
                    "q75": float(quantiles[3]), "q95": float(quantiles[4]),
                    "max_abs": float(np.abs(residual).max())},
        "histogram": {"edges": as_floats(edges, 6), "counts": counts.tolist()},
        "bins": _bins(y_true, y_pred),
        "method": f"evaluation predictions; points: at most {POINTS_LIMIT} rows evenly spaced over the rows sorted "
                  "by the actual value (extremes kept); summary, histogram and bins (deciles of the prediction) "
                  "over every row",
    }
