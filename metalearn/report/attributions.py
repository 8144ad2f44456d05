"""Feature attributions of individual predictions: SHAP values (and their global summary).

SHAP works on the *raw* columns: :class:`Codec` codes categorical columns as integers for the explainer and
decodes them back to strings before ``pipeline.predict_proba`` (``predict`` for regression), so every value
belongs to an original column. LIME (:mod:`metalearn.report.lime_local`) uses the same codec.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metalearn.protocol import to_jsonable
from metalearn.report.common import MISSING, align_proba, as_floats, as_label
from metalearn.report.model import ReportOptions


class TooSlow(RuntimeError):
    """SHAP does not fit the time budget for this model."""


class Codec:
    """Raw frame <-> float matrix: categorical columns as integer codes (missing is the last code).

    SHAP and LIME perturb numbers; the pipeline receives the decoded frame with the original strings,
    so explanations are of the original columns whatever the encoding inside the pipeline.
    """

    def __init__(self, frames: Sequence[pd.DataFrame], columns: Sequence[str], categorical: Sequence[str]) -> None:
        self.columns = list(columns)
        cats = set(categorical)
        self.levels: dict[str, np.ndarray] = {}
        for column in self.columns:
            if column in cats:
                seen = pd.concat([f[column] for f in frames]).dropna().astype(str).unique()
                self.levels[column] = np.array(sorted(seen), dtype=object)
        self.categorical_index = [j for j, c in enumerate(self.columns) if c in self.levels]

    def names(self, j: int) -> list[str]:
        return [*map(str, self.levels[self.columns[j]]), MISSING]

    def _codes(self, values: pd.Series, levels: np.ndarray) -> np.ndarray:
        raw = values.to_numpy(dtype=object)
        present = pd.notna(raw)
        codes = np.full(len(raw), float(len(levels)))
        text = raw[present].astype(str)
        pos = np.searchsorted(levels, text)
        pos = np.clip(pos, 0, max(len(levels) - 1, 0))
        known = levels[pos] == text if len(levels) else np.zeros(len(text), bool)
        codes[np.flatnonzero(present)[known]] = pos[known]
        return codes

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        Z = np.empty((len(X), len(self.columns)))
        for j, column in enumerate(self.columns):
            if column in self.levels:
                Z[:, j] = self._codes(X[column], self.levels[column])
            else:
                Z[:, j] = pd.to_numeric(X[column], errors="coerce").to_numpy(dtype=float)
        return Z

    def decode(self, Z: np.ndarray) -> pd.DataFrame:
        Z = np.atleast_2d(np.asarray(Z, dtype=float))
        data: dict[str, Any] = {}
        for j, column in enumerate(self.columns):
            if column in self.levels:
                levels = np.append(self.levels[column], np.nan).astype(object)
                codes = np.nan_to_num(Z[:, j], nan=len(levels) - 1)
                data[column] = levels[np.clip(np.rint(codes).astype(int), 0, len(levels) - 1)]
            else:
                data[column] = Z[:, j]
        return pd.DataFrame(data, columns=self.columns)


def local_rows(proba: np.ndarray, y_true: np.ndarray, classes: np.ndarray, n: int) -> list[tuple[int, str]]:
    """Row positions worth explaining: most confident right, most confident wrong, least confident, ..."""
    pred = classes[proba.argmax(axis=1)]
    conf = proba.max(axis=1)
    right = np.flatnonzero(pred == y_true)
    wrong = np.flatnonzero(pred != y_true)
    chosen: list[tuple[int, str]] = []
    candidates = []
    if len(right):
        candidates.append((int(right[np.argmax(conf[right])]), "most confident correct prediction"))
    if len(wrong):
        candidates.append((int(wrong[np.argmax(conf[wrong])]), "most confident error"))
    candidates.append((int(np.argmin(conf)), "least confident prediction"))
    for i in np.argsort(-conf, kind="stable"):
        candidates.append((int(i), "confident prediction"))
    seen = set()
    for i, why in candidates:
        if i not in seen:
            chosen.append((i, why))
            seen.add(i)
        if len(chosen) >= n:
            break
    return chosen


def regression_local_rows(predicted: np.ndarray, y_true: np.ndarray, n: int) -> list[tuple[int, str]]:
    """Row positions worth explaining: largest error, most accurate, highest and lowest prediction, ..."""
    error = np.abs(y_true - predicted)
    candidates = [(int(np.argmax(error)), "largest error"), (int(np.argmin(error)), "most accurate prediction"),
                  (int(np.argmax(predicted)), "highest prediction"), (int(np.argmin(predicted)), "lowest prediction")]
    candidates += [(int(i), "large error") for i in np.argsort(-error, kind="stable")]
    chosen: list[tuple[int, str]] = []
    seen = set()
    for i, why in candidates:
        if len(chosen) >= n:
            break
        if i not in seen:
            chosen.append((i, why))
            seen.add(i)
    return chosen


def _model_speed(predict: Callable[[np.ndarray], Any], Z: np.ndarray, rows: int) -> float:
    """Seconds per predicted row for batches of about ``rows`` rows (plus the per-call overhead)."""
    batch = Z[np.resize(np.arange(len(Z)), rows)]
    start = time.perf_counter()
    predict(batch)
    return (time.perf_counter() - start) / rows


@dataclass
class _Output:
    """The explained output: P(positive class) of a binary model, P(class) of every class of a multiclass one,
    the predicted value of a regression model (``classes`` None)."""

    model: Any
    codec: Codec
    positive: Any
    regression: bool = False

    def __post_init__(self) -> None:
        self.classes = None if self.regression else np.asarray(self.model.classes_)
        self.binary = self.classes is not None and len(self.classes) == 2
        self.k_pos = (int(np.flatnonzero(self.classes == self.positive)[0])
                      if self.binary and self.positive in self.classes else 1)

    def direct(self, X: pd.DataFrame) -> np.ndarray:
        if self.regression:
            return np.asarray(self.model.predict(X), dtype=float)
        proba = self.model.predict_proba(X)
        return proba[:, self.k_pos] if self.binary else proba

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.direct(self.codec.decode(Z))


@dataclass
class _Explainer:
    """SHAP's Permutation explainer over an Independent masker of the background rows ``Z_bg``."""

    shap: Any  # the shap module
    output: _Output
    Z_bg: np.ndarray
    seed: int

    def __call__(self, Z: np.ndarray, max_evals: int) -> Any:
        # a fresh explainer per call: it seeds numpy's global generator, which is restored afterwards
        m = self.Z_bg.shape[1]
        state = np.random.get_state()
        try:
            masker = self.shap.maskers.Independent(self.Z_bg, max_samples=len(self.Z_bg))
            explainer = self.shap.explainers.Permutation(self.output, masker, feature_names=self.output.codec.columns,
                                                         seed=self.seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return explainer(Z, max_evals=max_evals, batch_size=max(10, 2 * m + 1), silent=True)
        finally:
            np.random.set_state(state)


def _fit_budget(explain: _Explainer, n_rows: int, opts: ReportOptions) -> tuple[int, int, list[str]]:
    """Rows and permutations that fit ``opts.shap_seconds`` (estimated from the model's prediction speed)."""
    started = time.perf_counter()
    Z_bg = explain.Z_bg
    m = Z_bg.shape[1]
    permutations = max(1, opts.shap_max_permutations)
    if opts.shap_seconds is None:
        return n_rows, permutations, []
    # one throw-away row first: numba compiles shap's masking code on first use (seconds, once per process)
    explain(Z_bg[:1], 2 * m + 1)
    per_row = _model_speed(explain.output, Z_bg, min(2000, len(Z_bg) * (2 * m + 1)))
    evals_rows = len(Z_bg) * (2 * m + 1)  # one antithetic permutation of one explained row
    cost = max(1.5 * evals_rows * per_row + 0.002 * m, 1e-9)  # 1.5: masking and bookkeeping overhead
    if opts.shap_seconds / cost < max(1, opts.n_local) / 2:
        raise TooSlow(f"SHAP would take about {max(1, opts.n_local) * cost:.0f} s for {opts.n_local} rows")
    remaining = max(opts.shap_seconds - (time.perf_counter() - started), 0.25 * opts.shap_seconds)
    affordable = remaining / cost
    permutations = int(max(1, min(permutations, affordable / max(n_rows, 1))))
    fit_rows = int(min(n_rows, max(opts.n_local, affordable / permutations)))
    notes = []
    if fit_rows < n_rows or permutations < opts.shap_max_permutations:
        notes.append(f"reduced to {fit_rows} rows and {permutations} permutation(s) to fit the time budget "
                     f"of {opts.shap_seconds:g} s")
    return fit_rows, permutations, notes


def _global(values: np.ndarray, output: _Output) -> tuple[list[dict[str, Any]], list[Any], np.ndarray]:
    """Mean |SHAP| per feature (per class too for multiclass), the output names and the feature order."""
    columns = output.codec.columns
    if output.binary or output.regression:
        mean_abs = np.abs(values).mean(axis=0)
        per_class = None
        outputs = ["prediction"] if output.regression else [as_label(output.classes[output.k_pos])]
    else:
        per_class = np.abs(values).mean(axis=0)  # (m, K)
        mean_abs = per_class.sum(axis=1)
        outputs = [as_label(c) for c in output.classes]
    order = np.argsort(-mean_abs, kind="stable")
    rows = [{"feature": columns[j], "mean_abs": float(mean_abs[j]),
             "per_class": None if per_class is None else as_floats(per_class[j], 6)} for j in order]
    return rows, outputs, order


def _locals(local: list[tuple[int, str]], proba: np.ndarray, values: np.ndarray, base: np.ndarray,
            classes: np.ndarray, output: _Output, X_exp: pd.DataFrame, y_exp: np.ndarray) -> list[dict[str, Any]]:
    """The individual predictions explained: the ten largest contributions towards the predicted class."""
    columns = output.codec.columns
    out = []
    for pos, (row, why) in enumerate(local):
        probs = proba[row]
        k_pred = int(np.argmax(probs))
        if output.binary:
            vals, b = values[pos], float(base[pos])
            out_class = as_label(output.classes[output.k_pos])
        else:
            j_model = int(np.flatnonzero(output.classes == classes[k_pred])[0])
            vals, b, out_class = values[pos][:, j_model], float(base[pos][j_model]), as_label(output.classes[j_model])
        top = np.argsort(-np.abs(vals), kind="stable")[:10]
        raw = X_exp.iloc[row]
        out.append({"row": int(row), "why": why, "true": as_label(y_exp[row]), "predicted": as_label(classes[k_pred]),
                    "probability": float(probs[k_pred]), "output_class": out_class, "base_value": b,
                    "output": float(b + vals.sum()),
                    "contributions": [{"feature": columns[j], "value": to_jsonable(raw[columns[j]]),
                                       "shap": float(vals[j])} for j in top]})
    return out


def _feature_values(order: np.ndarray, codec: Codec, X: pd.DataFrame) -> dict[str, list[Any]]:
    """The explained rows' values of the ten most important features (for the beeswarm's colours)."""
    values = {}
    for j in order[:10]:
        column = codec.columns[j]
        if column in codec.levels:
            values[column] = to_jsonable(X[column].astype(object).tolist())
        else:
            values[column] = as_floats(pd.to_numeric(X[column], errors="coerce"), 6)
    return values


def _regression_locals(local: list[tuple[int, str]], predicted: np.ndarray, values: np.ndarray, base: np.ndarray,
                       output: _Output, X_exp: pd.DataFrame, y_exp: np.ndarray) -> list[dict[str, Any]]:
    """The individual predictions explained: the ten largest contributions to the predicted value."""
    columns = output.codec.columns
    out = []
    for pos, (row, why) in enumerate(local):
        vals, b = values[pos], float(base[pos])
        top = np.argsort(-np.abs(vals), kind="stable")[:10]
        raw = X_exp.iloc[row]
        out.append({"row": int(row), "why": why, "true": float(y_exp[row]), "predicted": float(predicted[row]),
                    "base_value": b, "output": float(b + vals.sum()),
                    "contributions": [{"feature": columns[j], "value": to_jsonable(raw[columns[j]]),
                                       "shap": float(vals[j])} for j in top]})
    return out


def _explained_rows(output: _Output, X_exp: pd.DataFrame, y_exp: np.ndarray, classes: np.ndarray | None,
                    n_rows: int, opts: ReportOptions,
                    rng: np.random.Generator) -> tuple[list[tuple[int, str]], np.ndarray, np.ndarray]:
    """The local rows, then a random sample for the global summary; and the predictions on ``X_exp``
    (aligned probabilities, or predicted values for regression)."""
    if output.regression:
        predicted = output.direct(X_exp)
        local = regression_local_rows(predicted, np.asarray(y_exp, dtype=float), opts.n_local)
    else:
        predicted = align_proba(output.model.predict_proba(X_exp), output.classes, classes)
        local = local_rows(predicted, y_exp, classes, opts.n_local)
    order = [i for i, _ in local]
    rest = np.setdiff1d(np.arange(len(X_exp)), order)
    rng.shuffle(rest)
    return local, np.array(order + rest[: max(0, n_rows - len(order))].tolist(), dtype=int), predicted


def shap_section(model: Any, codec: Codec, X_exp: pd.DataFrame, y_exp: np.ndarray, background: pd.DataFrame,
                 classes: np.ndarray | None, positive: Any,
                 opts: ReportOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """SHAP values (Permutation explainer, Independent masker) of the local rows and a sample for the summary.

    ``classes`` None: a regression model, whose predicted value is explained.
    """
    import shap

    output = _Output(model, codec, positive, regression=classes is None)
    rng = np.random.default_rng(opts.seed)
    bg_rows = background.iloc[np.sort(rng.choice(len(background), min(opts.shap_background, len(background)),
                                                 replace=False))]
    Z_bg = codec.encode(bg_rows)
    explain = _Explainer(shap, output, Z_bg, opts.seed)
    n_rows, permutations, notes = _fit_budget(explain, min(opts.shap_rows, len(X_exp)), opts)
    local, idx, predicted = _explained_rows(output, X_exp, y_exp, classes, n_rows, opts, rng)
    max_evals = 2 * len(codec.columns) * permutations + 1
    explanation = explain(codec.encode(X_exp.iloc[idx]), max_evals)
    values = np.asarray(explanation.values, dtype=float)  # (n, m) or (n, m, K)
    base = np.asarray(explanation.base_values, dtype=float)  # (n,) or (n, K)
    direct = output.direct(X_exp.iloc[idx])  # independent of the codec: checks the round trip too
    global_, outputs, order_f = _global(values, output)
    if output.regression:
        explained = "predicted value"
        locals_ = _regression_locals(local, predicted, values, base, output, X_exp, y_exp)
    else:
        explained = f"P({outputs[0]})" if output.binary else "P(class), one output per class"
        locals_ = _locals(local, predicted, values, base, classes, output, X_exp, y_exp)
    data = {
        "explainer": "shap.explainers.Permutation (model-agnostic) on the raw columns; categorical columns coded "
                     "as integers for SHAP and decoded back before " + ("predict" if output.regression
                                                                         else "predict_proba"),
        "masker": f"shap.maskers.Independent over {len(Z_bg)} background rows",
        "output": explained,
        "outputs": outputs,
        "n_rows": int(len(idx)), "rows": [int(i) for i in idx], "n_background": int(len(Z_bg)),
        "permutations": permutations, "max_evals": max_evals,
        "features": codec.columns,
        "global": global_,
        "local": locals_,
        "values": as_floats(values, 6), "base_values": as_floats(base, 6),
        "feature_values": _feature_values(order_f, codec, X_exp.iloc[idx]),
        "additivity_max_error": float(np.max(np.abs(base + values.sum(axis=1) - direct))),
        "notes": notes,
    }
    return data, {"shap_values": values, "shap_base": base, "shap_rows": idx, "shap_direct": direct}


