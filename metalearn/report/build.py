"""Building a report: :func:`build_report` evaluates and explains a pipeline (a classifier or a regressor) on
a dataset; the entry points :func:`report_for_result`, :func:`report_for_model` and :func:`report_for_search`
start from a search result, a saved model or a stored search."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier, is_regressor
from threadpoolctl import threadpool_limits

from metalearn import __version__
from metalearn.datasets import Dataset, from_frame, stratified_subsample
from metalearn.errors import MetalearnError
from metalearn.knowledge_base import KnowledgeBase
from metalearn.model_io import ModelBundle
from metalearn.pipeline import build_pipeline
from metalearn.protocol import metric_for, task_of, to_jsonable
from metalearn.report.attributions import Codec, TooSlow, local_rows, regression_local_rows, shap_section
from metalearn.report.common import SectionTimer, align_proba, column_roles, error_text, is_fitted
from metalearn.report.evaluate import Evaluation, evaluate, positive_class
from metalearn.report.explanations import (
    partial_dependence_section,
    permutation_section,
    scoring_for,
    surrogate_section,
)
from metalearn.report.fairness import fairness_section, regression_fairness_section, sensitive_frame
from metalearn.report.lime_local import lime_regression_section, lime_section
from metalearn.report.model import REPORT_FORMAT, ModelReport, ReportOptions
from metalearn.report.regression import (
    CLASSIFICATION_ONLY,
    not_applicable,
    regression_metrics_section,
    residuals_section,
)
from metalearn.report.search import best_configuration, search_section_from_kb, search_section_from_result
from metalearn.report.sections import calibration_section, confusion_section, metrics_section
from metalearn.space import algorithm_of
from metalearn.warmstart.result import SearchResult

NO_SEARCH = {"available": False,
             "note": "no search information (give a SearchResult, or a knowledge base and a search id)"}


@dataclass
class _Context:
    """What the steps of one report share: options, warnings, timings, sections and in-memory artifacts."""

    opts: ReportOptions
    warn: list[str] = field(default_factory=list)
    timer: SectionTimer = field(default_factory=SectionTimer)
    sections: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)

    def run(self, name: str, func: Callable[[], Any]) -> Any:
        return self.timer.run(name, func, self.warn)


def _options(options: ReportOptions | None, overrides: Mapping[str, Any]) -> ReportOptions:
    opts = options or ReportOptions()
    if overrides:
        unknown = set(overrides) - set(ReportOptions.__dataclass_fields__)
        if unknown:
            raise MetalearnError(f"unknown report options: {', '.join(sorted(unknown))}")
        opts = ReportOptions(**{**asdict(opts), **overrides})
    return opts.validate()


def _classification_sections(ctx: _Context, ev: Evaluation, positive: Any) -> None:
    y_true, y_pred, proba, classes = ev.y_true, ev.y_pred, ev.proba, ev.classes
    ctx.sections["metrics"] = ctx.run("metrics", lambda: metrics_section(y_true, y_pred, proba, classes, positive))
    ctx.sections["confusion-matrix"] = ctx.run("confusion-matrix", lambda: confusion_section(y_true, y_pred, classes))
    ctx.sections["calibration"] = ctx.run("calibration", lambda: calibration_section(
        y_true, y_pred, proba, classes, positive, ctx.opts.calibration_bins))


def _regression_sections(ctx: _Context, ev: Evaluation) -> None:
    y_true, y_pred = ev.y_true, ev.y_pred
    ctx.sections["metrics"] = ctx.run("metrics", lambda: regression_metrics_section(y_true, y_pred))
    ctx.sections["residuals"] = ctx.run("residuals", lambda: residuals_section(y_true, y_pred))
    for name in CLASSIFICATION_ONLY:
        ctx.sections[name] = not_applicable(name)


def _evaluate(model: Any, fitted: bool, dataset: Dataset, test: Any, ctx: _Context) -> tuple[Evaluation, Any]:
    """Predictions, then the evaluation sections (classification: metrics, confusion matrix and calibration;
    regression: metrics and residuals); returns the positive class (None unless binary)."""
    t0 = time.perf_counter()
    ev = evaluate(model, fitted, dataset, test, ctx.opts, ctx.warn)
    ctx.timer.seconds["evaluation"] = round(time.perf_counter() - t0, 3)
    positive = positive_class(ev, ctx.opts)
    ctx.artifacts.update(model=ev.model, y_true=ev.y_true, y_pred=ev.y_pred, proba=ev.proba, classes=ev.classes,
                         X_eval=ev.X)
    if ev.task == "regression":
        _regression_sections(ctx, ev)
    else:
        _classification_sections(ctx, ev, positive)
    return ev, positive


def _shap_step(ctx: _Context, ev: Evaluation, codec: Codec, X_sub: pd.DataFrame, y_sub: np.ndarray,
               background: pd.DataFrame, positive: Any) -> tuple[dict[str, Any], str | None]:
    """The SHAP section, and why LIME should stand in (None when SHAP worked)."""
    if not ctx.opts.shap:
        return {"skipped": "disabled (shap=False)"}, "SHAP disabled"
    t1 = time.perf_counter()
    reason = None
    try:
        data, extra = shap_section(ev.model, codec, X_sub, y_sub, background, ev.classes, positive, ctx.opts)
        ctx.artifacts.update(extra)
    except ImportError as exc:
        data, reason = {"skipped": f"shap is not installed ({exc})"}, "shap is not installed"
    except TooSlow as exc:
        data = {"skipped": f"too slow for the time budget: {exc}"}
        reason = "SHAP does not fit the time budget for this model"
    except Exception as exc:
        data, reason = {"error": error_text(exc)}, "SHAP failed for this pipeline"
        ctx.warn.append(f"shap: not computed ({error_text(exc)})")
    ctx.timer.seconds["shap"] = round(time.perf_counter() - t1, 3)
    return data, reason


def _attributions(ctx: _Context, ev: Evaluation, dataset: Dataset, categorical: list[str], X_sub: pd.DataFrame,
                  y_sub: pd.Series, positive: Any) -> None:
    """SHAP, and LIME where SHAP does not serve (or always with ``lime=True``)."""
    opts = ctx.opts
    codec = Codec([dataset.X, ev.X], list(dataset.X.columns), categorical)
    background = stratified_subsample(dataset.X, dataset.y, opts.sample_size, opts.seed + 1, task=dataset.task)[0]
    y_sub_arr = np.asarray(y_sub.to_numpy())
    ctx.sections["shap"], reason = _shap_step(ctx, ev, codec, X_sub, y_sub_arr, background, positive)
    reason = "requested (lime=True)" if opts.lime is True else reason
    if opts.lime is not False and reason is not None:
        def run_lime() -> dict[str, Any]:
            if ev.task == "regression":
                predicted = np.asarray(ev.model.predict(X_sub), dtype=float)
                rows = regression_local_rows(predicted, y_sub_arr.astype(float), opts.n_local)
                return lime_regression_section(ev.model, codec, X_sub, y_sub_arr, background, rows, reason, opts)
            proba_sub = align_proba(ev.model.predict_proba(X_sub), np.asarray(ev.model.classes_), ev.classes)
            rows = local_rows(proba_sub, y_sub_arr, ev.classes, opts.n_local)
            return lime_section(ev.model, codec, X_sub, y_sub_arr, background, rows, reason, opts)

        ctx.sections["lime"] = ctx.run("lime", run_lime)


def _explain(ctx: _Context, ev: Evaluation, dataset: Dataset, roles: tuple[list[str], list[str]], metric: str,
             positive: Any) -> pd.DataFrame:
    """Permutation importance, partial dependence, SHAP / LIME and the surrogate; returns the subsample used."""
    opts, (numeric, categorical) = ctx.opts, roles
    X_sub, y_sub = stratified_subsample(ev.X.reset_index(drop=True), ev.y.reset_index(drop=True),
                                        opts.sample_size, opts.seed, task=dataset.task)
    ctx.artifacts.update(X_sub=X_sub, y_sub=y_sub)
    scoring = scoring_for(metric, 0 if ev.classes is None else len(ev.classes))
    perm = ctx.run("permutation-importance", lambda: permutation_section(
        ev.model, X_sub, y_sub, scoring, opts.permutation_repeats, opts.seed, ev.rows))
    ctx.sections["permutation-importance"] = perm
    ranked = [f["feature"] for f in perm.get("features", [])] or list(dataset.X.columns)
    top_numeric = [c for c in ranked if c in set(numeric)][: opts.pdp_features]
    ctx.sections["partial-dependence"] = ctx.run("partial-dependence", lambda: partial_dependence_section(
        ev.model, X_sub, top_numeric, ev.classes, positive, opts.pdp_grid))
    _attributions(ctx, ev, dataset, categorical, X_sub, y_sub, positive)

    def run_surrogate() -> dict[str, Any]:
        data, extra = surrogate_section(ev.model, ev.X.reset_index(drop=True), numeric, categorical, ev.y_true, opts,
                                        ev.task)
        ctx.artifacts.update(extra)
        return data

    ctx.sections["surrogate"] = ctx.run("surrogate", run_surrogate)
    return X_sub


def _fairness(ctx: _Context, ev: Evaluation, positive: Any, sensitive: Any,
              sensitive_data: pd.DataFrame | None) -> None:
    sens = sensitive_frame(sensitive, ev.X, sensitive_data)
    if sens is None:
        return

    def run_fairness() -> dict[str, Any]:
        if ev.task == "regression":
            data, extra_warn = regression_fairness_section(ev.y_true, ev.y_pred, sens, ctx.opts.fairness_threshold)
        else:
            data, extra_warn = fairness_section(ev.y_true, ev.y_pred, ev.classes, positive, sens,
                                                ctx.opts.fairness_threshold)
        ctx.warn.extend(extra_warn)
        return data

    ctx.artifacts["sensitive"] = sens
    ctx.sections["fairness"] = ctx.run("fairness", run_fairness)


def _search_section(ctx: _Context, search: SearchResult | None, kb: KnowledgeBase | None,
                    search_id: int | None) -> dict[str, Any]:
    if search is not None:
        return ctx.run("search", lambda: search_section_from_result(search))
    if kb is not None and search_id is not None:
        return ctx.run("search", lambda: search_section_from_kb(kb, int(search_id)))
    return dict(NO_SEARCH)


def _model_meta(configuration: dict[str, Any] | None, final: Any, fitted: bool) -> dict[str, Any]:
    algorithm = None
    if configuration is not None:
        try:
            algorithm = algorithm_of(configuration)
        except Exception:  # an unusual configuration: the report still stands without the name
            algorithm = None
    steps = [f"{name}: {type(step).__name__}" if step != "passthrough" else f"{name}: passthrough"
             for name, step in getattr(final, "steps", [])]
    return {"algorithm": algorithm, "configuration": configuration, "steps": steps,
            "estimator": type(final).__name__, "was_fitted": fitted}


def _meta(ctx: _Context, ev: Evaluation, dataset: Dataset, n_categorical: int, model: dict[str, Any],
          metric: str, X_sub: pd.DataFrame, title: str | None) -> dict[str, Any]:
    """The report's ``meta`` block (timings added by the caller); a regression report also has ``task``."""
    meta = {
        "format": REPORT_FORMAT,
        "title": title or f"Model report: {dataset.name}",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "metalearn_version": __version__,
        "dataset": {"name": dataset.name, "target": dataset.target, "n_rows": dataset.n_rows,
                    "n_features": dataset.n_features,
                    "n_classes": None if ev.classes is None else int(len(ev.classes)),
                    "n_categorical": n_categorical, "content_hash": dataset.content_hash},
        "model": model,
        "evaluation": ev.info,
        "metric": metric,
        "sampling": {"sample_size": ctx.opts.sample_size, "explanation_rows": int(len(X_sub)),
                     "of_rows": int(len(ev.X)), "rows": ev.rows,
                     "note": f"permutation importance, partial dependence and SHAP use a stratified subsample of "
                             f"{len(X_sub)} of {len(ev.X)} rows"},
        "options": asdict(ctx.opts),
    }
    if ev.task == "regression":  # a classification report has no task key (its format predates regression)
        meta["task"] = "regression"
        meta["sampling"]["note"] = (f"permutation importance, partial dependence and SHAP use a subsample of "
                                    f"{len(X_sub)} of {len(ev.X)} rows stratified on quantile bins of the target")
    return meta


def _check_model(model: Any, dataset: Dataset) -> None:
    """The model fits the dataset's task: a classifier with probabilities, or a regressor."""
    name = type(model).__name__
    if dataset.task == "regression":
        if is_classifier(model):
            raise MetalearnError(f"{name} is a classifier but {dataset.name!r} is a regression dataset")
        if not hasattr(model, "predict"):
            raise MetalearnError(f"{name} has no predict; the report needs predictions")
        return
    if is_regressor(model):
        raise MetalearnError(f"{name} is a regressor but {dataset.name!r} is a classification dataset "
                             "(load the data with task='regression')")
    if not hasattr(model, "predict_proba"):
        raise MetalearnError(f"{name} has no predict_proba; the report needs probabilities")


def build_report(model: Any, dataset: Dataset, *, test: Any = None, search: SearchResult | None = None,
                 kb: KnowledgeBase | None = None, search_id: int | None = None, sensitive: Any = None,
                 sensitive_data: pd.DataFrame | None = None, options: ReportOptions | None = None,
                 title: str | None = None, configuration: Mapping[str, Any] | None = None,
                 **overrides: Any) -> ModelReport:
    """Evaluate and explain ``model`` on ``dataset`` (see :mod:`metalearn.report` for the methods).

    ``model`` is a pipeline (fitted on ``dataset`` or not) or a configuration of the search space.
    ``test`` (a Dataset or ``(X, y)``) is a hold-out split; without it, out-of-fold predictions are used.
    ``search`` (a SearchResult) or ``kb`` + ``search_id`` add the search section. ``sensitive`` is a
    column name or list of names (looked up in the evaluation rows, then in ``sensitive_data``, a frame
    aligned with them) or a Series / DataFrame of values aligned with the evaluation rows.
    ``configuration`` names the search-space configuration of a given pipeline (shown in the report).
    ``overrides`` are :class:`ReportOptions` fields. The task is the dataset's (``dataset.task``): the model
    is a classifier with ``predict_proba``, or a regressor; the metric (the ``metric`` option, else the
    search's, else the task's default) must be one of the task's metrics.
    """
    ctx = _Context(_options(options, overrides))
    start = time.perf_counter()
    configuration = dict(configuration) if configuration is not None else None
    if isinstance(model, Mapping):
        configuration = dict(model)
        model = build_pipeline(configuration, dataset.numeric, dataset.categorical, n_features=dataset.n_features,
                               random_state=ctx.opts.seed)
    _check_model(model, dataset)
    if search is not None and configuration is None and search.best is not None:
        configuration = search.best.configuration
    fitted = is_fitted(model)
    roles = column_roles(model, dataset)
    metric = metric_for(dataset.task, ctx.opts.metric or (search.settings.metric if search is not None else None))
    if test is None and search is not None:
        test = (getattr(search, "extra", None) or {}).get("test")

    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        ev, positive = _evaluate(model, fitted, dataset, test, ctx)
        X_sub = _explain(ctx, ev, dataset, roles, metric, positive)
        _fairness(ctx, ev, positive, sensitive, sensitive_data)
    ctx.sections["search"] = _search_section(ctx, search, kb, search_id)
    meta = _meta(ctx, ev, dataset, len(roles[1]), _model_meta(configuration, ev.model, fitted), metric, X_sub, title)
    meta["seconds"] = round(time.perf_counter() - start, 3)
    meta["timings"] = ctx.timer.seconds
    data = to_jsonable({"meta": meta, "warnings": ctx.warn, "sections": ctx.sections})
    return ModelReport(data, ctx.artifacts)


# ---------------------------------------------------------------------------------------------- entry points


def report_for_result(result: SearchResult, dataset: Dataset, **kwargs: Any) -> ModelReport:
    """A report of a search's refitted best pipeline (or, without one, its best configuration) on ``dataset``,
    with the search section. Keyword arguments go to :func:`build_report` (``test=``, ``sensitive=``, options)."""
    model = result.model if result.model is not None else result.best_config
    if model is None:
        raise MetalearnError("this search has no successful trial to report on")
    return build_report(model, dataset, search=result, **kwargs)


def _model_task(model: Any, metadata: Mapping[str, Any]) -> str | None:
    """The task of a saved model: from its metadata (``task``, else its metric), else from the estimator's
    type; None when nothing tells (the task is then detected from the target)."""
    task = task_of(metadata)
    if task is not None:
        return task
    if is_regressor(model):
        return "regression"
    return "classification" if is_classifier(model) else None


def _model_dataset(model: Any, metadata: Mapping[str, Any], frame: pd.DataFrame, target: str,
                   name: str) -> Dataset:
    """``frame`` as the model's dataset: its columns typed by its :class:`FeatureSchema` (as at prediction time),
    for the model's task (:func:`_model_task`).

    A model file without a schema takes every column but the target, typed from the data.
    """
    if target not in frame.columns:
        raise MetalearnError(f"target column {target!r} not found in the data")
    probe = Dataset(name, frame.drop(columns=[target]), pd.Series(dtype=object), [])
    categorical = list(metadata.get("categorical") or column_roles(model, probe)[1])
    bundle = ModelBundle(model, {**metadata, "categorical": categorical})
    schema = bundle.schema
    task = _model_task(model, metadata)
    if schema is None:
        return from_frame(frame, target, name, categorical, task=task)
    X = bundle.features(frame)
    return from_frame(pd.concat([X, frame[[target]]], axis=1), target, name,
                      [c for c in schema.categorical if c in schema.columns], task=task)


def report_for_model(model: Any, metadata: Mapping[str, Any], frame: pd.DataFrame, *, target: str | None = None,
                     kb: KnowledgeBase | None = None, name: str = "dataset", **kwargs: Any) -> ModelReport:
    """Report on a saved model (``load_model``'s pair) over a raw table holding its columns and the target.

    Columns not used by the model stay available as sensitive attributes. With ``kb`` and a
    ``search_id`` in the metadata the search section comes from the knowledge base.
    """
    target = target or metadata.get("target")
    if not target:
        raise MetalearnError("the model file does not name its target column; give it (--target)")
    frame = frame.rename(columns=str)
    frame = frame[frame[target].notna()].reset_index(drop=True) if target in frame.columns else frame
    dataset = _model_dataset(model, metadata, frame, target, name)
    search_id = metadata.get("search_id")
    search_kw = {"kb": kb, "search_id": search_id} if kb is not None and search_id is not None else {}
    kwargs.setdefault("metric", metadata.get("metric"))
    report = build_report(model, dataset, sensitive_data=frame, configuration=metadata.get("configuration"),
                          **search_kw, **kwargs)
    if search_id is not None:
        report.data["meta"]["search_id"] = search_id
    return report


def report_for_search(kb: KnowledgeBase, search_id: int, frame: pd.DataFrame, *, target: str | None = None,
                      name: str | None = None, **kwargs: Any) -> ModelReport:
    """Refit a stored search's best configuration on ``frame`` (the knowledge base keeps no raw data) and report.

    The target defaults to the one recorded for the search's dataset; a table whose content differs from
    the searched dataset is reported with a warning.
    """
    search = kb.search(search_id)
    info = kb.dataset(search["dataset_id"])
    target = target or info.target
    if not target:
        raise MetalearnError(f"the knowledge base does not record the target of search {search_id}; give it")
    frame = frame.rename(columns=str)
    if target not in frame.columns:
        raise MetalearnError(f"target column {target!r} not found in the data")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    settings = search.get("settings") or {}
    dataset = from_frame(frame, target, name or info.name, task=task_of(settings))  # None: detected from the data
    configuration = best_configuration(kb, search_id)
    pipeline = build_pipeline(configuration, dataset.numeric, dataset.categorical, n_features=dataset.n_features,
                              random_state=int(settings.get("seed") or 0))
    kwargs.setdefault("metric", settings.get("metric"))
    report = build_report(pipeline, dataset, kb=kb, search_id=search_id, sensitive_data=frame,
                          configuration=configuration, **kwargs)
    report.data["meta"]["search_id"] = search_id
    if dataset.content_hash != info.content_hash:
        message = (f"the data given is not the dataset searched (content hash differs from {info.name!r} in the "
                   "knowledge base): figures describe the refitted configuration on this data")
        report.data["warnings"].append(message)
    return report
