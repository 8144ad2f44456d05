"""Model report: hold-out metrics, explanations, fairness and the search, as JSON data and one HTML file.

:func:`build_report` takes a pipeline (fitted or not) or a configuration and a :class:`Dataset` and
returns a :class:`ModelReport` whose ``data`` is plain JSON (numbers, lists, strings); HTML is drawn
from that data alone (:func:`render_report`), so a stored JSON report can be rendered again.

Methods (also stated in the report itself):

* **Evaluation** -- with a test split (``test=``, or ``SearchResult.extra["test"]``) the final
  pipeline (fitted on the dataset unless already fitted) predicts the test rows. Without one the
  pipeline is cloned and :func:`sklearn.model_selection.cross_val_predict` gives out-of-fold
  probabilities over stratified folds (``folds``; default 5, or 3 above 5,000 rows to bound the time);
  predictions are the arg-max of those probabilities. Metrics:
  accuracy, balanced accuracy, macro and per-class precision / recall / F1, ROC-AUC (binary; one-vs-rest
  macro for multiclass), log loss, confusion matrix and ROC curves.
* **Calibration** -- binary: :func:`sklearn.calibration.calibration_curve` of the positive class
  (uniform bins). Multiclass: one one-vs-rest curve per class (``y == k`` against ``P(k)``) plus the
  top-label curve (confidence ``max_k P(k)`` against "prediction is right"). Each curve has its
  expected calibration error (ECE: count-weighted mean gap between bin confidence and bin frequency).
* **Explanations** -- computed on the final pipeline over a stratified subsample of at most
  ``sample_size`` rows of the test split (or, without one, of the rows the final model was fitted on,
  so they show what the model uses rather than what generalises):

  - permutation importance of the *original* columns (the whole pipeline is permuted through);
  - partial dependence (:func:`sklearn.inspection.partial_dependence`, brute force on the pipeline)
    of the most important numeric columns, over a quantile grid of their observed (non-missing) values;
  - SHAP values with ``shap``'s model-agnostic Permutation explainer on the *raw* columns: categorical
    columns are coded as integers for SHAP (missing is its own code) and decoded back to strings
    before ``pipeline.predict_proba``, so any pipeline with categorical columns works and every value
    belongs to an original column. The masker is ``shap.maskers.Independent`` over a background
    sample of training rows; the explained output is the probability of the positive class (binary)
    or of each class (multiclass). Values are additive: ``base + sum(values) == P(x)``. The number of
    explained rows and permutations is reduced to fit ``shap_seconds`` (estimated from the model's
    measured prediction speed, after one throw-away row that triggers numba's compilation inside shap);
  - LIME (``lime_tabular``) for the same individual predictions when SHAP is unavailable, failed or
    does not fit the time budget (``lime="auto"``), or always with ``lime=True``;
  - a global surrogate: a depth-``surrogate_depth`` decision tree trained on the final model's
    predictions (numeric columns as they are, categorical ones as indicators of their most frequent
    levels), with its fidelity (agreement with the model) on held-out and on all rows used.
* **Fairness** -- for each sensitive column (numeric ones with more than 10 values are cut into
  quartiles; missing is a group) per-group metrics (fairlearn ``MetricFrame``) and the
  demographic-parity and equalized-odds differences of the evaluation predictions. Binary: for the
  positive class. Multiclass: one-vs-rest for every class ("predicted == k" against "is k"); the
  summary is the largest difference over the classes. Differences above ``fairness_threshold``
  raise a warning.
* **Search** -- trials (origin ``warm_start`` / ``smac_initial`` / ``smac`` / ``random``), best score
  over trials and over time, and the neighbour datasets of the warm start with their distances (from a
  :class:`SearchResult`, or from the knowledge base: runs of the search, neighbours recomputed from
  the current knowledge base).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metalearn.datasets import Dataset, stratified_subsample
from metalearn.errors import MetalearnError

__all__ = ["SECTIONS", "ModelReport", "ReportOptions", "build_report", "render_report", "report_for_model",
           "report_for_search"]

#: Section ids, in page order (``lime`` and ``fairness`` only when used).
SECTIONS = ("metrics", "confusion-matrix", "calibration", "permutation-importance", "partial-dependence", "shap",
            "lime", "surrogate", "fairness", "search")
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json"}
REPORT_FORMAT = "metalearn-report/1"
MISSING = "(missing)"


@dataclass
class ReportOptions:
    """Sizes and budgets of a report (defaults keep 10k rows x 50 columns under a minute)."""

    sample_size: int = 500  # rows for permutation importance, partial dependence, SHAP background pool
    folds: int | None = None  # folds of cross_val_predict without a test split; None: 5, or 3 above 5,000 rows
    seed: int = 0
    permutation_repeats: int = 5
    pdp_features: int = 4
    pdp_grid: int = 20
    shap: bool = True
    shap_rows: int = 100  # at most this many rows are explained
    shap_background: int = 50
    shap_max_permutations: int = 10
    shap_seconds: float | None = 20.0  # time budget of the SHAP step, compilation included (None: no reduction)
    n_local: int = 3  # individual predictions explained (SHAP and/or LIME)
    lime: bool | str = "auto"  # "auto": only where SHAP does not fit; True: always; False: never
    lime_samples: int = 1000
    surrogate_depth: int = 4
    surrogate_rows: int = 5000
    calibration_bins: int = 10
    fairness_threshold: float = 0.1
    positive_class: Any = None  # binary problems; default: the second of the sorted classes
    metric: str | None = None  # permutation-importance scoring; default: the search's metric or balanced accuracy

    def validate(self) -> ReportOptions:
        if self.sample_size < 10:
            raise MetalearnError(f"sample_size must be at least 10, got {self.sample_size}")
        if self.folds is not None and self.folds < 2:
            raise MetalearnError(f"folds must be at least 2, got {self.folds}")
        if self.lime not in (True, False, "auto"):
            raise MetalearnError(f"lime must be True, False or 'auto', got {self.lime!r}")
        if not 1 <= self.surrogate_depth <= 8:
            raise MetalearnError(f"surrogate_depth must be between 1 and 8, got {self.surrogate_depth}")
        return self


@dataclass
class ModelReport:
    """A built report: ``data`` is JSON-ready; ``artifacts`` keeps in-memory objects (not serialised)."""

    data: dict[str, Any]
    artifacts: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def sections(self) -> dict[str, Any]:
        return self.data["sections"]

    @property
    def warnings(self) -> list[str]:
        return self.data["warnings"]

    def __getitem__(self, section: str) -> Any:
        return self.data["sections"][section]

    def to_json(self) -> dict[str, Any]:
        return self.data

    def to_html(self) -> str:
        return render_report(self, "html")

    def save(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write HTML or JSON (``fmt``, else from the suffix: ``.json`` is JSON, anything else HTML)."""
        path = Path(path)
        fmt = fmt or ("json" if path.suffix.lower() == ".json" else "html")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_report(self, fmt), encoding="utf-8")
        return path


def render_report(report: ModelReport | Mapping[str, Any], fmt: str = "html") -> str:
    """The report as a self-contained HTML page or as JSON text (``MEDIA_TYPES[fmt]`` is its media type).

    Accepts a :class:`ModelReport` or its ``data`` (e.g. read back from JSON); meant for the CLI and for
    the HTTP API (``GET /v1/searches/{id}/report?format=html|json``).
    """
    data = report.data if isinstance(report, ModelReport) else dict(report)
    if fmt == "json":
        return json.dumps(_clean(data), allow_nan=False, indent=1)
    if fmt == "html":
        from metalearn.report_html import render_html

        return render_html(_clean(data))
    raise MetalearnError(f"unknown report format {fmt!r}; use html or json")


# ---------------------------------------------------------------------------------------------- helpers


def _clean(value: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays unwrapped, NaN and infinities as None."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _label(value: Any) -> Any:
    """A class label as JSON: ints stay ints, everything else text."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, bool | int | str) else str(value)


def _floats(values: Any, digits: int | None = None) -> list[Any]:
    array = np.asarray(values, dtype=float)
    if digits is not None:
        array = np.round(array, digits)
    return _clean(array)


def _thin(*arrays: np.ndarray, limit: int = 200) -> list[np.ndarray]:
    """At most ``limit`` evenly spaced points of aligned curves (first and last kept)."""
    n = len(arrays[0])
    if n <= limit:
        return list(arrays)
    idx = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
    return [a[idx] for a in arrays]


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, func: Callable[[], Any], warn: list[str]) -> Any:
        start = time.perf_counter()
        try:
            return func()
        except MetalearnError:
            raise
        except Exception as exc:  # one failing section must not lose the others
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warn.append(f"{name}: not computed ({type(exc).__name__}: {detail})")
            return {"error": f"{type(exc).__name__}: {detail}"}
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


def _is_fitted(estimator: Any) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
        return True
    except NotFittedError:
        return False
    except TypeError:
        return hasattr(estimator, "classes_")


def _column_roles(pipeline: Any, dataset: Dataset) -> tuple[list[str], list[str]]:
    """Numeric and categorical input columns as the pipeline's ColumnTransformer sees them."""
    pre = getattr(pipeline, "named_steps", {}).get("preprocess") if hasattr(pipeline, "named_steps") else None
    transformers = getattr(pre, "transformers_", None) or getattr(pre, "transformers", None)
    if transformers:
        roles = {name: list(cols) for name, _, cols in transformers if isinstance(cols, list | tuple)}
        if "numeric" in roles or "categorical" in roles:
            cats = [c for c in roles.get("categorical", []) if c in dataset.X.columns]
            nums = [c for c in dataset.X.columns if c not in set(cats)]
            return nums, cats
    return list(dataset.numeric), list(dataset.categorical)


def _as_xy(test: Any, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    if isinstance(test, Dataset):
        X, y = test.X, test.y
    elif isinstance(test, tuple | list) and len(test) == 2:
        X, y = test
        X = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=list(columns))
        y = pd.Series(np.asarray(y))
    else:
        raise MetalearnError("test must be a Dataset or an (X, y) pair")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise MetalearnError(f"the test split lacks columns of the dataset: {missing[:5]}")
    return X[list(columns)].reset_index(drop=True), pd.Series(y).reset_index(drop=True)


def _align_proba(proba: np.ndarray, model_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    full = np.zeros((len(proba), len(classes)))
    for j, cls in enumerate(model_classes):
        hit = np.flatnonzero(classes == cls)
        if len(hit):
            full[:, hit[0]] = proba[:, j]
    return full


# ---------------------------------------------------------------------------------------------- codec


class _Codec:
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

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        Z = np.empty((len(X), len(self.columns)))
        for j, column in enumerate(self.columns):
            values = X[column]
            if column in self.levels:
                levels = self.levels[column]
                raw = values.to_numpy(dtype=object)
                present = pd.notna(raw)
                codes = np.full(len(raw), float(len(levels)))
                text = raw[present].astype(str)
                pos = np.searchsorted(levels, text)
                pos = np.clip(pos, 0, max(len(levels) - 1, 0))
                known = levels[pos] == text if len(levels) else np.zeros(len(text), bool)
                codes[np.flatnonzero(present)[known]] = pos[known]
                Z[:, j] = codes
            else:
                Z[:, j] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
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


# ---------------------------------------------------------------------------------------------- sections


def _metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes: np.ndarray,
             positive: Any) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        log_loss,
        precision_recall_fscore_support,
        roc_auc_score,
        roc_curve,
    )

    notes = []
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=classes, average="macro",
                                                    zero_division=0)
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
            fpr, tpr = _thin(fpr, tpr)
            curves.append({"class": _label(classes[k]), "fpr": _floats(fpr, 5), "tpr": _floats(tpr, 5)})
    except ValueError as exc:
        notes.append(f"ROC-AUC undefined: {exc}")
    try:
        loss = float(log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=classes))
    except ValueError as exc:
        loss = None
        notes.append(f"log loss undefined: {exc}")
    return {
        "n": int(len(y_true)),
        "classes": [_label(c) for c in classes],
        "positive_class": _label(positive) if len(classes) == 2 else None,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "precision_macro": float(mp), "recall_macro": float(mr), "f1_macro": float(mf),
        "roc_auc": roc_auc, "roc_auc_method": "binary" if len(classes) == 2 else "one-vs-rest, macro",
        "log_loss": loss,
        "per_class": [{"class": _label(c), "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                       "support": int(s[i])} for i, c in enumerate(classes)],
        "roc_curves": curves,
        "notes": notes,
    }


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    extra = [c for c in pd.unique(y_true) if c not in set(classes.tolist())]
    labels = np.array([*classes.tolist(), *extra], dtype=classes.dtype if not extra else object)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    rows = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    return {"labels": [_label(c) for c in labels], "matrix": matrix.tolist(),
            "normalized": _floats(normalized, 4), "rows": "true class", "columns": "predicted class"}


def _curve(event: np.ndarray, prob: np.ndarray, bins: int, name: Any) -> dict[str, Any]:
    from sklearn.calibration import calibration_curve

    prob_true, prob_pred = calibration_curve(event.astype(int), prob, n_bins=bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], prob)
    counts = np.bincount(ids, minlength=bins)
    counts = counts[counts > 0]
    ece = float(np.sum(np.abs(prob_true - prob_pred) * counts) / max(counts.sum(), 1))
    return {"name": _label(name), "prob_pred": _floats(prob_pred, 5), "prob_true": _floats(prob_true, 5),
            "counts": counts.tolist(), "ece": ece}


def _calibration(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes: np.ndarray, positive: Any,
                 bins: int) -> dict[str, Any]:
    from sklearn.metrics import brier_score_loss

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


def _scoring(metric: str, n_classes: int) -> str:
    from metalearn.evaluation import METRICS, check_metric

    scorer = METRICS[check_metric(metric)]
    if scorer == "roc_auc_ovr" and n_classes == 2:
        return "roc_auc"
    return scorer


def _permutation(model: Any, X: pd.DataFrame, y: pd.Series, scoring: str, repeats: int, seed: int,
                 source: str) -> dict[str, Any]:
    from sklearn.inspection import permutation_importance

    result = permutation_importance(model, X, y, scoring=scoring, n_repeats=repeats, random_state=seed, n_jobs=1)
    order = np.argsort(-result.importances_mean, kind="stable")
    return {"scoring": scoring, "n_repeats": repeats, "n_rows": int(len(X)), "rows": source,
            "features": [{"feature": str(X.columns[i]), "mean": float(result.importances_mean[i]),
                          "std": float(result.importances_std[i]),
                          "repeats": _floats(result.importances[i], 6)} for i in order]}


def _grid(values: pd.Series, size: int) -> np.ndarray:
    finite = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if len(finite) == 0:
        return np.array([])
    unique = np.unique(finite)
    if len(unique) <= size:
        return unique
    return np.unique(np.quantile(finite, np.linspace(0.05, 0.95, size)))


def _partial_dependence(model: Any, X: pd.DataFrame, features: list[str], classes: np.ndarray, positive: Any,
                        grid_size: int) -> dict[str, Any]:
    from sklearn.inspection import partial_dependence

    out = []
    for feature in features:
        grid = _grid(X[feature], grid_size)
        if len(grid) < 2:
            continue
        result = partial_dependence(model, X, [feature], response_method="predict_proba", kind="average",
                                    custom_values={feature: grid})
        average = np.asarray(result["average"])
        model_classes = np.asarray(getattr(model, "classes_", classes))
        if average.shape[0] == 1:  # binary: scikit-learn returns P(classes_[1])
            k = 1 if model_classes[1] == positive else 0
            curve = average[0] if k == 1 else 1.0 - average[0]
            series = {str(_label(positive)): _floats(curve, 6)}
        else:
            series = {str(_label(c)): _floats(average[j], 6) for j, c in enumerate(model_classes)}
        deciles = np.nanquantile(pd.to_numeric(X[feature], errors="coerce"), np.linspace(0.1, 0.9, 9))
        out.append({"feature": feature, "grid": _floats(grid), "average": series, "deciles": _floats(deciles)})
    return {"n_rows": int(len(X)), "features": out, "output": "predicted probability",
            "method": "sklearn.inspection.partial_dependence (brute force on the whole pipeline), quantile grid "
                      "of the observed values between the 5th and 95th percentiles"}


def _local_rows(proba: np.ndarray, y_true: np.ndarray, classes: np.ndarray, n: int) -> list[tuple[int, str]]:
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


def _model_speed(predict: Callable[[np.ndarray], Any], Z: np.ndarray, rows: int) -> float:
    """Seconds per predicted row for batches of about ``rows`` rows (plus the per-call overhead)."""
    batch = Z[np.resize(np.arange(len(Z)), rows)]
    start = time.perf_counter()
    predict(batch)
    return (time.perf_counter() - start) / rows


def _shap(model: Any, codec: _Codec, X_exp: pd.DataFrame, y_exp: np.ndarray, background: pd.DataFrame,
          classes: np.ndarray, positive: Any, opts: ReportOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    import shap

    columns = codec.columns
    m = len(columns)
    model_classes = np.asarray(model.classes_)
    binary = len(model_classes) == 2
    k_pos = int(np.flatnonzero(model_classes == positive)[0]) if binary and positive in model_classes else 1

    def predict(Z: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proba = model.predict_proba(codec.decode(Z))
        return proba[:, k_pos] if binary else proba

    rng = np.random.default_rng(opts.seed)
    bg_rows = background.iloc[np.sort(rng.choice(len(background), min(opts.shap_background, len(background)),
                                                 replace=False))]
    Z_bg = codec.encode(bg_rows)
    n_rows = min(opts.shap_rows, len(X_exp))
    permutations = max(1, opts.shap_max_permutations)
    notes = []
    batch = max(10, 2 * m + 1)
    started = time.perf_counter()

    def explain(Z: np.ndarray, max_evals: int) -> Any:
        # a fresh explainer per call: it seeds numpy's global generator, which is restored afterwards
        state = np.random.get_state()
        try:
            explainer = shap.explainers.Permutation(predict, shap.maskers.Independent(Z_bg, max_samples=len(Z_bg)),
                                                    feature_names=columns, seed=opts.seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return explainer(Z, max_evals=max_evals, batch_size=batch, silent=True)
        finally:
            np.random.set_state(state)

    if opts.shap_seconds is not None:
        # one throw-away row first: numba compiles shap's masking code on first use (seconds, once per process)
        explain(Z_bg[:1], 2 * m + 1)
        per_row = _model_speed(predict, Z_bg, min(2000, len(Z_bg) * (2 * m + 1)))
        evals_rows = len(Z_bg) * (2 * m + 1)  # one antithetic permutation of one explained row
        cost = max(1.5 * evals_rows * per_row + 0.002 * m, 1e-9)  # 1.5: masking and bookkeeping overhead
        if opts.shap_seconds / cost < max(1, opts.n_local) / 2:
            raise _TooSlow(f"SHAP would take about {max(1, opts.n_local) * cost:.0f} s for {opts.n_local} rows")
        remaining = max(opts.shap_seconds - (time.perf_counter() - started), 0.25 * opts.shap_seconds)
        affordable = remaining / cost
        permutations = int(max(1, min(permutations, affordable / max(n_rows, 1))))
        fit_rows = int(min(n_rows, max(opts.n_local, affordable / permutations)))
        if fit_rows < n_rows or permutations < opts.shap_max_permutations:
            notes.append(f"reduced to {fit_rows} rows and {permutations} permutation(s) to fit the time budget "
                         f"of {opts.shap_seconds:g} s")
        n_rows = fit_rows
    # the rows to explain: the local ones first, then a stratified sample for the global summary
    proba_exp = _align_proba(model.predict_proba(X_exp), model_classes, classes)
    local = _local_rows(proba_exp, y_exp, classes, opts.n_local)
    order = [i for i, _ in local]
    rest = np.setdiff1d(np.arange(len(X_exp)), order)
    rng.shuffle(rest)
    idx = np.array(order + rest[: max(0, n_rows - len(order))].tolist(), dtype=int)
    Z = codec.encode(X_exp.iloc[idx])
    max_evals = 2 * m * permutations + 1
    explanation = explain(Z, max_evals)
    values = np.asarray(explanation.values, dtype=float)  # (n, m) or (n, m, K)
    base = np.asarray(explanation.base_values, dtype=float)  # (n,) or (n, K)
    direct = model.predict_proba(X_exp.iloc[idx])  # independent of the codec: checks the round trip too
    direct = direct[:, k_pos] if binary else direct
    additivity = float(np.max(np.abs(base + values.sum(axis=1) - direct)))
    if binary:
        mean_abs = np.abs(values).mean(axis=0)
        per_class = None
        outputs = [_label(model_classes[k_pos])]
    else:
        per_class = np.abs(values).mean(axis=0)  # (m, K)
        mean_abs = per_class.sum(axis=1)
        outputs = [_label(c) for c in model_classes]
    order_f = np.argsort(-mean_abs, kind="stable")
    global_ = [{"feature": columns[j], "mean_abs": float(mean_abs[j]),
                "per_class": None if per_class is None else _floats(per_class[j], 6)} for j in order_f]
    locals_ = []
    for pos, (row, why) in enumerate(local):
        probs = proba_exp[row]
        k_pred = int(np.argmax(probs))
        if binary:
            vals, b, out_class = values[pos], float(base[pos]), outputs[0]
        else:
            j_model = int(np.flatnonzero(model_classes == classes[k_pred])[0])
            vals, b, out_class = values[pos][:, j_model], float(base[pos][j_model]), _label(model_classes[j_model])
        top = np.argsort(-np.abs(vals), kind="stable")[:10]
        raw = X_exp.iloc[row]
        locals_.append({"row": int(row), "why": why, "true": _label(y_exp[row]), "predicted": _label(classes[k_pred]),
                        "probability": float(probs[k_pred]), "output_class": out_class, "base_value": b,
                        "output": float(b + vals.sum()),
                        "contributions": [{"feature": columns[j], "value": _clean(raw[columns[j]]),
                                           "shap": float(vals[j])} for j in top]})
    feature_values = {}
    for j in order_f[:10]:
        column = columns[j]
        if column in codec.levels:
            feature_values[column] = _clean(X_exp.iloc[idx][column].astype(object).tolist())
        else:
            feature_values[column] = _floats(pd.to_numeric(X_exp.iloc[idx][column], errors="coerce"), 6)
    data = {
        "explainer": "shap.explainers.Permutation (model-agnostic) on the raw columns; categorical columns coded "
                     "as integers for SHAP and decoded back before predict_proba",
        "masker": f"shap.maskers.Independent over {len(Z_bg)} background rows",
        "output": f"P({outputs[0]})" if binary else "P(class), one output per class",
        "outputs": outputs,
        "n_rows": int(len(idx)), "rows": [int(i) for i in idx], "n_background": int(len(Z_bg)),
        "permutations": permutations, "max_evals": max_evals,
        "features": columns,
        "global": global_,
        "local": locals_,
        "values": _floats(values, 6), "base_values": _floats(base, 6),
        "feature_values": feature_values,
        "additivity_max_error": additivity,
        "notes": notes,
    }
    return data, {"shap_values": values, "shap_base": base, "shap_rows": idx, "shap_direct": direct}


class _TooSlow(RuntimeError):
    pass


def _lime(model: Any, codec: _Codec, X_exp: pd.DataFrame, y_exp: np.ndarray, background: pd.DataFrame,
          classes: np.ndarray, rows: list[tuple[int, str]], reason: str, opts: ReportOptions) -> dict[str, Any]:
    from lime.lime_tabular import LimeTabularExplainer

    model_classes = np.asarray(model.classes_)
    train = codec.encode(background)
    medians = np.nanmedian(np.where(np.isfinite(train), train, np.nan), axis=0)
    medians = np.where(np.isfinite(medians), medians, 0.0)
    train = np.where(np.isnan(train), medians, train)

    def predict(Z: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.predict_proba(codec.decode(Z))

    explainer = LimeTabularExplainer(
        train, mode="classification", feature_names=codec.columns, class_names=[str(c) for c in model_classes],
        categorical_features=codec.categorical_index,
        categorical_names={j: codec.names(j) for j in codec.categorical_index},
        discretize_continuous=True, random_state=opts.seed)
    out = []
    proba = model.predict_proba(X_exp.iloc[[r for r, _ in rows]])
    for (row, why), probs in zip(rows, proba, strict=True):
        z = codec.encode(X_exp.iloc[[row]])[0]
        z = np.where(np.isnan(z), medians, z)
        k = int(np.argmax(probs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = explainer.explain_instance(z, predict, labels=(k,), num_features=min(10, len(codec.columns)),
                                             num_samples=opts.lime_samples)
        out.append({"row": int(row), "why": why, "true": _label(y_exp[row]), "predicted": _label(model_classes[k]),
                    "probability": float(probs[k]), "explained_class": _label(model_classes[k]),
                    "weights": [{"condition": str(cond), "weight": float(w)} for cond, w in exp.as_list(label=k)],
                    "intercept": float(exp.intercept[k]), "local_prediction": float(np.ravel(exp.local_pred)[0]),
                    "r2": float(exp.score)})
    return {"used": True, "reason": reason, "n_samples": opts.lime_samples,
            "method": "lime.lime_tabular.LimeTabularExplainer on the raw columns (categorical columns as coded "
                      "levels, missing numeric values replaced by the median for the perturbation)",
            "local": out}


class _SurrogateEncoder:
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


def _tree_nodes(tree: Any, names: list[str], classes: np.ndarray) -> list[dict[str, Any]]:
    t = tree.tree_
    nodes = []
    depth = {0: 0}
    missing = getattr(t, "missing_go_to_left", None)
    for i in range(t.node_count):
        left, right = int(t.children_left[i]), int(t.children_right[i])
        value = t.value[i][0]
        fractions = value / max(value.sum(), 1e-12)
        leaf = left == -1
        if not leaf:
            depth[left] = depth[right] = depth[i] + 1
        nodes.append({"id": i, "depth": depth[i], "leaf": leaf, "feature": None if leaf else names[t.feature[i]],
                      "threshold": None if leaf else float(t.threshold[i]),
                      "missing_go_left": None if leaf or missing is None else bool(missing[i]),
                      "left": None if leaf else left, "right": None if leaf else right,
                      "samples": int(t.n_node_samples[i]), "fractions": _floats(fractions, 4),
                      "class": _label(tree.classes_[int(np.argmax(value))])})
    return nodes


def _surrogate(model: Any, X: pd.DataFrame, numeric: list[str], categorical: list[str], classes: np.ndarray,
               y_true: np.ndarray | None, opts: ReportOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier, export_text

    if len(X) > opts.surrogate_rows:
        keep = np.sort(np.random.default_rng(opts.seed).choice(len(X), opts.surrogate_rows, replace=False))
        X = X.iloc[keep].reset_index(drop=True)
        y_true = None if y_true is None else y_true[keep]
    target = np.asarray(model.predict(X))
    encoder = _SurrogateEncoder(X, numeric, categorical)
    E = encoder(X)
    idx = np.arange(len(X))
    counts = pd.Series(target).value_counts()
    stratify = target if counts.min() >= 2 and len(counts) > 1 else None
    train, hold = train_test_split(idx, test_size=0.25, random_state=opts.seed, stratify=stratify)
    tree = DecisionTreeClassifier(max_depth=opts.surrogate_depth, min_samples_leaf=5, random_state=opts.seed)
    tree.fit(E[train], target[train])
    pred = tree.predict(E)
    holdout = np.zeros(len(X), bool)
    holdout[hold] = True
    data = {
        "max_depth": opts.surrogate_depth, "n_rows": int(len(X)), "n_train": int(len(train)),
        "n_holdout": int(len(hold)),
        "fidelity_holdout": float(np.mean(pred[hold] == target[hold])),
        "fidelity_all": float(np.mean(pred == target)),
        "accuracy_vs_truth": None if y_true is None else float(np.mean(pred == y_true)),
        "n_leaves": int(tree.get_n_leaves()), "depth": int(tree.get_depth()),
        "features": encoder.names,
        "rules": export_text(tree, feature_names=encoder.names, class_names=[str(c) for c in tree.classes_],
                             show_weights=False, decimals=3),
        "tree": _tree_nodes(tree, encoder.names, classes),
        "classes": [_label(c) for c in tree.classes_],
        "method": "DecisionTreeClassifier trained on the final model's predictions (75% of the rows; fidelity = "
                  "share of rows where tree and model agree, on the other 25% and on all rows)",
    }
    return data, {"surrogate": tree, "surrogate_encoder": encoder, "surrogate_X": X, "surrogate_target": target,
                  "surrogate_holdout": holdout}


def _groups(values: pd.Series) -> tuple[np.ndarray, str | None]:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) and values.nunique() > 10:
        cut = pd.qcut(values, 4, duplicates="drop")
        out = cut.astype(object).where(cut.notna(), MISSING).map(str).to_numpy(dtype=object)
        return out, "numeric column cut into quartiles"
    out = values.astype(object).where(values.notna(), MISSING).map(str).to_numpy(dtype=object)
    return out, None


def _fairness(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray, positive: Any,
              sensitive: pd.DataFrame, threshold: float) -> tuple[dict[str, Any], list[str]]:
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    warn = []
    binary = len(classes) == 2
    targets = [positive] if binary else list(classes)
    attributes = []
    for column in sensitive.columns:
        groups, binning = _groups(sensitive[column].reset_index(drop=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            overall = MetricFrame(metrics={"count": count, "accuracy": accuracy_score,
                                           "balanced_accuracy": balanced_accuracy_score},
                                  y_true=y_true, y_pred=y_pred, sensitive_features=groups)
            by_group = overall.by_group
            table = {str(g): {"group": str(g), "count": int(by_group.loc[g, "count"]),
                              "accuracy": float(by_group.loc[g, "accuracy"]),
                              "balanced_accuracy": float(by_group.loc[g, "balanced_accuracy"])}
                     for g in by_group.index}
            per_class = []
            for k in targets:
                yb, pb = (y_true == k).astype(int), (y_pred == k).astype(int)
                frame = MetricFrame(metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                                             "false_positive_rate": false_positive_rate},
                                    y_true=yb, y_pred=pb, sensitive_features=groups)
                rates = frame.by_group
                by_group = [{"group": str(g), "selection_rate": float(rates.loc[g, "selection_rate"]),
                             "true_positive_rate": float(rates.loc[g, "true_positive_rate"]),
                             "false_positive_rate": float(rates.loc[g, "false_positive_rate"])} for g in rates.index]
                if binary:  # one positive class: its rates sit in the group rows
                    for rate in by_group:
                        table[rate["group"]].update({key: v for key, v in rate.items() if key != "group"})
                per_class.append({
                    "class": _label(k),
                    "demographic_parity_difference": float(demographic_parity_difference(
                        yb, pb, sensitive_features=groups)),
                    "equalized_odds_difference": float(equalized_odds_difference(yb, pb, sensitive_features=groups)),
                    "by_group": by_group,
                })
        dp = [c["demographic_parity_difference"] for c in per_class
              if math.isfinite(c["demographic_parity_difference"])]
        eo = [c["equalized_odds_difference"] for c in per_class if math.isfinite(c["equalized_odds_difference"])]
        dpd = max(dp) if dp else None
        eod = max(eo) if eo else None
        flagged = [name for name, v in (("demographic parity", dpd), ("equalized odds", eod))
                   if v is not None and v > threshold]
        small = [g for g, row in table.items() if row["count"] < 30]
        attribute = {
            "attribute": str(column), "binning": binning, "groups": list(table.values()),
            "demographic_parity_difference": dpd, "equalized_odds_difference": eod,
            "per_class": per_class, "warning": bool(flagged), "small_groups": small,
            "method": (f"binary: positive class {positive!r}" if binary else
                       "multiclass: one-vs-rest per class (predicted == k against y == k); summary = largest "
                       "difference over the classes"),
        }
        if flagged:
            message = (f"fairness: {', '.join(flagged)} difference for {column!r} above {threshold:g} "
                       f"(demographic parity {dpd:.3f}, equalized odds "
                       f"{'n/a' if eod is None else f'{eod:.3f}'})")
            attribute["message"] = message
            warn.append(message)
        attributes.append(attribute)
    return {"threshold": threshold, "attributes": attributes,
            "predictions": "evaluation predictions (test split or out-of-fold)"}, warn


# ---------------------------------------------------------------------------------------------- search


def _search_summary(trials: list[dict[str, Any]], metric: str | None) -> dict[str, Any]:
    best, best_trial = -math.inf, None
    trajectory = []
    for t in trials:
        if t.get("status") == "success" and t.get("score") is not None and t["score"] > best:
            best, best_trial = t["score"], t
        trajectory.append({"trial": t["trial"], "elapsed": t.get("elapsed"),
                           "best_so_far": None if best_trial is None else float(best)})
    origins: dict[str, int] = {}
    for t in trials:
        origins[t["origin"]] = origins.get(t["origin"], 0) + 1
    warm = [t["trial"] for t in trials if t["origin"] == "warm_start"]
    warm_scores = [t["score"] for t in trials if t["origin"] == "warm_start" and t.get("score") is not None
                   and t.get("status") == "success"]
    return {"metric": metric, "n_trials": len(trials), "trials": trials, "trajectory": trajectory,
            "origins": origins, "warm_start_trials": warm,
            "best_warm_start_score": max(warm_scores) if warm_scores else None,
            "best": None if best_trial is None else {"trial": best_trial["trial"], "score": best_trial["score"],
                                                     "origin": best_trial["origin"],
                                                     "algorithm": best_trial.get("algorithm")},
            "best_from_warm_start": None if best_trial is None else best_trial["origin"] == "warm_start"}


def search_section_from_result(result: Any) -> dict[str, Any]:
    """The ``search`` section from a :class:`~metalearn.warmstart.search.SearchResult`."""
    trials = [{"trial": t.number, "origin": t.origin, "algorithm": t.algorithm, "status": t.status,
               "score": t.score, "seconds": t.seconds, "elapsed": t.elapsed} for t in result.trials]
    data = {"source": "search result", "search_id": result.search_id, "strategy": result.settings.strategy,
            "status": result.status, "settings": asdict(result.settings),
            **_search_summary(trials, result.settings.metric)}
    rec = result.recommendations
    if rec is not None:
        data["neighbors"] = [{"dataset": n.name, "dataset_id": n.dataset_id, "family": n.family,
                              "distance": float(n.distance)} for n in rec.neighbors]
        data["neighbors_source"] = "used by this search"
        data["far_from_knowledge_base"] = bool(rec.far)
    else:
        data["neighbors"] = []
        data["neighbors_source"] = "none (not a warm-started search)"
    return data


def search_section_from_kb(kb: Any, search_id: int, *, neighbors: bool = True) -> dict[str, Any]:
    """The ``search`` section from the knowledge base (runs of the search; neighbours recomputed)."""
    search = kb.search(search_id)
    runs = kb.runs_frame(search_id=search_id)
    started = pd.Timestamp(search["started_at"]) if search.get("started_at") is not None else None
    trials = []
    for number, run in enumerate(runs.itertuples(), start=1):
        key = str(run.run_key or "")
        suffix = key.rsplit(":", 1)[-1] if key else ""
        elapsed = None
        if started is not None and run.created_at is not None:
            elapsed = max(0.0, (pd.Timestamp(run.created_at) - started).total_seconds())
        trials.append({"trial": int(suffix) if suffix.isdigit() else number, "origin": run.origin,
                       "algorithm": run.algorithm, "status": run.status,
                       "score": None if pd.isna(run.score) else float(run.score), "seconds": float(run.seconds),
                       "elapsed": elapsed, "run_id": int(run.id)})
    trials.sort(key=lambda t: (t["trial"], t["run_id"]))
    settings = search.get("settings") or {}
    metric = settings.get("metric") or (runs["metric"].iloc[0] if len(runs) else None)
    data = {"source": "knowledge base", "search_id": search_id, "strategy": search["strategy"],
            "status": search["status"], "settings": settings, "dataset_id": search["dataset_id"],
            **_search_summary(trials, metric), "neighbors": [],
            "neighbors_source": "none (not a warm-started search)"}
    if neighbors and search["strategy"] == "warm":
        try:
            data["neighbors"], data["neighbors_source"] = _kb_neighbors(kb, search["dataset_id"], settings)
        except Exception as exc:  # the knowledge base may lack meta-features; the rest of the section stands
            data["neighbors_source"] = f"not available ({type(exc).__name__}: {exc})"
    return data


def _kb_neighbors(kb: Any, dataset_id: int, settings: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    from metalearn.metafeatures import EXTRACTOR_VERSION
    from metalearn.warmstart.recommend import Recommender

    features = kb.metafeatures(dataset_id, EXTRACTOR_VERSION)
    if features is None:
        return [], f"not available (no {EXTRACTOR_VERSION} meta-features for dataset {dataset_id})"
    info = kb.dataset(dataset_id)
    recommender = Recommender(kb, settings.get("metric") or "balanced_accuracy")
    found = recommender.neighbors(features, int(settings.get("k") or 5), exclude_hashes={info.content_hash})
    source = "recomputed from the current knowledge base (runs added since the search may change them)"
    if not found:
        source += ": it holds no other dataset with runs and meta-features"
    return ([{"dataset": n.name, "dataset_id": n.dataset_id, "family": n.family, "distance": float(n.distance)}
             for n in found], source)


# ---------------------------------------------------------------------------------------------- build


def _sensitive_frame(sensitive: Any, eval_X: pd.DataFrame, extra: pd.DataFrame | None) -> pd.DataFrame | None:
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


def build_report(model: Any, dataset: Dataset, *, test: Any = None, search: Any = None, kb: Any = None,
                 search_id: int | None = None, sensitive: Any = None, sensitive_data: pd.DataFrame | None = None,
                 options: ReportOptions | None = None, title: str | None = None,
                 configuration: Mapping[str, Any] | None = None, **overrides: Any) -> ModelReport:
    """Evaluate and explain ``model`` on ``dataset`` (see the module docstring for the methods).

    ``model`` is a pipeline (fitted on ``dataset`` or not) or a configuration of the search space.
    ``test`` (a Dataset or ``(X, y)``) is a hold-out split; without it, out-of-fold predictions are used.
    ``search`` (a SearchResult) or ``kb`` + ``search_id`` add the search section. ``sensitive`` is a
    column name or list of names (looked up in the evaluation rows, then in ``sensitive_data``, a frame
    aligned with them) or a Series / DataFrame of values aligned with the evaluation rows.
    ``configuration`` names the search-space configuration of a given pipeline (shown in the report).
    ``overrides`` are :class:`ReportOptions` fields.
    """
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    opts = options or ReportOptions()
    if overrides:
        unknown = set(overrides) - set(ReportOptions.__dataclass_fields__)
        if unknown:
            raise MetalearnError(f"unknown report options: {', '.join(sorted(unknown))}")
        opts = ReportOptions(**{**asdict(opts), **overrides})
    opts.validate()
    start = time.perf_counter()
    warn: list[str] = []
    timer = _Timer()
    sections: dict[str, Any] = {}
    artifacts: dict[str, Any] = {}

    configuration = dict(configuration) if configuration is not None else None
    if isinstance(model, Mapping):
        from metalearn.space import build_pipeline

        configuration = dict(model)
        model = build_pipeline(configuration, dataset.numeric, dataset.categorical, n_features=dataset.n_features,
                               random_state=opts.seed)
    if not hasattr(model, "predict_proba"):
        raise MetalearnError(f"{type(model).__name__} has no predict_proba; the report needs probabilities")
    if search is not None and configuration is None and search.best is not None:
        configuration = search.best.configuration
    fitted = _is_fitted(model)
    numeric, categorical = _column_roles(model, dataset)
    columns = list(dataset.X.columns)
    X, y = dataset.X, dataset.y
    metric = opts.metric or (search.settings.metric if search is not None else None) or "balanced_accuracy"
    if test is None and search is not None:
        test = (getattr(search, "extra", None) or {}).get("test")

    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        # ------------------------------------------------------------ evaluation
        t0 = time.perf_counter()
        if test is not None:
            X_eval, y_eval = _as_xy(test, columns)
            final = model if fitted else clone(model).fit(X, y)
            classes = np.asarray(final.classes_)
            proba = _align_proba(final.predict_proba(X_eval), np.asarray(final.classes_), classes)
            evaluation = {"method": "test split", "n_rows": int(len(X_eval)),
                          "model": "the final pipeline" + ("" if fitted else " fitted on the dataset")}
        else:
            from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

            X_eval, y_eval = X, y
            min_count = int(y.value_counts().min())
            folds = opts.folds or (5 if len(X) <= 5000 else 3)
            n_splits = max(2, min(folds, min_count))
            cv = (StratifiedKFold(n_splits, shuffle=True, random_state=opts.seed) if min_count >= 2
                  else KFold(n_splits, shuffle=True, random_state=opts.seed))
            classes = np.unique(y.to_numpy())
            proba = cross_val_predict(clone(model), X, y, cv=cv, method="predict_proba", n_jobs=1)
            final = model if fitted else clone(model).fit(X, y)
            evaluation = {"method": "cross-validated predictions",
                          "detail": f"cross_val_predict(method='predict_proba') over {n_splits} "
                                    f"{'stratified ' if min_count >= 2 else ''}folds of a clone of the pipeline; "
                                    "explanations use the pipeline fitted on all rows",
                          "folds": n_splits, "n_rows": int(len(X))}
            if min_count < 2:
                warn.append("a class has a single row: plain (not stratified) folds were used")
        timer.seconds["evaluation"] = round(time.perf_counter() - t0, 3)
        y_true = np.asarray(y_eval.to_numpy())
        y_pred = classes[np.argmax(proba, axis=1)]
        positive = opts.positive_class if opts.positive_class is not None else (
            classes[1] if len(classes) == 2 else None)
        if len(classes) == 2 and positive not in set(classes.tolist()):
            raise MetalearnError(f"positive class {positive!r} is not one of {classes.tolist()}")
        artifacts.update(model=final, y_true=y_true, y_pred=y_pred, proba=proba, classes=classes,
                         X_eval=X_eval)

        sections["metrics"] = timer.run("metrics", lambda: _metrics(y_true, y_pred, proba, classes, positive), warn)
        sections["confusion-matrix"] = timer.run("confusion-matrix", lambda: _confusion(y_true, y_pred, classes),
                                                 warn)
        sections["calibration"] = timer.run(
            "calibration", lambda: _calibration(y_true, y_pred, proba, classes, positive, opts.calibration_bins), warn)

        # ------------------------------------------------------------ explanations on a subsample
        rows_source = ("the test split" if test is not None else
                       "the rows the final model was fitted on (no test split: importances show what the model "
                       "uses, not what generalises)")
        X_sub, y_sub = stratified_subsample(X_eval.reset_index(drop=True), y_eval.reset_index(drop=True),
                                            opts.sample_size, opts.seed)
        artifacts.update(X_sub=X_sub, y_sub=y_sub)
        scoring = _scoring(metric, len(classes))
        perm = timer.run("permutation-importance", lambda: _permutation(
            final, X_sub, y_sub, scoring, opts.permutation_repeats, opts.seed, rows_source), warn)
        sections["permutation-importance"] = perm
        ranked = [f["feature"] for f in perm.get("features", [])] or columns
        top_numeric = [c for c in ranked if c in set(numeric)][: opts.pdp_features]
        sections["partial-dependence"] = timer.run("partial-dependence", lambda: _partial_dependence(
            final, X_sub, top_numeric, classes, positive, opts.pdp_grid), warn)

        codec = _Codec([X, X_eval], columns, categorical)
        background = stratified_subsample(X, y, opts.sample_size, opts.seed + 1)[0]
        y_sub_arr = np.asarray(y_sub.to_numpy())
        lime_reason = "requested (lime=True)" if opts.lime is True else None
        shap_data: dict[str, Any]
        if not opts.shap:
            shap_data = {"skipped": "disabled (shap=False)"}
            lime_reason = lime_reason or "SHAP disabled"
        else:
            def run_shap() -> dict[str, Any]:
                data, extra = _shap(final, codec, X_sub, y_sub_arr, background, classes, positive, opts)
                artifacts.update(extra)
                return data

            t1 = time.perf_counter()
            try:
                shap_data = run_shap()
            except ImportError as exc:
                shap_data = {"skipped": f"shap is not installed ({exc})"}
                lime_reason = lime_reason or "shap is not installed"
            except _TooSlow as exc:
                shap_data = {"skipped": f"too slow for the time budget: {exc}"}
                lime_reason = lime_reason or "SHAP does not fit the time budget for this model"
            except Exception as exc:
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                shap_data = {"error": f"{type(exc).__name__}: {detail}"}
                warn.append(f"shap: not computed ({type(exc).__name__}: {detail})")
                lime_reason = lime_reason or "SHAP failed for this pipeline"
            timer.seconds["shap"] = round(time.perf_counter() - t1, 3)
        sections["shap"] = shap_data
        if opts.lime is not False and lime_reason is not None:
            def run_lime() -> dict[str, Any]:
                proba_sub = _align_proba(final.predict_proba(X_sub), np.asarray(final.classes_), classes)
                rows = _local_rows(proba_sub, y_sub_arr, classes, opts.n_local)
                return _lime(final, codec, X_sub, y_sub_arr, background, classes, rows, lime_reason, opts)

            sections["lime"] = timer.run("lime", run_lime, warn)

        def run_surrogate() -> dict[str, Any]:
            data, extra = _surrogate(final, X_eval.reset_index(drop=True), numeric, categorical, classes,
                                     y_true, opts)
            artifacts.update(extra)
            return data

        sections["surrogate"] = timer.run("surrogate", run_surrogate, warn)

        # ------------------------------------------------------------ fairness
        sens = _sensitive_frame(sensitive, X_eval, sensitive_data)
        if sens is not None:
            def run_fairness() -> dict[str, Any]:
                data, extra_warn = _fairness(y_true, y_pred, classes, positive, sens, opts.fairness_threshold)
                warn.extend(extra_warn)
                return data

            artifacts["sensitive"] = sens
            sections["fairness"] = timer.run("fairness", run_fairness, warn)

    # ---------------------------------------------------------------- search
    if search is not None:
        sections["search"] = timer.run("search", lambda: search_section_from_result(search), warn)
    elif kb is not None and search_id is not None:
        sections["search"] = timer.run("search", lambda: search_section_from_kb(kb, int(search_id)), warn)
    else:
        sections["search"] = {"available": False,
                              "note": "no search information (give a SearchResult, or a knowledge base and a "
                                      "search id)"}

    from metalearn import __version__
    from metalearn.space import algorithm_of

    algorithm = None
    if configuration is not None:
        try:
            algorithm = algorithm_of(configuration)
        except Exception:  # an unusual configuration: the report still stands without the name
            algorithm = None
    steps = [f"{name}: {type(step).__name__}" if step != "passthrough" else f"{name}: passthrough"
             for name, step in getattr(final, "steps", [])]
    meta = {
        "format": REPORT_FORMAT,
        "title": title or f"Model report: {dataset.name}",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "metalearn_version": __version__,
        "dataset": {"name": dataset.name, "target": dataset.target, "n_rows": dataset.n_rows,
                    "n_features": dataset.n_features, "n_classes": int(len(classes)),
                    "n_categorical": len(categorical), "content_hash": dataset.content_hash},
        "model": {"algorithm": algorithm, "configuration": configuration, "steps": steps,
                  "estimator": type(final).__name__, "was_fitted": fitted},
        "evaluation": evaluation,
        "metric": metric,
        "sampling": {"sample_size": opts.sample_size, "explanation_rows": int(len(X_sub)),
                     "of_rows": int(len(X_eval)), "rows": rows_source,
                     "note": f"permutation importance, partial dependence and SHAP use a stratified subsample of "
                             f"{len(X_sub)} of {len(X_eval)} rows"},
        "options": asdict(opts),
    }
    meta["seconds"] = round(time.perf_counter() - start, 3)
    meta["timings"] = timer.seconds
    data = _clean({"meta": meta, "warnings": warn, "sections": sections})
    return ModelReport(data, artifacts)


# ---------------------------------------------------------------------------------------------- entry points


def _dataset_for_model(frame: pd.DataFrame, target: str, columns: Sequence[str] | None,
                       categorical: Sequence[str] | None, name: str) -> Dataset:
    from metalearn.datasets import from_frame

    if target not in frame.columns:
        raise MetalearnError(f"target column {target!r} not found in the data")
    columns = list(columns) if columns else [c for c in frame.columns if c != target]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MetalearnError(f"the data lacks columns the model needs: {missing[:5]}")
    return from_frame(frame[[*columns, target]], target, name, [c for c in (categorical or []) if c in columns])


def report_for_model(model: Any, metadata: Mapping[str, Any], frame: pd.DataFrame, *, target: str | None = None,
                     kb: Any = None, name: str = "dataset", **kwargs: Any) -> ModelReport:
    """Report on a saved model (``load_model``'s pair) over a raw table holding its columns and the target.

    Columns not used by the model stay available as sensitive attributes. With ``kb`` and a
    ``search_id`` in the metadata the search section comes from the knowledge base.
    """
    target = target or metadata.get("target")
    if not target:
        raise MetalearnError("the model file does not name its target column; give it (--target)")
    frame = frame.rename(columns=str)
    frame = frame[frame[target].notna()].reset_index(drop=True) if target in frame.columns else frame
    probe = Dataset(name, frame.drop(columns=[target], errors="ignore"), pd.Series(dtype=object), [])
    _, categorical = _column_roles(model, probe)
    categorical = list(metadata.get("categorical") or categorical)
    dataset = _dataset_for_model(frame, target, metadata.get("columns"), categorical, name)
    search_id = metadata.get("search_id")
    search_kw = {"kb": kb, "search_id": search_id} if kb is not None and search_id is not None else {}
    kwargs.setdefault("metric", metadata.get("metric"))
    report = build_report(model, dataset, sensitive_data=frame, configuration=metadata.get("configuration"),
                          **search_kw, **kwargs)
    if search_id is not None:
        report.data["meta"]["search_id"] = search_id
    return report


def best_configuration(kb: Any, search_id: int) -> dict[str, Any]:
    """The configuration of a search's best run (the stored best run, else the best successful one)."""
    search = kb.search(search_id)
    runs = kb.runs_frame(search_id=search_id)
    if search.get("best_run_id") is not None and (runs["id"] == search["best_run_id"]).any():
        run = runs[runs["id"] == search["best_run_id"]].iloc[0]
    else:
        ok = runs[(runs["status"] == "success") & runs["score"].notna()]
        if ok.empty:
            raise MetalearnError(f"search {search_id} has no successful trial to report on")
        run = ok.sort_values(["score", "id"], ascending=[False, True]).iloc[0]
    return json.loads(run["config_json"])


def report_for_search(kb: Any, search_id: int, frame: pd.DataFrame, *, target: str | None = None,
                      name: str | None = None, **kwargs: Any) -> ModelReport:
    """Refit a stored search's best configuration on ``frame`` (the knowledge base keeps no raw data) and report.

    The target defaults to the one recorded for the search's dataset; a table whose content differs from
    the searched dataset is reported with a warning.
    """
    from metalearn.datasets import from_frame
    from metalearn.space import build_pipeline

    search = kb.search(search_id)
    info = kb.dataset(search["dataset_id"])
    target = target or info.target
    if not target:
        raise MetalearnError(f"the knowledge base does not record the target of search {search_id}; give it")
    frame = frame.rename(columns=str)
    if target not in frame.columns:
        raise MetalearnError(f"target column {target!r} not found in the data")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    dataset = from_frame(frame, target, name or info.name)
    configuration = best_configuration(kb, search_id)
    seed = int((search.get("settings") or {}).get("seed") or 0)
    pipeline = build_pipeline(configuration, dataset.numeric, dataset.categorical, n_features=dataset.n_features,
                              random_state=seed)
    kwargs.setdefault("metric", (search.get("settings") or {}).get("metric"))
    report = build_report(pipeline, dataset, kb=kb, search_id=search_id, sensitive_data=frame,
                          configuration=configuration, **kwargs)
    report.data["meta"]["search_id"] = search_id
    if dataset.content_hash != info.content_hash:
        message = (f"the data given is not the dataset searched (content hash differs from {info.name!r} in the "
                   "knowledge base): figures describe the refitted configuration on this data")
        report.data["warnings"].append(message)
    return report
