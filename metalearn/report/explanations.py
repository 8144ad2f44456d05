"""Global explanations of the final pipeline: permutation importance, partial dependence and a surrogate tree
(a classification or a regression tree, after the task)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, export_text

from metalearn.protocol import METRICS, check_choice
from metalearn.report.common import as_floats, as_label
from metalearn.report.model import ReportOptions


def scoring_for(metric: str, n_classes: int) -> str:
    """The scikit-learn scorer of a metric (binary ROC-AUC is plain ``roc_auc``)."""
    scorer = METRICS[check_choice("metric", metric, METRICS)]
    if scorer == "roc_auc_ovr" and n_classes == 2:
        return "roc_auc"
    return scorer


def permutation_section(model: Any, X: pd.DataFrame, y: pd.Series, scoring: str, repeats: int, seed: int,
                        source: str) -> dict[str, Any]:
    """Permutation importance of the original columns (shuffled through the whole pipeline)."""
    result = permutation_importance(model, X, y, scoring=scoring, n_repeats=repeats, random_state=seed, n_jobs=1)
    order = np.argsort(-result.importances_mean, kind="stable")
    return {"scoring": scoring, "n_repeats": repeats, "n_rows": int(len(X)), "rows": source,
            "features": [{"feature": str(X.columns[i]), "mean": float(result.importances_mean[i]),
                          "std": float(result.importances_std[i]),
                          "repeats": as_floats(result.importances[i], 6)} for i in order]}


def _grid(values: pd.Series, size: int) -> np.ndarray:
    finite = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if len(finite) == 0:
        return np.array([])
    unique = np.unique(finite)
    if len(unique) <= size:
        return unique
    return np.unique(np.quantile(finite, np.linspace(0.05, 0.95, size)))


def _pdp_curve(model: Any, X: pd.DataFrame, feature: str, grid: np.ndarray, classes: np.ndarray | None,
               positive: Any) -> dict[str, Any] | list[Any]:
    """One feature's curve: the mean prediction (regression) or the mean probability of each class."""
    if classes is None:
        result = partial_dependence(model, X, [feature], response_method="auto", kind="average",
                                    custom_values={feature: grid})
        return as_floats(np.asarray(result["average"])[0], 6)
    result = partial_dependence(model, X, [feature], response_method="predict_proba", kind="average",
                                custom_values={feature: grid})
    average = np.asarray(result["average"])
    model_classes = np.asarray(getattr(model, "classes_", classes))
    if average.shape[0] == 1:  # binary: scikit-learn returns P(classes_[1])
        k = 1 if model_classes[1] == positive else 0
        curve = average[0] if k == 1 else 1.0 - average[0]
        return {str(as_label(positive)): as_floats(curve, 6)}
    return {str(as_label(c)): as_floats(average[j], 6) for j, c in enumerate(model_classes)}


def partial_dependence_section(model: Any, X: pd.DataFrame, features: list[str], classes: np.ndarray | None,
                               positive: Any, grid_size: int) -> dict[str, Any]:
    """Average prediction over a quantile grid of each of ``features`` (numeric columns): the predicted
    probability of each class (``average`` keyed by class), or for regression (``classes`` None) the
    predicted value (``average`` one list per feature)."""
    out = []
    for feature in features:
        grid = _grid(X[feature], grid_size)
        if len(grid) < 2:
            continue
        series = _pdp_curve(model, X, feature, grid, classes, positive)
        deciles = np.nanquantile(pd.to_numeric(X[feature], errors="coerce"), np.linspace(0.1, 0.9, 9))
        out.append({"feature": feature, "grid": as_floats(grid), "average": series, "deciles": as_floats(deciles)})
    return {"n_rows": int(len(X)), "features": out,
            "output": "predicted probability" if classes is not None else "predicted value",
            "method": "sklearn.inspection.partial_dependence (brute force on the whole pipeline), quantile grid "
                      "of the observed values between the 5th and 95th percentiles"}


class SurrogateEncoder:
    """Numeric columns as they are (NaN kept: trees split on it), categorical ones as level indicators."""

    def __init__(self, X: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], max_levels: int = 10):
        self.numeric = [c for c in X.columns if c in set(numeric)]
        self.levels = {c: [str(v) for v in X[c].dropna().astype(str).value_counts().index[:max_levels]]
                       for c in X.columns if c in set(categorical)}
        self.names = self.numeric + [f"{c}={v}" for c, vs in self.levels.items() for v in vs]

    def __call__(self, X: pd.DataFrame) -> np.ndarray:
        parts = [pd.DataFrame({c: pd.to_numeric(X[c], errors="coerce") for c in self.numeric}).to_numpy(float)
                 if self.numeric else np.empty((len(X), 0))]
        for column, levels in self.levels.items():
            text = X[column].astype(object).where(X[column].notna(), None).map(
                lambda v: None if v is None else str(v)).to_numpy(dtype=object)
            parts.append(np.column_stack([(text == v).astype(float) for v in levels]) if levels
                         else np.empty((len(X), 0)))
        return np.hstack(parts)


def _tree_nodes(tree: Any, names: list[str], regression: bool = False) -> list[dict[str, Any]]:
    """The tree's nodes; a leaf's ``fractions`` and ``class`` (classifier) or mean prediction ``value``."""
    t = tree.tree_
    nodes = []
    depth = {0: 0}
    missing = getattr(t, "missing_go_to_left", None)
    for i in range(t.node_count):
        left, right = int(t.children_left[i]), int(t.children_right[i])
        value = t.value[i][0]
        leaf = left == -1
        if not leaf:
            depth[left] = depth[right] = depth[i] + 1
        node = {"id": i, "depth": depth[i], "leaf": leaf, "feature": None if leaf else names[t.feature[i]],
                "threshold": None if leaf else float(t.threshold[i]),
                "missing_go_left": None if leaf or missing is None else bool(missing[i]),
                "left": None if leaf else left, "right": None if leaf else right,
                "samples": int(t.n_node_samples[i])}
        if regression:
            node["value"] = float(value[0])
        else:
            node.update(fractions=as_floats(value / max(value.sum(), 1e-12), 4),
                        **{"class": as_label(tree.classes_[int(np.argmax(value))])})
        nodes.append(node)
    return nodes


def _surrogate_rows(X: pd.DataFrame, y_true: np.ndarray | None,
                    opts: ReportOptions) -> tuple[pd.DataFrame, np.ndarray | None]:
    """At most ``opts.surrogate_rows`` rows (a seeded random sample, in their order)."""
    if len(X) > opts.surrogate_rows:
        keep = np.sort(np.random.default_rng(opts.seed).choice(len(X), opts.surrogate_rows, replace=False))
        X = X.iloc[keep].reset_index(drop=True)
        y_true = None if y_true is None else y_true[keep]
    return X, y_true


def surrogate_section(model: Any, X: pd.DataFrame, numeric: list[str], categorical: list[str],
                      y_true: np.ndarray | None, opts: ReportOptions,
                      task: str = "classification") -> tuple[dict[str, Any], dict[str, Any]]:
    """A shallow decision tree trained on the model's predictions, with its fidelity; and its artifacts.

    Classification: a DecisionTreeClassifier, fidelity = share of rows where tree and model agree.
    Regression: a DecisionTreeRegressor, fidelity = R² of the tree's predictions against the model's.
    """
    X, y_true = _surrogate_rows(X, y_true, opts)
    regression = task == "regression"
    target = np.asarray(model.predict(X), dtype=float) if regression else np.asarray(model.predict(X))
    encoder = SurrogateEncoder(X, numeric, categorical)
    E = encoder(X)
    idx = np.arange(len(X))
    counts = pd.Series(target).value_counts()
    stratify = target if not regression and counts.min() >= 2 and len(counts) > 1 else None
    train, hold = train_test_split(idx, test_size=0.25, random_state=opts.seed, stratify=stratify)
    kind = DecisionTreeRegressor if regression else DecisionTreeClassifier
    tree = kind(max_depth=opts.surrogate_depth, min_samples_leaf=5, random_state=opts.seed)
    tree.fit(E[train], target[train])
    pred = tree.predict(E)
    holdout = np.zeros(len(X), bool)
    holdout[hold] = True
    data = {"max_depth": opts.surrogate_depth, "n_rows": int(len(X)), "n_train": int(len(train)),
            "n_holdout": int(len(hold))}
    if regression:
        data.update(_regression_fidelity(tree, encoder, target, pred, hold, y_true))
    else:
        data.update(_classification_fidelity(tree, encoder, target, pred, hold, y_true))
    return data, {"surrogate": tree, "surrogate_encoder": encoder, "surrogate_X": X, "surrogate_target": target,
                  "surrogate_holdout": holdout}


def _classification_fidelity(tree: Any, encoder: SurrogateEncoder, target: np.ndarray, pred: np.ndarray,
                             hold: np.ndarray, y_true: np.ndarray | None) -> dict[str, Any]:
    return {
        "fidelity_holdout": float(np.mean(pred[hold] == target[hold])),
        "fidelity_all": float(np.mean(pred == target)),
        "accuracy_vs_truth": None if y_true is None else float(np.mean(pred == y_true)),
        "n_leaves": int(tree.get_n_leaves()), "depth": int(tree.get_depth()),
        "features": encoder.names,
        "rules": export_text(tree, feature_names=encoder.names, class_names=[str(c) for c in tree.classes_],
                             show_weights=False, decimals=3),
        "tree": _tree_nodes(tree, encoder.names),
        "classes": [as_label(c) for c in tree.classes_],
        "method": "DecisionTreeClassifier trained on the final model's predictions (75% of the rows; fidelity = "
                  "share of rows where tree and model agree, on the other 25% and on all rows)",
    }


def _regression_fidelity(tree: Any, encoder: SurrogateEncoder, target: np.ndarray, pred: np.ndarray,
                         hold: np.ndarray, y_true: np.ndarray | None) -> dict[str, Any]:
    return {
        "fidelity_metric": "r2",
        "fidelity_holdout": float(r2_score(target[hold], pred[hold])),
        "fidelity_all": float(r2_score(target, pred)),
        "r2_vs_truth": None if y_true is None else float(r2_score(y_true, pred)),
        "n_leaves": int(tree.get_n_leaves()), "depth": int(tree.get_depth()),
        "features": encoder.names,
        "rules": export_text(tree, feature_names=encoder.names, show_weights=False, decimals=3),
        "tree": _tree_nodes(tree, encoder.names, regression=True),
        "method": "DecisionTreeRegressor trained on the final model's predictions (75% of the rows; fidelity = R² "
                  "of the tree's predictions against the model's, on the other 25% and on all rows)",
    }
