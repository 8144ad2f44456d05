"""Configuration of a search space -> unfitted scikit-learn Pipeline.

The feature preprocessor and the estimator are built by their entries in the registries that also define their
hyperparameters in :func:`metalearn.space.build_space`: :data:`metalearn.preprocessors.PREPROCESSORS` and
:data:`metalearn.families.FAMILIES` for a classification configuration (last step ``classifier``),
:data:`metalearn.preprocessors.REGRESSION_PREPROCESSORS` and :data:`metalearn.regressors.REGRESSORS` for a
regression one (last step ``regressor``, wrapped by its ``target_transform``, see :mod:`metalearn.target`).
Data-dependent safeguards (the space cannot know the data) are applied here, in :mod:`metalearn.components`
and in :mod:`metalearn.target`:

* polynomial features are only expanded when the transformed input has at most
  ``POLYNOMIAL_MAX_INPUT_FEATURES`` columns;
* one-hot encoding keeps at most ``ONE_HOT_MAX_CATEGORIES`` columns per categorical feature;
* KNN imputation uses at most ``KNN_IMPUTER_MAX_REFERENCE_ROWS`` training rows as neighbours;
* feature selectors (L1, percentile, RFE) always keep at least one feature;
* k-nearest-neighbours uses ``min(n_neighbors, n_training_rows)`` neighbours;
* ``log1p`` of the target falls back to the identity when the training target has negative values.

Estimators get ``n_jobs=1``; HistGradientBoosting (OpenMP) and BLAS-backed steps cannot be limited
through parameters, so trial runners should fit inside ``threadpoolctl.threadpool_limits(1)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)

from metalearn.components import CappedKNNImputer, to_float_array, to_object_array, to_str_array
from metalearn.errors import MetalearnError
from metalearn.families import FAMILIES
from metalearn.preprocessors import POLYNOMIAL_MAX_INPUT_FEATURES, PREPROCESSORS, REGRESSION_PREPROCESSORS
from metalearn.registry import BuildContext
from metalearn.regressors import REGRESSORS
from metalearn.space import ALGORITHM_KEYS, config_from_dict, task_of_config
from metalearn.target import RangeClippedRegressor, with_target_transform

__all__ = [
    "KNN_IMPUTER_MAX_REFERENCE_ROWS",
    "MISSING_CATEGORY",
    "ONE_HOT_MAX_CATEGORIES",
    "POLYNOMIAL_MAX_INPUT_FEATURES",
    "build_classifier",
    "build_estimator",
    "build_pipeline",
    "build_regressor",
]

ONE_HOT_MAX_CATEGORIES = 32
KNN_IMPUTER_MAX_REFERENCE_ROWS = 2000
MISSING_CATEGORY = "__missing__"


def _scaler(c: Mapping[str, Any], random_state: int) -> Any:
    choice = c["scaling"]
    if choice == "quantile":
        return QuantileTransformer(
            n_quantiles=c["scaling:quantile:n_quantiles"],
            output_distribution=c["scaling:quantile:output_distribution"],
            random_state=random_state,
        )
    return {"none": "passthrough", "standard": StandardScaler(), "robust": RobustScaler(), "minmax": MinMaxScaler()}[
        choice
    ]


def _numeric_pipeline(c: Mapping[str, Any], random_state: int) -> Pipeline:
    strategy = c["imputation:numeric"]
    if strategy == "knn":
        imputer: Any = CappedKNNImputer(
            n_neighbors=c["imputation:knn:n_neighbors"],
            max_reference_rows=KNN_IMPUTER_MAX_REFERENCE_ROWS,
            random_state=random_state,
        )
    else:
        imputer = SimpleImputer(strategy=strategy, keep_empty_features=True)
    return Pipeline(
        [
            ("to_float", FunctionTransformer(to_float_array, feature_names_out="one-to-one")),
            ("imputer", imputer),
            ("scaler", _scaler(c, random_state)),
        ]
    )


def _categorical_pipeline(c: Mapping[str, Any]) -> Pipeline:
    imputer = SimpleImputer(strategy=c["imputation:categorical"], fill_value=MISSING_CATEGORY, keep_empty_features=True)
    if c["encoding"] == "one_hot":
        encoder: Any = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=c["encoding:one_hot:min_frequency"],
            max_categories=ONE_HOT_MAX_CATEGORIES,
            sparse_output=False,
            dtype=np.float64,
        )
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float64)
    return Pipeline(
        [
            ("to_object", FunctionTransformer(to_object_array, feature_names_out="one-to-one")),
            ("imputer", imputer),
            ("to_str", FunctionTransformer(to_str_array, feature_names_out="one-to-one")),
            ("encoder", encoder),
        ]
    )


def _preprocess(c: Mapping[str, Any], numeric: list[str], categorical: list[str], random_state: int) -> Any:
    if not numeric and not categorical:
        raise MetalearnError("cannot build a pipeline without feature columns")
    overlap = sorted(set(numeric) & set(categorical))
    if overlap:
        raise MetalearnError(f"columns declared both numeric and categorical: {', '.join(overlap)}")
    transformers = []
    if numeric:
        transformers.append(("numeric", _numeric_pipeline(c, random_state), numeric))
    if categorical:
        transformers.append(("categorical", _categorical_pipeline(c), categorical))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0, n_jobs=1)


def build_classifier(config: Mapping[str, Any], random_state: int = 0) -> Any:
    """The unfitted classifier of a validated configuration, built by its family's registry entry."""
    class_weight = config.get("class_weight", "none")
    context = BuildContext(random_state=random_state, class_weight=None if class_weight == "none" else class_weight)
    return FAMILIES.build(config, context)


def build_regressor(config: Mapping[str, Any], random_state: int = 0) -> Any:
    """The unfitted regressor of a validated regression configuration, wrapped by its ``target_transform``, its
    predictions clipped near the training target's range (:class:`~metalearn.target.RangeClippedRegressor`)."""
    regressor = REGRESSORS.build(config, BuildContext(random_state=random_state))
    return RangeClippedRegressor(with_target_transform(regressor, str(config.get("target_transform", "none")),
                                                       random_state))


def build_estimator(config: Mapping[str, Any], random_state: int = 0) -> Any:
    """The unfitted classifier or regressor of a validated configuration (its task told by its key)."""
    if task_of_config(config) == "regression":
        return build_regressor(config, random_state)
    return build_classifier(config, random_state)


def build_pipeline(
    config: Mapping[str, Any],
    numeric_columns: Sequence[str],
    categorical_columns: Sequence[str],
    n_features: int | None = None,
    random_state: int = 0,
) -> Pipeline:
    """An unfitted pipeline for ``config`` (classification or regression) that takes a DataFrame with the given
    columns.

    Steps: ``preprocess`` (ColumnTransformer: numeric imputer -> scaler, categorical imputer ->
    encoder; dense output), ``feature_preprocessing`` and ``classifier`` or ``regressor``. ``n_features`` is the
    number of input feature columns when known: polynomial features are replaced by ``"passthrough"`` when it
    exceeds ``POLYNOMIAL_MAX_INPUT_FEATURES`` (otherwise they are still skipped at fit time if the
    encoded data has too many columns). Every stochastic step gets ``random_state``; ``n_jobs=1``.
    """
    c = config_from_dict(config)
    task = task_of_config(c)
    preprocess = _preprocess(c, list(numeric_columns), list(categorical_columns), random_state)
    context = BuildContext(random_state=random_state, n_features=n_features)
    preprocessors = REGRESSION_PREPROCESSORS if task == "regression" else PREPROCESSORS
    return Pipeline(
        [
            ("preprocess", preprocess),
            ("feature_preprocessing", preprocessors.build(c, context)),
            (ALGORITHM_KEYS[task], build_estimator(c, random_state)),
        ]
    )
