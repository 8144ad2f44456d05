"""Fairness section: per-group metrics and demographic-parity / equalized-odds differences (fairlearn) for
classification; per-group errors (MAE, RMSE, mean residual) and their gaps for regression."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from metalearn.errors import MetalearnError
from metalearn.report.common import MISSING, as_label
from metalearn.tasks import is_numeric

#: groups with fewer rows than this are listed as small: their rates and errors are noisy
MIN_GROUP_ROWS: int = 30


def sensitive_frame(sensitive: Any, eval_X: pd.DataFrame, extra: pd.DataFrame | None) -> pd.DataFrame | None:
    """The sensitive values aligned with the evaluation rows (None when there are none).

    ``sensitive`` is a column name or list of names (looked up in ``eval_X``, then in ``extra``) or a
    Series / DataFrame of values.
    """
    if sensitive is None or (isinstance(sensitive, Sequence) and not isinstance(sensitive, str) and not sensitive):
        return None
    if isinstance(sensitive, pd.Series):
        frame = sensitive.to_frame(sensitive.name or "sensitive")
    elif isinstance(sensitive, pd.DataFrame):
        frame = sensitive
    else:
        names = [sensitive] if isinstance(sensitive, str) else list(sensitive)
        columns = {}
        for name in names:
            if name in eval_X.columns:
                columns[name] = eval_X[name].reset_index(drop=True)
            elif extra is not None and name in extra.columns:
                columns[name] = extra[name].reset_index(drop=True)
            else:
                raise MetalearnError(f"sensitive column {name!r} is neither a feature nor a column of the data")
        frame = pd.DataFrame(columns)
    if len(frame) != len(eval_X):
        raise MetalearnError(f"sensitive values have {len(frame)} rows; the evaluation rows are {len(eval_X)}")
    return frame.reset_index(drop=True)


def _groups(values: pd.Series) -> tuple[np.ndarray, str | None]:
    """Group names of the rows: numeric columns with more than 10 values in quartiles; missing is a group."""
    if is_numeric(values) and values.nunique() > 10:
        cut = pd.qcut(values, 4, duplicates="drop")
        out = cut.astype(object).where(cut.notna(), MISSING).map(str).to_numpy(dtype=object)
        return out, "numeric column cut into quartiles"
    out = values.astype(object).where(values.notna(), MISSING).map(str).to_numpy(dtype=object)
    return out, None


def _group_table(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, dict[str, Any]]:
    """Count, accuracy and balanced accuracy of every group."""
    from fairlearn.metrics import MetricFrame, count

    frame = MetricFrame(metrics={"count": count, "accuracy": accuracy_score,
                                 "balanced_accuracy": balanced_accuracy_score},
                        y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    by_group = frame.by_group
    return {str(g): {"group": str(g), "count": int(by_group.loc[g, "count"]),
                     "accuracy": float(by_group.loc[g, "accuracy"]),
                     "balanced_accuracy": float(by_group.loc[g, "balanced_accuracy"])} for g in by_group.index}


def _class_rates(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, k: Any) -> dict[str, Any]:
    """One-vs-rest ("predicted == k" against "is k") rates by group and the two differences for class ``k``."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    yb, pb = (y_true == k).astype(int), (y_pred == k).astype(int)
    frame = MetricFrame(metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                                 "false_positive_rate": false_positive_rate},
                        y_true=yb, y_pred=pb, sensitive_features=groups)
    rates = frame.by_group
    by_group = [{"group": str(g), "selection_rate": float(rates.loc[g, "selection_rate"]),
                 "true_positive_rate": float(rates.loc[g, "true_positive_rate"]),
                 "false_positive_rate": float(rates.loc[g, "false_positive_rate"])} for g in rates.index]
    return {"class": as_label(k),
            "demographic_parity_difference": float(demographic_parity_difference(yb, pb, sensitive_features=groups)),
            "equalized_odds_difference": float(equalized_odds_difference(yb, pb, sensitive_features=groups)),
            "by_group": by_group}


def _largest(per_class: list[dict[str, Any]], key: str) -> float | None:
    values = [c[key] for c in per_class if math.isfinite(c[key])]
    return max(values) if values else None


def _attribute(column: Any, values: pd.Series, y_true: np.ndarray, y_pred: np.ndarray, targets: list[Any],
               positive: Any, threshold: float) -> dict[str, Any]:
    """The fairness figures of one sensitive attribute (``message`` set when a difference is too large)."""
    binary = len(targets) == 1
    groups, binning = _groups(values.reset_index(drop=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = _group_table(y_true, y_pred, groups)
        per_class = [_class_rates(y_true, y_pred, groups, k) for k in targets]
    if binary:  # one positive class: its rates sit in the group rows
        for rate in per_class[0]["by_group"]:
            table[rate["group"]].update({key: v for key, v in rate.items() if key != "group"})
    dpd = _largest(per_class, "demographic_parity_difference")
    eod = _largest(per_class, "equalized_odds_difference")
    flagged = [name for name, v in (("demographic parity", dpd), ("equalized odds", eod))
               if v is not None and v > threshold]
    attribute = {
        "attribute": str(column), "binning": binning, "groups": list(table.values()),
        "demographic_parity_difference": dpd, "equalized_odds_difference": eod,
        "per_class": per_class, "warning": bool(flagged),
        "small_groups": [g for g, row in table.items() if row["count"] < MIN_GROUP_ROWS],
        "method": (f"binary: positive class {positive!r}" if binary else
                   "multiclass: one-vs-rest per class (predicted == k against y == k); summary = largest "
                   "difference over the classes"),
    }
    if flagged:
        attribute["message"] = (f"fairness: {', '.join(flagged)} difference for {column!r} above {threshold:g} "
                                f"(demographic parity {dpd:.3f}, equalized odds "
                                f"{'n/a' if eod is None else f'{eod:.3f}'})")
    return attribute


def fairness_section(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray, positive: Any,
                     sensitive: pd.DataFrame, threshold: float) -> tuple[dict[str, Any], list[str]]:
    """Per-group metrics and differences for each sensitive column, and the warnings of those above ``threshold``.

    Binary: for the positive class. Multiclass: one-vs-rest for every class; the summary is the largest
    difference over the classes.
    """
    targets = [positive] if len(classes) == 2 else list(classes)
    attributes = [_attribute(column, sensitive[column], y_true, y_pred, targets, positive, threshold)
                  for column in sensitive.columns]
    warn = [a["message"] for a in attributes if "message" in a]
    return {"threshold": threshold, "attributes": attributes,
            "predictions": "evaluation predictions (test split or out-of-fold)"}, warn


def _error_table(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> list[dict[str, Any]]:
    """Count, MAE, RMSE, mean residual (actual - predicted), mean actual and mean prediction of every group."""
    frame = pd.DataFrame({"group": groups, "y": y_true, "p": y_pred, "r": y_true - y_pred})
    rows = []
    for group, part in frame.groupby("group", sort=True):
        rows.append({"group": str(group), "count": int(len(part)), "mae": float(part["r"].abs().mean()),
                     "rmse": float(np.sqrt(np.mean(part["r"] ** 2))), "mean_residual": float(part["r"].mean()),
                     "mean_actual": float(part["y"].mean()), "mean_predicted": float(part["p"].mean())})
    return rows


def _error_attribute(column: Any, values: pd.Series, y_true: np.ndarray, y_pred: np.ndarray,
                     overall: dict[str, float], threshold: float) -> dict[str, Any]:
    """The error gaps of one sensitive attribute (``message`` set when the largest relative gap is too large)."""
    groups, binning = _groups(values.reset_index(drop=True))
    table = _error_table(y_true, y_pred, groups)
    scale = {"mae": overall["mae"], "rmse": overall["rmse"], "mean_residual": overall["mae"]}
    gaps, relative, extremes = {}, {}, {}
    for key in ("mae", "rmse", "mean_residual"):
        worst = max(table, key=lambda g: abs(g[key]) if key == "mean_residual" else g[key])
        gaps[key] = max(g[key] for g in table) - min(g[key] for g in table)
        relative[key] = gaps[key] / scale[key] if scale[key] > 0 else None
        extremes[key] = worst["group"]
    ranked = [k for k in relative if relative[k] is not None]
    key = max(ranked, key=lambda k: relative[k]) if ranked else "mae"
    largest = {"metric": key, "gap": gaps[key], "relative": relative[key], "worst_group": extremes[key]}
    flagged = relative[key] is not None and relative[key] > threshold and len(table) > 1
    attribute = {
        "attribute": str(column), "binning": binning, "groups": table, "gaps": gaps, "relative_gaps": relative,
        "largest_gap": largest, "warning": bool(flagged),
        "small_groups": [g["group"] for g in table if g["count"] < MIN_GROUP_ROWS],
        "method": "regression: per-group errors of the evaluation predictions; gap = largest minus smallest group "
                  "value; relative gap = gap / overall MAE (MAE, mean residual) or / overall RMSE (RMSE)",
    }
    if flagged:
        attribute["message"] = (f"fairness: {key.replace('_', ' ')} gap for {column!r} is {relative[key]:.3f} of "
                                f"the overall {'RMSE' if key == 'rmse' else 'MAE'}, above {threshold:g} "
                                f"(worst group {extremes[key]!r})")
    return attribute


def regression_fairness_section(y_true: np.ndarray, y_pred: np.ndarray, sensitive: pd.DataFrame,
                                threshold: float) -> tuple[dict[str, Any], list[str]]:
    """Per-group error figures and their gaps for each sensitive column, and the warnings of those whose
    largest relative gap is above ``threshold``."""
    residual = y_true - y_pred
    overall = {"mae": float(np.mean(np.abs(residual))), "rmse": float(np.sqrt(np.mean(residual ** 2))),
               "mean_residual": float(np.mean(residual))}
    attributes = [_error_attribute(column, sensitive[column], y_true, y_pred, overall, threshold)
                  for column in sensitive.columns]
    warn = [a["message"] for a in attributes if "message" in a]
    return {"task": "regression", "threshold": threshold, "overall": overall, "attributes": attributes,
            "predictions": "evaluation predictions (test split or out-of-fold)"}, warn
