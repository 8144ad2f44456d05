"""LIME (``lime_tabular``) explanations of individual predictions, on the raw columns through the SHAP codec:
class probabilities for a classifier, the predicted value for a regressor (LIME's regression mode)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from metalearn.report.attributions import Codec
from metalearn.report.common import as_label
from metalearn.report.model import ReportOptions

METHOD = ("lime.lime_tabular.LimeTabularExplainer on the raw columns (categorical columns as coded levels, missing "
          "numeric values replaced by the median for the perturbation)")


def _explainer(codec: Codec, background: pd.DataFrame, opts: ReportOptions, mode: str,
               class_names: list[str] | None) -> tuple[Any, np.ndarray]:
    """The explainer over the encoded background rows, and the medians that stand in for missing values."""
    from lime.lime_tabular import LimeTabularExplainer

    train = codec.encode(background)
    medians = np.nanmedian(np.where(np.isfinite(train), train, np.nan), axis=0)
    medians = np.where(np.isfinite(medians), medians, 0.0)
    train = np.where(np.isnan(train), medians, train)
    explainer = LimeTabularExplainer(
        train, mode=mode, feature_names=codec.columns, class_names=class_names,
        categorical_features=codec.categorical_index,
        categorical_names={j: codec.names(j) for j in codec.categorical_index},
        discretize_continuous=True, random_state=opts.seed)
    return explainer, medians


def _decoded(codec: Codec, predict: Callable[[pd.DataFrame], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def run(Z: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return predict(codec.decode(Z))

    return run


def _row(codec: Codec, X_exp: pd.DataFrame, row: int, medians: np.ndarray) -> np.ndarray:
    z = codec.encode(X_exp.iloc[[row]])[0]
    return np.where(np.isnan(z), medians, z)


def lime_section(model: Any, codec: Codec, X_exp: pd.DataFrame, y_exp: np.ndarray, background: pd.DataFrame,
                 rows: list[tuple[int, str]], reason: str, opts: ReportOptions) -> dict[str, Any]:
    """LIME (``lime_tabular``) for the individual predictions ``rows`` of a classifier, on the raw columns."""
    model_classes = np.asarray(model.classes_)
    explainer, medians = _explainer(codec, background, opts, "classification", [str(c) for c in model_classes])
    predict = _decoded(codec, model.predict_proba)
    out = []
    proba = model.predict_proba(X_exp.iloc[[r for r, _ in rows]])
    for (row, why), probs in zip(rows, proba, strict=True):
        z = _row(codec, X_exp, row, medians)
        k = int(np.argmax(probs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = explainer.explain_instance(z, predict, labels=(k,), num_features=min(10, len(codec.columns)),
                                             num_samples=opts.lime_samples)
        out.append({"row": int(row), "why": why, "true": as_label(y_exp[row]), "predicted": as_label(model_classes[k]),
                    "probability": float(probs[k]), "explained_class": as_label(model_classes[k]),
                    "weights": [{"condition": str(cond), "weight": float(w)} for cond, w in exp.as_list(label=k)],
                    "intercept": float(exp.intercept[k]), "local_prediction": float(np.ravel(exp.local_pred)[0]),
                    "r2": float(exp.score)})
    return {"used": True, "reason": reason, "n_samples": opts.lime_samples, "method": METHOD, "local": out}


def lime_regression_section(model: Any, codec: Codec, X_exp: pd.DataFrame, y_exp: np.ndarray,
                            background: pd.DataFrame, rows: list[tuple[int, str]], reason: str,
                            opts: ReportOptions) -> dict[str, Any]:
    """LIME in regression mode for the individual predictions ``rows`` of a regressor (its predicted value)."""
    explainer, medians = _explainer(codec, background, opts, "regression", None)
    predict = _decoded(codec, lambda X: np.asarray(model.predict(X), dtype=float))
    out = []
    predicted = np.asarray(model.predict(X_exp.iloc[[r for r, _ in rows]]), dtype=float)
    for (row, why), value in zip(rows, predicted, strict=True):
        z = _row(codec, X_exp, row, medians)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = explainer.explain_instance(z, predict, num_features=min(10, len(codec.columns)),
                                             num_samples=opts.lime_samples)
        out.append({"row": int(row), "why": why, "true": float(y_exp[row]), "predicted": float(value),
                    "weights": [{"condition": str(cond), "weight": float(w)} for cond, w in exp.as_list()],
                    "intercept": float(exp.intercept[1]), "local_prediction": float(np.ravel(exp.local_pred)[0]),
                    "r2": float(exp.score)})
    return {"used": True, "reason": reason, "n_samples": opts.lime_samples, "method": METHOD,
            "output": "predicted value", "local": out}
