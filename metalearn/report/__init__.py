"""Model report: hold-out metrics, explanations, fairness and the search, as JSON data and one HTML file.

This package owns the model report, from the figures to the page. It sits above the warm start (it reads a
:class:`~metalearn.warmstart.result.SearchResult` or the knowledge base) and below the service and front ends.

* :mod:`~metalearn.report.build` -- :func:`build_report` takes a pipeline (fitted or not) or a configuration
  and a :class:`Dataset` and returns a :class:`ModelReport` whose ``data`` is plain JSON; the entry points
  :func:`report_for_result`, :func:`report_for_model` and :func:`report_for_search`;
* :mod:`~metalearn.report.model` -- :class:`ReportOptions`, :class:`ModelReport`, :func:`render_report`;
* :mod:`~metalearn.report.evaluate` (the evaluation predictions), :mod:`~metalearn.report.sections`
  (classification: metrics, confusion matrix, calibration), :mod:`~metalearn.report.regression` (regression:
  metrics, predicted-vs-actual and residuals),
  :mod:`~metalearn.report.explanations` (permutation importance, partial dependence, surrogate tree),
  :mod:`~metalearn.report.attributions` (SHAP), :mod:`~metalearn.report.lime_local` (LIME),
  :mod:`~metalearn.report.fairness`,
  :mod:`~metalearn.report.search` (the search section, through :mod:`metalearn.warmstart.result`);
* :mod:`~metalearn.report.html` -- the page, drawn from the data alone, so a stored JSON report can be
  rendered again.

The task is the dataset's (``Dataset.task``; :func:`report_for_model` takes it from the model file's metadata,
:func:`report_for_search` from the search's settings). Methods (also stated in the report itself):

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
* **Regression** -- a regression report (``meta.task == "regression"``; ``meta.dataset.n_classes`` None)
  evaluates predicted values the same way (test split, or ``cross_val_predict(method="predict")`` over
  shuffled folds). ``metrics``: R², RMSE, MAE, MAPE (None when a target is zero), median absolute error,
  explained variance, max error, mean residual, and the search's higher-is-better ``scores`` (error metrics
  negated); ``residuals`` (residual = actual - predicted): predicted-vs-actual and residual points (at most
  500, evenly spaced over the rows sorted by the actual value), residual quantiles, histogram and deciles
  of the prediction. ``confusion-matrix`` and ``calibration`` hold a "not applicable to regression" note.
  Permutation importance scores with the regression metric (default ``r2``); partial dependence is one
  mean-prediction curve per feature; SHAP and LIME (regression mode) explain the predicted value; the
  surrogate is a ``DecisionTreeRegressor`` whose fidelity is its R² against the model's predictions;
  fairness gives per-group MAE, RMSE, mean residual, mean actual and mean prediction, the gap (largest
  minus smallest group) of each and the largest gap relative to the overall MAE / RMSE, with a warning
  above ``fairness_threshold``.
* **Search** -- trials (origin ``warm_start`` / ``smac_initial`` / ``smac`` / ``random``), the best
  trial and the best score over trials and over time (as :mod:`metalearn.warmstart.result` defines
  them), and the neighbour datasets of the warm start with their distances (from a
  :class:`SearchResult`, or from the knowledge base: runs of the search, neighbours recomputed from
  the current knowledge base).
"""

from metalearn.report.build import build_report, report_for_model, report_for_result, report_for_search
from metalearn.report.model import (
    MEDIA_TYPES,
    REGRESSION_SECTIONS,
    REPORT_FORMAT,
    SECTIONS,
    ModelReport,
    ReportOptions,
    render_report,
)
from metalearn.report.search import best_configuration, search_section_from_kb, search_section_from_result

__all__ = ["MEDIA_TYPES", "REGRESSION_SECTIONS", "REPORT_FORMAT", "SECTIONS", "ModelReport", "ReportOptions",
           "best_configuration", "build_report", "render_report", "report_for_model", "report_for_result",
           "report_for_search", "search_section_from_kb", "search_section_from_result"]
