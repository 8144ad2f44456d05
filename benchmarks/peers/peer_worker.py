#!/usr/bin/env python3
"""Worker process of the equal wall-clock benchmark for the peer systems: FLAML, AutoGluon and HGB.

    PYTHON benchmarks/peers/peer_worker.py ARGS.json

Standalone on purpose: it never imports metalearn, so it runs in the peers virtualenv made by
``benchmarks/peers/setup.sh`` (AutoGluon 1.x pins pandas < 2.4, which this project's environment
cannot have). It needs numpy, pandas, pyarrow, scikit-learn and threadpoolctl, plus the peer's package.

The arguments (JSON, written by ``metalearn.benchmark.systems.Launcher``) name the split's
``train.parquet`` (features and the ``target`` column) and ``test.parquet`` (features only), the
``categorical`` columns, ``system``, ``options``, ``seed``, ``cores``, ``deadline`` (the parent's
wall-clock at spawn plus the budget) and ``cap`` (seconds after the spawn at which the parent kills
it), and ``task`` (``classification``, the default: balanced accuracy; ``regression``: R^2, FLAML's ``r2``,
AutoGluon's ``problem_type="regression"``, HistGradientBoostingRegressor). The worker fits within what is left
until the deadline, takes ``ready_at`` when the model is ready to predict, predicts the test part and writes
``result.json``:
``{"status": "ok", "ready_at", "finished_at", "predictions", "info", "versions"}`` or
``{"status": "crash", "error", "traceback"}``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import sys
import time
import traceback
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

MAX_NATIVE_CATEGORIES = 255  # HistGradientBoosting's limit for a native categorical feature


def plain(frame: pd.DataFrame, categorical: list[str], as_category: bool) -> pd.DataFrame:
    """Plain numpy dtypes: numbers as float64, categoricals as Python strings (missing: NaN) in object
    columns, or as pandas ``category`` when ``as_category``. No nullable extension dtypes."""
    out = pd.DataFrame(index=range(len(frame)))
    for column in frame.columns:
        values = frame[column]
        if column in categorical:
            text = np.array([v if isinstance(v, str) else (np.nan if pd.isna(v) else str(v))
                             for v in values.astype(object)], dtype=object)
            out[column] = pd.Series(text, dtype="category" if as_category else object)
        else:
            out[column] = pd.to_numeric(values, errors="coerce").astype(np.float64).to_numpy()
    return out


def regression(args: dict[str, Any]) -> bool:
    """Whether the run is a regression task."""
    return args.get("task", "classification") == "regression"


def plain_target(values: pd.Series, task: str = "classification") -> np.ndarray:
    """Class labels as a numpy array: int64 when they are whole numbers, else Python strings; a regression
    target as float64."""
    if task == "regression":
        return values.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        if np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)):
            return numbers.astype(np.int64)
    return np.array([str(v) for v in values], dtype=object)


def balanced_accuracy_metric(X_val: Any, y_val: Any, estimator: Any, labels: Any, X_train: Any, y_train: Any,
                             *args: Any, **kwargs: Any) -> tuple[float, dict[str, float]]:
    """FLAML custom metric: loss ``1 - balanced accuracy`` (FLAML has no balanced-accuracy string)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = float(balanced_accuracy_score(y_val, estimator.predict(X_val)))
    return 1.0 - score, {"balanced_accuracy": score}


def fit_flaml(args: dict[str, Any], X: pd.DataFrame, y: np.ndarray, remaining: float) -> tuple[Any, dict]:
    """FLAML ``AutoML`` with its defaults, the balanced-accuracy metric (``r2`` for regression: its loss is
    1 - R^2) and what is left of the budget."""
    from flaml import AutoML

    automl = AutoML()
    task = "regression" if regression(args) else "classification"
    automl.fit(X_train=X, y_train=y, task=task, metric="r2" if regression(args) else balanced_accuracy_metric,
               time_budget=max(1.0, remaining), n_jobs=int(args["cores"]), seed=int(args["seed"]), verbose=0)
    loss = getattr(automl, "best_loss", None)
    info = {"time_budget": max(1.0, remaining), "algorithm": getattr(automl, "best_estimator", None),
            "trials": len(getattr(automl, "config_history", None) or {}) or None,
            "cv_score": None if loss is None or not np.isfinite(loss) else 1.0 - float(loss)}
    return automl, info


def fit_autogluon(args: dict[str, Any], X: pd.DataFrame, y: np.ndarray, remaining: float) -> tuple[Any, dict]:
    """AutoGluon ``TabularPredictor`` (balanced accuracy, or ``problem_type="regression"`` with R^2; the system's
    presets and sample weighting, which regression refuses: ``balance_weight`` balances classes)."""
    from autogluon.tabular import TabularPredictor

    options, target = args.get("options") or {}, args["target"]
    if regression(args) and options.get("sample_weight"):
        raise ValueError(f"sample_weight={options['sample_weight']!r} balances classes: not for regression")
    train = X.assign(**{target: y})
    kind = {"problem_type": "regression", "eval_metric": "r2"} if regression(args) else {
        "eval_metric": "balanced_accuracy"}
    predictor = TabularPredictor(label=target, verbosity=0, path=str(Path(args["workdir"]) / "autogluon"),
                                 sample_weight=options.get("sample_weight"), **kind)
    fit_options: dict[str, Any] = {"presets": options["presets"]} if options.get("presets") else {}
    predictor.fit(train, time_limit=max(1.0, remaining), num_cpus=int(args["cores"]), num_gpus=0, **fit_options)
    info = {"time_limit": max(1.0, remaining), "algorithm": predictor.model_best,
            "models": len(predictor.model_names()), "presets": options.get("presets"),
            "sample_weight": options.get("sample_weight")}
    return predictor, info


def fit_hgb(args: dict[str, Any], X: pd.DataFrame, y: np.ndarray, remaining: float) -> tuple[Any, dict]:
    """``HistGradientBoostingClassifier`` (``...Regressor`` for regression) defaults; categoricals ordinal-encoded
    and native categorical features (one with more than 255 categories stays an ordinal number); no class
    weights. Columns with no value in the training rows are dropped (scikit-learn's binning fails on them)."""
    present = [c for c in X.columns if X[c].notna().any()]
    categorical = [c for c in present if c in set(args.get("categorical") or [])]
    numeric = [c for c in present if c not in set(categorical)]
    native = [X[c].nunique(dropna=True) <= MAX_NATIVE_CATEGORIES for c in categorical]
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                             encoded_missing_value=np.nan)
    prepare = ColumnTransformer([("categorical", encoder, categorical), ("numeric", "passthrough", numeric)])
    mask = native + [False] * len(numeric)
    estimator = HistGradientBoostingRegressor if regression(args) else HistGradientBoostingClassifier
    model = Pipeline([("prepare", prepare), ("hgb", estimator(
        categorical_features=mask if any(mask) else None, random_state=int(args["seed"])))])
    model.fit(X, y)
    return model, {"algorithm": "hist_gradient_boosting", "native_categorical": int(sum(mask))}


FITTERS = {"flaml": fit_flaml, "autogluon": fit_autogluon, "autogluon-balanced": fit_autogluon,
           "autogluon-best": fit_autogluon, "hgb": fit_hgb}
PACKAGES = ("numpy", "pandas", "scikit-learn", "flaml", "autogluon.tabular", "lightgbm", "xgboost", "catboost")


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def run(args: dict[str, Any]) -> dict[str, Any]:
    """One run: load, fit within the deadline, ``ready_at``, predictions of the test part."""
    system = args["system"]
    if system not in FITTERS:
        raise ValueError(f"unknown peer system {system!r}; choose from {', '.join(FITTERS)}")
    if args.get("cpus") and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(args["cpus"]))
    categorical = list(args.get("categorical") or [])
    as_category = system != "hgb"
    with threadpool_limits(limits=int(args["cores"])), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = pd.read_parquet(args["train"])
        test = pd.read_parquet(args["test"])
        y = plain_target(train[args["target"]], args.get("task", "classification"))
        X = plain(train.drop(columns=[args["target"]]), categorical, as_category)
        X_test = plain(test[list(X.columns)], categorical, as_category)
        model, info = FITTERS[system](args, X, y, float(args["deadline"]) - time.time())
        ready = time.time()
        predictions = np.asarray(model.predict(X_test))
    shutil.rmtree(Path(args["workdir"]) / "autogluon", ignore_errors=True)
    return {"status": "ok", "ready_at": ready, "finished_at": time.time(), "info": info,
            "predictions": predictions.tolist(), "versions": _versions()}


def _write(path: str, result: dict[str, Any]) -> None:
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, default=str), encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: peer_worker.py ARGS.json", file=sys.stderr)
        return 2
    args = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    if args.get("cap") is not None:  # every thread's stack in stderr.log 3 s before the hard cap kills us
        faulthandler.dump_traceback_later(max(1.0, args["spawned_at"] + args["cap"] - 3.0 - time.time()))
    try:
        _write(args["result"], run(args))
    except Exception as exc:  # reported to the parent as a crash, with the traceback's tail
        _write(args["result"], {"status": "crash", "error": f"{type(exc).__name__}: {exc}",
                                "traceback": traceback.format_exc()[-4000:], "finished_at": time.time()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
