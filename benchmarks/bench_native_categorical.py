"""Does native categorical handling help the gradient-boosting families? (issue #22 §2)

    python benchmarks/bench_native_categorical.py [--manifest ../shared/datasets] [--max-rows 2000] [--folds 3] \\
        [--limit N] [--jobs 1|2] [--output benchmarks/results/native_categorical] [--report-only]

One classification dataset per family among the manifest's entries with a non-empty ``categorical`` list (the
first by sorted name, so a family is not counted twice), loaded by the manifest loader and capped at ``max-rows``
rows by the seed build's stratified subsample. For each of LightGBM, XGBoost and CatBoost at its library
defaults (``default_configuration(family)``), three variants of the space's pipeline (same imputation and
scaling, the space defaults), scored by the project's cross-validation (same seeded stratified folds, balanced
accuracy, fit + predict seconds over all folds):

* ``one_hot``: the pipeline as the space builds it by default (one-hot encoding);
* ``ordinal``: the same with ordinal encoding (category codes as numbers);
* ``native``: ordinal codes declared categorical to the library (:func:`native_pipeline`): LightGBM's
  ``categorical_feature``, XGBoost's ``enable_categorical`` with ``feature_types`` (``hist``), CatBoost's
  ``cat_features`` on integer codes; an unseen category is missing (NaN; -1 for CatBoost) instead of -1.

Rows (one per dataset, ``family`` -- the library -- and ``variant``; the manifest's family: ``dataset_family``;
``max_levels`` is the largest categorical column's number of distinct values) go to ``rows.jsonl``, appended per
dataset (a killed run resumes and skips finished datasets); an error of one (dataset, family, variant) is a row
with its message, never the end of the run. ``summary.json`` and ``report.md`` (per family: mean score per
variant with a 95 % bootstrap CI over datasets, native - one_hot and native - ordinal paired with
wins/ties/losses and a Wilcoxon p-value, median seconds, and the same split by the largest categorical column's
number of levels, > 10 or not; a verdict from 5 datasets on) are written at the end and with ``--report-only``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from metalearn.datasets import ManifestEntry, read_manifest, stratified_subsample
from metalearn.evaluation import cross_validate
from metalearn.pipeline import build_pipeline
from metalearn.space import default_configuration

FAMILIES = ("lightgbm", "xgboost", "catboost")
VARIANTS = ("one_hot", "ordinal", "native")
METRIC = "balanced_accuracy"
#: a paired difference within this balanced accuracy is a tie
TIE = 1e-3
#: datasets whose largest categorical column has more levels than this are "many levels"
MANY_LEVELS = 10
BOOTSTRAP = 10_000
#: fewer datasets than this give figures but no verdict (a bootstrap CI over 1-4 datasets means little)
MIN_VERDICT = 5
DEFAULT_MANIFEST = Path("../shared/datasets")
DEFAULT_OUTPUT = Path("benchmarks/results/native_categorical")
PACKAGES = ("metalearn", "scikit-learn", "lightgbm", "xgboost", "catboost", "numpy", "pandas", "scipy")


# --------------------------------------------------------------------------------------------------
# The variants
# --------------------------------------------------------------------------------------------------
class NativeCategoricalInput(ClassifierMixin, BaseEstimator):
    """Gives ``estimator`` the encoded matrix with the columns at positions ``categorical`` declared natively:
    ``fit_params`` go to its ``fit`` (LightGBM's ``categorical_feature``, CatBoost's ``cat_features``; a
    constructor parameter would not survive sklearn's ``clone`` in CatBoost); with ``integer_frame`` the matrix
    becomes a DataFrame whose categorical columns are int64 codes, a missing code -1 (CatBoost's
    ``cat_features`` take integers or strings, not floats)."""

    def __init__(self, estimator: Any = None, categorical: Sequence[int] = (),
                 fit_params: dict[str, Any] | None = None, integer_frame: bool = False) -> None:
        self.estimator = estimator
        self.categorical = categorical
        self.fit_params = fit_params
        self.integer_frame = integer_frame

    def _input(self, X: Any) -> Any:
        if not self.integer_frame:
            return X
        frame = pd.DataFrame(np.asarray(X, dtype=float))
        for position in self.categorical:
            frame[position] = frame[position].fillna(-1).astype(np.int64)
        return frame

    def fit(self, X: Any, y: Any, **kwargs: Any) -> NativeCategoricalInput:
        self.estimator_ = clone(self.estimator).fit(self._input(X), y, **(self.fit_params or {}), **kwargs)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict_proba(self._input(X)))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def variant_config(family: str, encoding: str) -> dict[str, Any]:
    """The library-default configuration of ``family`` with categorical ``encoding`` (one_hot or ordinal)."""
    config = default_configuration(family)
    if encoding != "one_hot":
        config.pop("encoding:one_hot:min_frequency", None)
    return {**config, "encoding": encoding}


def native_pipeline(family: str, numeric: Sequence[str], categorical: Sequence[str], seed: int) -> Pipeline:
    """The space's ordinal pipeline of ``family`` with its encoded categorical columns declared to the library.

    The preprocessing puts the numeric columns first, then one code column per categorical one (the default
    feature preprocessing is ``none``); an unseen category becomes NaN (missing), which none of the libraries
    accepts as a negative code. Label encoding and class weights stay the space's (EncodedLabelsClassifier)."""
    config = variant_config(family, "ordinal")
    if config["feature_preprocessing"] != "none":
        raise ValueError("native categorical columns need the feature preprocessing 'none'")
    pipeline = build_pipeline(config, numeric, categorical, random_state=seed)
    pipeline.set_params(preprocess__categorical__encoder__unknown_value=np.nan)
    positions = list(range(len(numeric), len(numeric) + len(categorical)))
    classifier = pipeline.named_steps["classifier"]
    if family == "lightgbm":
        native = NativeCategoricalInput(classifier, positions, {"categorical_feature": positions})
        pipeline.set_params(classifier=native)
    elif family == "xgboost":  # the space's XGBoost already grows trees with tree_method="hist"
        types = ["q"] * len(numeric) + ["c"] * len(categorical)
        classifier.estimator.set_params(enable_categorical=True, feature_types=types)
    elif family == "catboost":
        native = NativeCategoricalInput(classifier.estimator, positions, {"cat_features": positions},
                                        integer_frame=True)
        classifier.set_params(estimator=native)
    else:
        raise ValueError(f"no native categorical handling for {family!r}")
    return pipeline


def variant_pipeline(family: str, variant: str, numeric: Sequence[str], categorical: Sequence[str],
                     seed: int) -> Pipeline:
    """The unfitted pipeline of one (family, variant) cell."""
    if variant == "native":
        return native_pipeline(family, numeric, categorical, seed)
    return build_pipeline(variant_config(family, variant), numeric, categorical, random_state=seed)


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------
def select_entries(manifest: Path) -> list[ManifestEntry]:
    """Classification entries with declared categorical columns, the first of each family by name."""
    chosen: dict[str, ManifestEntry] = {}
    for entry in sorted(read_manifest(manifest), key=lambda e: e.name):
        if entry.task == "classification" and entry.categorical:
            chosen.setdefault(entry.family, entry)
    return sorted(chosen.values(), key=lambda e: e.name)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def evaluate_cell(family: str, variant: str, X: pd.DataFrame, y: pd.Series, numeric: list[str],
                  categorical: list[str], folds: int, seed: int) -> dict[str, Any]:
    """Score and fit + predict seconds (all folds) of one cell; an error is recorded, not raised."""
    start = time.perf_counter()
    try:
        pipeline = variant_pipeline(family, variant, numeric, categorical, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = cross_validate(pipeline, X, y, METRIC, folds=folds, seed=seed)
    except Exception as exc:  # any library error: recorded in the row, the run goes on
        return {"status": "error", "score": None, "fold_scores": None,
                "seconds": round(time.perf_counter() - start, 3), "error": _one_line(exc)}
    return {"status": "ok", "score": float(np.mean(scores)), "fold_scores": [round(s, 6) for s in scores],
            "seconds": round(time.perf_counter() - start, 3), "error": None}


def evaluate_entry(entry: ManifestEntry, max_rows: int, folds: int, seed: int) -> list[dict[str, Any]]:
    """The nine rows of one dataset, on one thread (threadpoolctl; the libraries' own threads are 1 already)."""
    base: dict[str, Any] = {"dataset": entry.name, "dataset_family": entry.family}
    cells = [(family, variant) for family in FAMILIES for variant in VARIANTS]
    try:
        dataset = entry.load()
        X, y = stratified_subsample(dataset.X, dataset.y, max_rows, seed, task=dataset.task)
    except Exception as exc:  # an unreadable dataset is nine error rows
        error = {"status": "error", "score": None, "fold_scores": None, "seconds": None, "error": _one_line(exc)}
        return [{**base, "family": f, "variant": v, **error} for f, v in cells]
    levels = [int(X[c].nunique()) for c in dataset.categorical]
    base |= {"n_rows": int(len(X)), "n_features": int(X.shape[1]), "n_categorical": len(dataset.categorical),
             "max_levels": max(levels, default=0), "n_classes": int(y.nunique())}
    with threadpool_limits(1):
        return [{**base, "family": family, "variant": variant,
                 **evaluate_cell(family, variant, X, y, dataset.numeric, list(dataset.categorical), folds, seed)}
                for family, variant in cells]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows written so far (a line cut short by a killed run is ignored)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _progress(done: int, total: int, rows: list[dict[str, Any]]) -> str:
    seconds = sum(r["seconds"] or 0.0 for r in rows)
    by_cell = {(r["family"], r["variant"]): r for r in rows}
    parts = []
    for family in FAMILIES:
        cells = [by_cell.get((family, v)) for v in VARIANTS]
        parts.append(f"{family} " + "/".join("err" if c is None or c["status"] != "ok" else f"{c['score']:.3f}"
                                             for c in cells))
    return f"[{done}/{total}] {rows[0]['dataset']} ({seconds:.0f} s of CV): " + " | ".join(parts)


def run(entries: list[ManifestEntry], rows_path: Path, args: argparse.Namespace) -> None:
    """Evaluate ``entries`` (``jobs`` processes), appending each dataset's rows as soon as it is done."""
    total = len(entries)
    rows_path.parent.mkdir(parents=True, exist_ok=True)

    def record(rows: list[dict[str, Any]], done: int) -> None:
        with rows_path.open("a") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))
        print(_progress(done, total, rows), flush=True)

    if args.jobs <= 1:
        for done, entry in enumerate(entries, 1):
            record(evaluate_entry(entry, args.max_rows, args.folds, args.seed), done)
        return
    # spawned, so that a worker starts with no threads of its own and imports the libraries afresh
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(evaluate_entry, entry, args.max_rows, args.folds, args.seed): entry
                   for entry in entries}
        for done, future in enumerate(as_completed(futures), 1):
            entry = futures[future]
            try:
                rows = future.result()
            except Exception as exc:  # a worker died: nine error rows, the rest goes on
                error = {"status": "error", "score": None, "fold_scores": None, "seconds": None,
                         "error": _one_line(exc)}
                rows = [{"dataset": entry.name, "dataset_family": entry.family, "family": f, "variant": v, **error}
                        for f in FAMILIES for v in VARIANTS]
            record(rows, done)


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------
def bootstrap_ci(values: Iterable[float], seed: int = 0) -> list[float] | None:
    """95 % percentile bootstrap interval of the mean over the values (datasets); None without values."""
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return None
    means = data[np.random.default_rng(seed).integers(0, data.size, (BOOTSTRAP, data.size))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def paired(diffs: Sequence[float]) -> dict[str, Any]:
    """Mean paired difference with its CI, wins/ties/losses (ties within ``TIE``) and the Wilcoxon p-value."""
    d = np.asarray(diffs, dtype=float)
    p_value = None
    if np.any(np.abs(d) > 0):
        try:
            p = float(wilcoxon(d).pvalue)
            p_value = None if np.isnan(p) else round(p, 4)
        except ValueError:
            p_value = None
    return {"n": int(d.size), "mean": round(float(d.mean()), 4) if d.size else None, "ci95": bootstrap_ci(d),
            "wins": int(np.sum(d > TIE)), "ties": int(np.sum(np.abs(d) <= TIE)), "losses": int(np.sum(d < -TIE)),
            "wilcoxon_p": p_value}


def family_summary(rows: list[dict[str, Any]], family: str) -> dict[str, Any]:
    """One family's figures over the datasets where all three variants succeeded."""
    mine = [r for r in rows if r["family"] == family]
    ok = pd.DataFrame([r for r in mine if r["status"] == "ok"])
    errors = [{"dataset": r["dataset"], "variant": r["variant"], "error": r["error"]}
              for r in mine if r["status"] != "ok"]
    out: dict[str, Any] = {"n_datasets": 0, "variants": {}, "native_minus": {}, "by_levels": {}, "errors": errors}
    if ok.empty:
        return out
    scores = ok.pivot(index="dataset", columns="variant", values="score").reindex(columns=list(VARIANTS)).dropna()
    seconds = ok.pivot(index="dataset", columns="variant", values="seconds").reindex(scores.index)
    levels = ok.groupby("dataset")["max_levels"].first().reindex(scores.index)
    out["n_datasets"] = int(len(scores))
    for variant in VARIANTS:
        out["variants"][variant] = {
            "mean": round(float(scores[variant].mean()), 4) if len(scores) else None,
            "ci95": bootstrap_ci(scores[variant]),
            "median_seconds": round(float(seconds[variant].median()), 3) if len(scores) else None}
    for reference in ("one_hot", "ordinal"):
        out["native_minus"][reference] = paired(scores["native"] - scores[reference])
    for group, mask in ((f"more_than_{MANY_LEVELS}_levels", levels > MANY_LEVELS),
                        (f"at_most_{MANY_LEVELS}_levels", levels <= MANY_LEVELS)):
        part = scores[mask]
        out["by_levels"][group] = {"n": int(len(part)), **{
            f"native_minus_{reference}": paired(part["native"] - part[reference])
            for reference in ("one_hot", "ordinal")}}
    return out


def verdict(comparison: dict[str, Any], reference: str) -> str:
    """A plain sentence from a paired comparison: helps / does not help, with its mean and CI."""
    if not comparison or not comparison.get("n"):
        return f"no dataset completed all variants: no verdict against {reference}"
    mean, (low, high) = comparison["mean"], comparison["ci95"]
    figures = (f"{mean:+.4f} balanced accuracy [95 % CI {low:+.4f}, {high:+.4f}], "
               f"{comparison['wins']}/{comparison['ties']}/{comparison['losses']} W/T/L, "
               f"Wilcoxon p = {comparison['wilcoxon_p']}, n = {comparison['n']}")
    if comparison["n"] < MIN_VERDICT:
        return f"too few datasets for a verdict against {reference} (fewer than {MIN_VERDICT}): {figures}"
    if low > 0:
        return f"native helps over {reference} by {figures}"
    if high < 0:
        return f"native does not help over {reference}, it is worse: {figures}"
    return f"native does not help over {reference} (no clear difference, the CI includes 0): {figures}"


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per family figures and verdicts over the rows."""
    latest = {(r["dataset"], r["family"], r["variant"]): r for r in rows}  # a dataset run twice counts once
    rows = list(latest.values())
    families = {family: family_summary(rows, family) for family in FAMILIES}
    for summary in families.values():
        summary["verdict"] = {ref: verdict(summary["native_minus"].get(ref, {}), ref) for ref in ("one_hot", "ordinal")}
    return {"datasets": len({r["dataset"] for r in rows}), "rows": len(rows),
            "errors": sum(r["status"] != "ok" for r in rows), "families": families}


def _ci(ci: list[float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def _diff(c: dict[str, Any]) -> str:
    if not c.get("n"):
        return "n = 0"
    return (f"{c['mean']:+.4f} [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}], {c['wins']}/{c['ties']}/{c['losses']}, "
            f"p = {c['wilcoxon_p']}, n = {c['n']}")


def report(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    """report.md: verdicts, the per-variant table and the split by levels, per family."""
    lines = ["# Native categorical handling in the gradient-boosting families", "",
             f"`{meta['command']}` ({meta['generated']}); {summary['datasets']} datasets (one per family, "
             f"categorical columns declared), at most {meta['max_rows']} rows, {meta['folds']}-fold stratified CV "
             f"(seed {meta['seed']}), balanced accuracy, library defaults; {summary['errors']} of "
             f"{summary['rows']} cells failed. Means over the datasets where all three variants of the family "
             f"succeeded, 95 % bootstrap CIs over datasets; W/T/L counts native's paired wins/ties/losses (tie: "
             f"within {TIE}); seconds are fit + predict over all folds. Machine: {meta['machine']['platform']}, "
             f"{meta['machine']['cpus']} CPUs, one thread per dataset.", "", "## Verdicts", ""]
    for family, s in summary["families"].items():
        lines += [f"- **{family}**: {s['verdict']['one_hot']}; {s['verdict']['ordinal']}."]
    for family, s in summary["families"].items():
        lines += ["", f"## {family} ({s['n_datasets']} datasets)", "",
                  "| variant | mean balanced accuracy | 95 % CI | median seconds |", "|---|---|---|---|"]
        for variant, v in s["variants"].items():
            lines.append(f"| {variant} | {v['mean']} | {_ci(v['ci95'])} | {v['median_seconds']} |")
        lines += ["", "| datasets | n | native - one_hot (CI, W/T/L, p) | native - ordinal (CI, W/T/L, p) |",
                  "|---|---|---|---|"]
        overall = {"n": s["n_datasets"], **{f"native_minus_{k}": v for k, v in s["native_minus"].items()}}
        for group, g in {"all": overall, **s["by_levels"]}.items():
            lines.append(f"| {group.replace('_', ' ')} | {g['n']} | {_diff(g.get('native_minus_one_hot', {}))} | "
                         f"{_diff(g.get('native_minus_ordinal', {}))} |")
        if s["errors"]:
            lines += ["", "Errors:", ""] + [f"- {e['dataset']} / {e['variant']}: {e['error']}" for e in s["errors"]]
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    """Platform, CPUs, load and the versions of the packages that shape the results."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            continue
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "packages": packages}


def write_summary(output: Path, args: argparse.Namespace, argv: Sequence[str], seconds: float | None) -> str:
    """summary.json and report.md from rows.jsonl; returns the report."""
    rows = read_rows(output / "rows.jsonl")
    meta = {"command": shlex.join(["python", "benchmarks/bench_native_categorical.py", *argv]),
            "generated": datetime.now(UTC).isoformat(timespec="seconds"), "manifest": str(args.manifest),
            "max_rows": args.max_rows, "folds": args.folds, "seed": args.seed, "jobs": args.jobs,
            "limit": args.limit, "metric": METRIC, "tie": TIE, "many_levels": MANY_LEVELS,
            "run_seconds": None if seconds is None else round(seconds, 1), "machine": machine()}
    summary = summarise(rows)
    (output / "summary.json").write_text(json.dumps({**meta, **summary}, indent=2) + "\n")
    text = report(summary, meta)
    (output / "report.md").write_text(text)
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="a directory with manifest.json")
    parser.add_argument("--max-rows", type=int, default=2000)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="folds, subsample and libraries' seed")
    parser.add_argument("--limit", type=int, default=None, help="only the first N datasets (smoke tests)")
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=1, help="datasets in parallel processes")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--report-only", action="store_true", help="summarise rows.jsonl, run nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    rows_path = args.output / "rows.jsonl"
    started = time.perf_counter()
    seconds = None
    if not args.report_only:
        entries = select_entries(args.manifest)[:args.limit]
        finished = {r["dataset"] for r in read_rows(rows_path)}
        todo = [e for e in entries if e.name not in finished]
        print(f"{len(entries)} datasets, {len(entries) - len(todo)} already done; {len(todo)} to run "
              f"({args.jobs} process{'es' if args.jobs > 1 else ''})", flush=True)
        run(todo, rows_path, args)
        seconds = time.perf_counter() - started
    elif not rows_path.is_file():
        raise SystemExit(f"no rows at {rows_path}")
    args.output.mkdir(parents=True, exist_ok=True)
    print(write_summary(args.output, args, argv, seconds))


if __name__ == "__main__":
    main()
