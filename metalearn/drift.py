"""Data drift: a profile of a model's training data, kept in its model file, and its comparison with new data.

:func:`profile_of` summarises the training rows of a model (written into the :class:`~metalearn.model_io.ModelBundle`
when the model is saved): per numeric column its missing rate, ten quantile bins (edges and the fraction of rows
in each) and a random sample of at most :data:`SAMPLE` values (for the Kolmogorov-Smirnov test: the model file
holds these raw values, like a kNN model holds its rows); per categorical column its missing rate and category
frequencies (the :data:`MAX_CATEGORIES` most frequent ones; the rest pooled); and the dataset's meta-feature
vector when the caller has it.

:func:`compare` (``metalearn monitor``, ``POST /v1/searches/{id}/monitor``) measures, per column:

* numeric: the population stability index (PSI) over the training quantile bins and the two-sample KS test
  (statistic and p-value, :func:`scipy.stats.ks_2samp`) against the stored sample;
* categorical: PSI over the training categories (unseen ones pooled) and the chi-squared goodness-of-fit test of
  the new counts against the training frequencies (:func:`scipy.stats.chisquare`); unseen categories listed;
* both: the change of the missing rate.

A column *drifts* (``major``) when its PSI is at least 0.25, its missing rate moved by 0.2 or more, or unseen
categories make up 10 % of its rows or more; it *moved* (``minor``) when its PSI is at least 0.1, its test's
p-value is below 0.01 with an effect worth noticing (KS statistic at least 0.1, or PSI at least 0.05), its
missing rate moved by 0.05, or it has any unseen category. PSI bands are the usual credit-scoring ones
(< 0.1 stable, 0.1-0.25 moderate, > 0.25 large). When the new data has the target, the model's score on it is
compared with its training estimate (cross-validated score, or the held-out test score); when both meta-feature
vectors exist, their distance is the mean over shared features of ``|a - b| / (|a| + |b|)`` (0 same, 1 unlike).

The verdict: ``retrain`` when the score dropped by 0.05 or more, or at least 30 % of the columns drift, or the
meta-feature distance is 0.3 or more; ``watch`` when the score dropped by 0.02, any column drifts or moved, or
the meta-feature distance is 0.1 or more; ``ok`` otherwise. Each verdict comes with its reasons and a command
that retrains warm-started from the old search (its runs are in the knowledge base, so the old data is the new
data's nearest neighbour and its best pipelines lead the initial design).
"""

from __future__ import annotations

import math
import shlex
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from metalearn.datasets import as_text
from metalearn.errors import MetalearnError
from metalearn.evaluation import score_model
from metalearn.metafeatures import extract_metafeatures
from metalearn.model_io import ModelBundle
from metalearn.protocol import METRICS, task_of, to_jsonable

PROFILE_FORMAT = "metalearn-profile/1"
BINS = 10
SAMPLE = 1000
MAX_CATEGORIES = 200
EPS = 1e-4
PSI_MINOR, PSI_MAJOR = 0.1, 0.25
P_VALUE = 0.01
MISSING_MINOR, MISSING_MAJOR = 0.05, 0.2
UNSEEN_MAJOR = 0.1
DROP_WATCH, DROP_RETRAIN = 0.02, 0.05
DRIFTING_SHARE_RETRAIN = 0.3
META_WATCH, META_RETRAIN = 0.1, 0.3
VERDICTS = ("ok", "watch", "retrain")


# ---------------------------------------------------------------------------------------------- profile

def _numeric_profile(values: pd.Series, rng: np.random.Generator, sample: int) -> dict[str, Any]:
    present = values.dropna().to_numpy(dtype=float)
    profile: dict[str, Any] = {"kind": "numeric", "missing_rate": float(values.isna().mean()), "n": int(len(present))}
    if not len(present):
        return profile | {"edges": [], "fractions": [], "sample": []}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    kept = present if len(present) <= sample else rng.choice(present, sample, replace=False)
    return profile | {"edges": edges.tolist(), "fractions": (counts / counts.sum()).tolist(),
                      "sample": np.sort(kept).tolist(), "mean": float(present.mean()), "std": float(present.std())}


def _categorical_profile(values: pd.Series) -> dict[str, Any]:
    text = as_text(values)
    counts = text.dropna().value_counts()
    n = int(counts.sum())
    top = counts.head(MAX_CATEGORIES)
    return {"kind": "categorical", "missing_rate": float(text.isna().mean()), "n": n,
            "frequencies": {str(k): float(v / n) for k, v in top.items()} if n else {},
            "other_fraction": float((n - top.sum()) / n) if n else 0.0, "n_categories": int(len(counts))}


def profile_of(X: pd.DataFrame, categorical: Sequence[str], *, metafeatures: dict[str, Any] | None = None,
               reference: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """The distribution profile of training rows ``X`` (see the module docstring).

    ``reference`` records what the model scored in training (``metric``, ``score``, ``source``), for the score
    drop; ``metafeatures`` the dataset's meta-feature vector.
    """
    rng = np.random.default_rng(seed)
    cats = set(categorical)
    numeric = [c for c in X.columns if c not in cats]
    sample = max(100, min(SAMPLE, 200_000 // max(1, len(numeric))))
    columns = {str(c): (_categorical_profile(X[c]) if c in cats else _numeric_profile(X[c], rng, sample))
               for c in X.columns}
    return to_jsonable({"format": PROFILE_FORMAT, "n_rows": int(len(X)), "columns": columns,
                        "metafeatures": metafeatures, "reference": reference})


# ---------------------------------------------------------------------------------------------- comparison

def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (fractions, smoothed by ``EPS``)."""
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_drift(stored: dict[str, Any], values: pd.Series) -> dict[str, Any]:
    numbers = pd.to_numeric(values.astype(object).where(values.notna(), np.nan), errors="coerce")
    present = numbers.dropna().to_numpy(dtype=float)
    out: dict[str, Any] = {"kind": "numeric", "n": int(len(present))}
    if not len(present) or not stored.get("sample"):
        return out | {"psi": None, "test": "ks", "statistic": None, "p_value": None}
    edges = np.asarray(stored["edges"], dtype=float)
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    ks = stats.ks_2samp(np.asarray(stored["sample"], dtype=float), present)
    return out | {"psi": psi(stored["fractions"], counts / counts.sum()), "test": "ks",
                  "statistic": float(ks.statistic), "p_value": float(ks.pvalue),
                  "mean": float(present.mean()), "train_mean": stored.get("mean")}


def _categorical_drift(stored: dict[str, Any], values: pd.Series) -> dict[str, Any]:
    counts = as_text(values).dropna().value_counts()
    n = int(counts.sum())
    known = stored.get("frequencies") or {}
    out: dict[str, Any] = {"kind": "categorical", "n": n}
    if not n or not known:
        return out | {"psi": None, "test": "chi2", "statistic": None, "p_value": None, "unseen": [],
                      "unseen_fraction": 0.0}
    pooled = stored.get("other_fraction", 0.0) > 0  # the training data had more categories than were kept
    unseen = [str(v) for v in counts.index if str(v) not in known]
    expected = np.array(list(known.values()) + [stored.get("other_fraction", 0.0)], dtype=float)
    observed = np.array([float(counts.get(k, 0)) for k in known] + [float(counts[unseen].sum()) if unseen else 0.0])
    smoothed = np.clip(expected, EPS, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chi = stats.chisquare(observed, smoothed / smoothed.sum() * observed.sum())
    return out | {"psi": psi(expected, observed / n), "test": "chi2", "statistic": float(chi.statistic),
                  "p_value": float(chi.pvalue),
                  "unseen": [] if pooled else unseen[:20], "n_unseen": 0 if pooled else len(unseen),
                  "unseen_fraction": 0.0 if pooled else float(counts[unseen].sum() / n) if unseen else 0.0}


def _severity(item: dict[str, Any]) -> tuple[str, list[str]]:
    """``major`` / ``minor`` / ``none`` for one column, with why."""
    major, minor = [], []
    value = item.get("psi")
    if value is not None:
        (major if value >= PSI_MAJOR else minor if value >= PSI_MINOR else []).append(f"PSI {value:.2f}")
    p, stat = item.get("p_value"), item.get("statistic")
    effect = (stat is not None and stat >= 0.1) if item["kind"] == "numeric" else (value or 0) >= 0.05
    if p is not None and p < P_VALUE and effect and not major and not minor:
        minor.append(f"{item['test'].upper()} p={p:.2g}")
    change = abs(item["missing_change"])
    (major if change >= MISSING_MAJOR else minor if change >= MISSING_MINOR else []).append(
        f"missing rate {item['train_missing_rate']:.0%} -> {item['missing_rate']:.0%}")
    unseen = item.get("unseen_fraction") or 0.0
    if unseen:
        (major if unseen >= UNSEEN_MAJOR else minor).append(f"{item['n_unseen']} unseen categories in {unseen:.0%} "
                                                            f"of rows")
    return ("major" if major else "minor" if minor else "none"), major + minor


def feature_drift(profile: dict[str, Any], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Drift figures of every profiled column present in ``frame`` (absent ones: ``status`` ``missing``)."""
    rows = []
    for column, stored in profile["columns"].items():
        if column not in frame.columns:
            rows.append({"column": column, "kind": stored["kind"], "severity": "major", "status": "missing",
                         "reasons": ["column absent from the new data"]})
            continue
        values = frame[column]
        item = (_numeric_drift if stored["kind"] == "numeric" else _categorical_drift)(stored, values)
        item |= {"column": column, "status": "present", "train_missing_rate": stored["missing_rate"],
                 "missing_rate": float(values.isna().mean())}
        item["missing_change"] = item["missing_rate"] - item["train_missing_rate"]
        item["severity"], item["reasons"] = _severity(item)
        rows.append(item)
    return rows


def metafeature_distance(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    """Mean over the features finite in both of ``|a - b| / (|a| + |b|)`` (0 when both are 0); None if none."""
    if not a or not b:
        return None
    parts = []
    for name, x in a.items():
        y = b.get(name)
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            continue
        parts.append(0.0 if x == y else abs(x - y) / (abs(x) + abs(y)))
    return float(np.mean(parts)) if parts else None


def _score(bundle: ModelBundle, frame: pd.DataFrame, target: str, metric: str) -> float | None:
    labelled = frame[frame[target].notna()]
    if labelled.empty or metric not in METRICS:
        return None
    y = labelled[target]
    classes = bundle.metadata.get("classes")
    if classes is not None:  # labels typed as in training (a CSV may read "1" where the model knows 1)
        lookup = {str(c): c for c in classes}
        y = y.map(lambda v: lookup.get(str(v), v))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return score_model(bundle.model, bundle.features(labelled), y, metric)
        except ValueError:
            return None  # e.g. labels the model never saw with a probability metric


def _verdict(features: list[dict[str, Any]], drop: float | None, distance: float | None) -> tuple[str, list[str]]:
    major = [f for f in features if f["severity"] == "major"]
    minor = [f for f in features if f["severity"] == "minor"]
    share = len(major) / len(features) if features else 0.0
    retrain, watch = [], []
    if drop is not None and drop >= DROP_RETRAIN:
        retrain.append(f"the score dropped by {drop:.3f} (>= {DROP_RETRAIN})")
    elif drop is not None and drop >= DROP_WATCH:
        watch.append(f"the score dropped by {drop:.3f} (>= {DROP_WATCH})")
    listed = ", ".join(f"{f['column']} ({'; '.join(f['reasons'])})" for f in major[:5])
    if major and share >= DRIFTING_SHARE_RETRAIN:
        retrain.append(f"{len(major)} of {len(features)} columns drift: {listed}")
    elif major:
        watch.append(f"{len(major)} of {len(features)} columns drift: {listed}")
    if minor:
        watch.append(f"{len(minor)} columns moved: " + ", ".join(f"{f['column']} ({'; '.join(f['reasons'])})"
                                                                 for f in minor[:5]))
    if distance is not None and distance >= META_RETRAIN:
        retrain.append(f"meta-feature distance {distance:.3f} (>= {META_RETRAIN})")
    elif distance is not None and distance >= META_WATCH:
        watch.append(f"meta-feature distance {distance:.3f} (>= {META_WATCH})")
    if retrain:
        return "retrain", retrain + watch
    return ("watch", watch) if watch else ("ok", ["no column drifts and the score holds"])


def retrain_command(bundle: ModelBundle, data_name: str) -> str:
    """The command that retrains on the new data, warm-started from the old search's runs."""
    meta = bundle.metadata
    parts = ["metalearn", "search", data_name, "--target", str(meta.get("target") or "TARGET")]
    task = task_of(meta)
    if task:
        parts += ["--task", task]
    if meta.get("metric"):
        parts += ["--metric", str(meta["metric"])]
    parts += ["--strategy", "warm"]
    fairness = meta.get("fairness") or {}
    if fairness.get("sensitive"):
        parts += ["--sensitive", str(fairness["sensitive"]), "--fairness", str(fairness["constraint"])]
    parts += ["--output", "model.joblib"]
    return shlex.join(parts)


def compare(bundle: ModelBundle, frame: pd.DataFrame, *, data_name: str = "NEWDATA",
            profile: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """The drift report of ``frame`` against the training profile of ``bundle`` (or ``profile``)."""
    profile = profile or bundle.profile
    if not profile or profile.get("format") != PROFILE_FORMAT:
        raise MetalearnError("this model file has no training-data profile (it was written before drift "
                             "monitoring existed): run the search again to get one")
    if frame.empty:
        raise MetalearnError("the new data has no rows")
    features = feature_drift(profile, frame)
    meta, reference = bundle.metadata, profile.get("reference") or {}
    target, metric = meta.get("target"), reference.get("metric") or meta.get("metric")
    has_target = bool(target) and target in frame.columns
    score = _score(bundle, frame, target, metric) if has_target and metric else None
    before = reference.get("score")
    drop = None if score is None or before is None else float(before - score)
    new_mf, distance = None, None
    if has_target and profile.get("metafeatures"):
        labelled = frame[frame[target].notna()]
        X = labelled[[c for c in profile["columns"] if c in labelled.columns]]
        categorical = [c for c, p in profile["columns"].items() if p["kind"] == "categorical" and c in X.columns]
        try:
            new_mf = extract_metafeatures(X, labelled[target], categorical, seed=seed,
                                          task=task_of(meta)).features
            distance = metafeature_distance(profile["metafeatures"], new_mf)
        except (MetalearnError, ValueError) as exc:
            new_mf = {"error": str(exc)}
    verdict, reasons = _verdict(features, drop, distance)
    return to_jsonable({
        "verdict": verdict, "reasons": reasons, "n_rows": int(len(frame)), "train_rows": profile.get("n_rows"),
        "features": sorted(features, key=lambda f: ({"major": 0, "minor": 1}.get(f["severity"], 2),
                                                     -(f.get("psi") or 0.0))),
        "score": {"metric": metric, "train": before, "train_source": reference.get("source"), "new": score,
                  "drop": drop, "available": score is not None,
                  "note": None if has_target else f"the new data has no target column {target!r}"},
        "metafeature_distance": distance,
        "retrain": {"recommended": verdict == "retrain", "command": retrain_command(bundle, data_name)},
        "thresholds": {"psi": [PSI_MINOR, PSI_MAJOR], "p_value": P_VALUE, "missing": [MISSING_MINOR, MISSING_MAJOR],
                       "unseen": UNSEEN_MAJOR, "score_drop": [DROP_WATCH, DROP_RETRAIN],
                       "drifting_share": DRIFTING_SHARE_RETRAIN, "metafeature_distance": [META_WATCH, META_RETRAIN]},
    })
