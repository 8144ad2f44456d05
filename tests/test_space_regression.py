"""Tests for the regression search space and pipelines (metalearn.space with task="regression",
metalearn.regressors, metalearn.target), and that the classification space did not change."""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_space import FIT_WARNINGS, N_SAMPLED, Split, capped, fit_failures, sampled, split, with_preprocessing
from helpers_space import single_thread as single_thread  # autouse: one OpenMP/BLAS thread
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from metalearn import space as spaces
from metalearn.components import FractionRidgeRFE, RelativeLasso, l1_importances
from metalearn.errors import MetalearnError
from metalearn.pipeline import build_pipeline
from metalearn.space import (
    REGRESSION_ALGORITHMS,
    TARGET_TRANSFORMS,
    algorithm_of,
    build_space,
    canonical_config,
    config_from_dict,
    default_configuration,
    task_of_config,
)
from metalearn.target import (
    Log1pIfNonNegative,
    RangeClippedRegressor,
    TargetQuantileTransformer,
    with_target_transform,
)

TASK = "regression"
pytestmark = [pytest.mark.filterwarnings(warning) for warning in FIT_WARNINGS]
REGRESSION_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets-regression"
REAL_DATASET = "imports-85-price"  # 201 rows, 25 features (10 categorical), missing values, prices > 0
#: sha256 of ``str(build_space(seed=0))`` as it was before the regression space was added (2026.11-2)
CLASSIFICATION_SPACE_SHA256 = "dc3ae89a755dd9572e4286167b871a5f64f88630f20ded0aaadd940aa3a6dbbe"


def _split(name: str, X: pd.DataFrame, y: np.ndarray, numeric: list[str], categorical: list[str]) -> Split:
    return split(name, X, y, numeric, categorical, regression=True)


@cache
def _diabetes_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """200 rows of the diabetes data in its original units (age in years, sex 1/2, ...)."""
    data = load_diabetes(as_frame=True, scaled=False)
    rows = np.sort(np.random.RandomState(0).choice(len(data.target), 200, replace=False))
    return data.data.iloc[rows].reset_index(drop=True), data.target.to_numpy()[rows]


def _mixed() -> Split:
    """Diabetes with ~10% NaNs, string / pandas-category / mixed-type categoricals, a rare category, all-NaN
    columns, unseen categories at predict time, and a centred target (negative values: log1p falls back)."""
    rng, (X, y) = np.random.RandomState(1), _diabetes_frame()
    X, n = X.copy(), len(y)
    X["sex"] = pd.Categorical(np.where(X["sex"] > 1.5, "female", "male"))
    band = pd.cut(X.pop("bmi"), [0, 25, 30, 100], labels=["normal", "over", "obese"]).to_numpy(dtype=object, copy=True)
    band[rng.choice(n, 2, replace=False)] = "unknown"  # rare
    X["bmi_band"] = pd.Series(band).mask(rng.rand(n) < 0.1)
    X["code"] = pd.Series(rng.choice([1, 2, "x"], n), dtype=object)
    numeric = [c for c in X.columns if c not in ("sex", "bmi_band", "code")]
    X[numeric] = X[numeric].mask(rng.rand(n, len(numeric)) < 0.1)
    X["empty_numeric"] = np.nan
    X["empty_categorical"] = pd.Series([None] * n, dtype=object)
    table = _split("mixed", X, y - np.median(y), [*numeric, "empty_numeric"],
                   ["sex", "bmi_band", "code", "empty_categorical"])
    X_test = table.X_test.copy()
    X_test.iloc[:4, X_test.columns.get_loc("bmi_band")] = "never_seen"
    X_test["sex"] = X_test["sex"].cat.add_categories(["other"])
    X_test.iloc[4:6, X_test.columns.get_loc("sex")] = "other"
    X_test.iloc[6:8, X_test.columns.get_loc("empty_categorical")] = "appears_at_predict_time"
    return table.with_test(X_test)


def _real() -> Split | None:
    """A real table of the shared regression corpus (nullable dtypes, categoricals, missing values)."""
    manifest = REGRESSION_CORPUS / "manifest.json"
    if not manifest.exists():
        return None
    entry = next((e for e in json.loads(manifest.read_text()) if e["name"] == REAL_DATASET), None)
    if entry is None or not (REGRESSION_CORPUS / entry["file"]).exists():
        return None
    frame = pd.read_parquet(REGRESSION_CORPUS / entry["file"])
    y = frame.pop(entry["target"]).to_numpy(dtype=float)
    categorical = list(entry["categorical"])
    return _split(entry["name"], frame, y, [c for c in frame.columns if c not in categorical], categorical)


@cache
def _tables() -> dict[str, Split | None]:
    X, y = _diabetes_frame()  # ten numeric features on very different scales, a positive target (log1p applies)
    return {"diabetes": _split("diabetes", X, y, list(X.columns), []), "mixed": _mixed(), "real": _real()}


def _table(name: str) -> Split:
    table = _tables()[name]
    if table is None:
        pytest.skip(f"{REGRESSION_CORPUS} (with {REAL_DATASET}) is not available")
    return table


def _fit_and_check(config: dict, table: Split) -> np.ndarray:
    pipe = build_pipeline(config, table.numeric, table.categorical, n_features=table.n_features, random_state=0)
    assert [name for name, _ in pipe.steps] == ["preprocess", "feature_preprocessing", "regressor"]
    pipe.fit(table.X_train, table.y_train)
    assert len(pipe[:-1].get_feature_names_out()) == pipe[:-1].transform(table.X_test.iloc[:3]).shape[1]
    pred = pipe.predict(table.X_test)
    assert pred.shape == (len(table.X_test),)
    assert pred.dtype.kind == "f" and np.all(np.isfinite(pred))
    return pred


# Sampled configurations and every family's defaults build, fit and predict ------------------------------------------
def test_sampled_configurations_fit_and_predict() -> None:
    """300 sampled configurations (boosting rounds and trees capped, see ``capped``), each fitted on one of the
    three tables in turn (every family and choice meets every table; one fit per configuration)."""
    tables = [table for table in _tables().values() if table is not None]
    cases = [(capped(config), tables[i % len(tables)]) for i, config in enumerate(sampled(TASK))]
    for key in ("regressor", "feature_preprocessing", "target_transform"):
        met = {(config[key], table.name) for config, table in cases}
        assert met == {(config[key], table.name) for config, _ in cases for table in tables}, key
    failures = fit_failures(cases, _fit_and_check)
    assert not failures, f"{len(failures)}/{N_SAMPLED} configurations failed:\n" + "\n".join(failures[:5])


@pytest.mark.parametrize("algorithm", REGRESSION_ALGORITHMS)
def test_default_of_each_regressor_fits_every_table_and_all_categorical_data(algorithm: str) -> None:
    config = default_configuration(algorithm, task=TASK)
    for name in ("diabetes", "mixed", "real"):
        if _tables()[name] is not None:
            _fit_and_check(config, _table(name))
    _fit_and_check(config, _table("mixed").categorical_only())


def test_defaults_learn_the_diabetes_target() -> None:
    """Library defaults are sensible: the default pipeline and the linear/SVR/MLP defaults explain the target."""
    diabetes = _table("diabetes")
    for algorithm in (None, "ridge", "svr_rbf", "mlp", "random_forest"):
        pred = _fit_and_check(default_configuration(algorithm, task=TASK), diabetes)
        assert r2_score(diabetes.y_test, pred) > 0.2, algorithm


def test_scikit_learn_regressors_default_to_library_defaults() -> None:
    """Every parameter of a default scikit-learn regressor but the ones set for every trial (random_state,
    n_jobs, AdaBoost's tree) is the library's default (LightGBM, XGBoost, CatBoost share the classifiers' spaces)."""
    for algorithm in REGRESSION_ALGORITHMS:
        estimator = build_pipeline(default_configuration(algorithm, task=TASK), ["a"], []).named_steps["regressor"]
        while isinstance(estimator, TransformedTargetRegressor | RangeClippedRegressor):
            estimator = estimator.regressor
        if not type(estimator).__module__.startswith(("sklearn", "metalearn")):
            continue
        library = type(estimator)().get_params(deep=False)
        for name, value in estimator.get_params(deep=False).items():
            if name not in ("random_state", "n_jobs", "estimator"):  # log ranges cannot hold 0.0: 1e-10 instead
                assert value == (pytest.approx(library[name], abs=1e-9) if isinstance(value, float) else
                                 library[name]), (algorithm, name)


# The spaces ---------------------------------------------------------------------------------------------------------
def test_classification_space_is_unchanged() -> None:
    space = build_space(seed=0)
    assert spaces.SPACE_VERSION == spaces.SPACE_VERSIONS["classification"] == "2026.11-2"
    assert hashlib.sha256(str(space).encode()).hexdigest() == CLASSIFICATION_SPACE_SHA256
    assert space == build_space(seed=0, task="classification")
    assert "regressor" not in space and "target_transform" not in space
    assert spaces.algorithms() == spaces.ALGORITHMS and spaces.compatible_space_versions()[0] == "2026.11-2"
    assert algorithm_of(default_configuration()) == spaces.DEFAULT_ALGORITHMS["classification"] == "random_forest"


def test_regression_space_is_deterministic_and_versioned() -> None:
    assert spaces.SPACE_VERSIONS == {"classification": "2026.11-2", "regression": "2026.11-r1"}
    assert spaces.REGRESSION_SPACE_VERSION == "2026.11-r1" == spaces.compatible_space_versions(TASK)[0]
    assert spaces.algorithms(TASK) == REGRESSION_ALGORITHMS and len(spaces.compatible_space_versions(TASK)) == 1
    a, b = build_space(seed=1, task=TASK), build_space(seed=1, task=TASK)
    assert a == b and a.name == "metalearn-2026.11-r1"
    assert [dict(c) for c in a.sample_configuration(20)] == [dict(c) for c in b.sample_configuration(20)]
    assert len(REGRESSION_ALGORITHMS) >= 12 and len(set(REGRESSION_ALGORITHMS)) == len(REGRESSION_ALGORITHMS)
    assert {"hist_gradient_boosting", "random_forest", "extra_trees", "adaboost", "ridge", "lasso", "elastic_net",
            "linear_svr", "svr_rbf", "k_neighbors", "decision_tree", "mlp", "lightgbm", "xgboost",
            "catboost"} <= set(REGRESSION_ALGORITHMS)
    assert "classifier" not in a and "class_weight" not in a and not any("class_weight" in name for name in a)
    assert list(a["target_transform"].choices) == list(TARGET_TRANSFORMS) == ["none", "log1p", "quantile"]
    with pytest.raises(MetalearnError, match="unknown task"):
        build_space(task="clustering")


def test_regression_defaults_are_valid() -> None:
    space = build_space(task=TASK)
    default = space.get_default_configuration()
    default.check_valid_configuration()
    assert canonical_config(default) == default_configuration(task=TASK)
    assert algorithm_of(default_configuration(task=TASK)) == spaces.DEFAULT_ALGORITHMS[TASK] == "hist_gradient_boosting"
    assert default_configuration(task=TASK)["target_transform"] == "none"
    for algorithm in REGRESSION_ALGORITHMS:
        config = default_configuration(algorithm, task=TASK)
        assert algorithm_of(config) == algorithm and task_of_config(config) == TASK
        assert config[spaces.ALGORITHM_KEYS[TASK]] == algorithm and "classifier" not in config
        config_from_dict(config, space).check_valid_configuration()
        for name, value in config.items():
            if name.startswith(algorithm + ":"):
                assert value == space[name].default_value
    with pytest.raises(MetalearnError, match="unknown algorithm"):
        default_configuration("logistic_regression", task=TASK)
    with pytest.raises(MetalearnError, match="unknown algorithm"):
        default_configuration("ridge")  # classification by default
    with pytest.raises(MetalearnError, match="unknown task"):
        default_configuration(task="ranking")


def test_every_choice_can_be_sampled() -> None:
    configs = sampled(TASK)
    assert set(Counter(algorithm_of(c) for c in configs)) == set(REGRESSION_ALGORITHMS)
    assert {c["feature_preprocessing"] for c in configs} == {"none", "pca", "select_percentile", "l1_selection",
                                                             "rfe", "polynomial"}
    assert {c["target_transform"] for c in configs} == set(TARGET_TRANSFORMS)
    assert {c["scaling"] for c in configs} == set(spaces.SCALERS)
    assert {c["imputation:numeric"] for c in configs} == {"mean", "median", "most_frequent", "knn"}
    assert {c["encoding"] for c in configs} == {"one_hot", "ordinal"}
    assert {c.get("feature_preprocessing:select_percentile:score_func") for c in configs} >= {"f_regression",
                                                                                             "mutual_info"}


def test_conditional_hyperparameters_are_only_active_where_they_apply() -> None:
    for config in build_space(seed=3, task=TASK).sample_configuration(500):
        algorithm = algorithm_of(config)
        assert "target_transform" in config and "class_weight" not in config
        for name in config:
            if name.split(":")[0] in REGRESSION_ALGORITHMS:
                assert name.startswith(algorithm + ":")
        layers = config.get("mlp:n_layers", 0)
        assert ("mlp:layer_2_units" in config) == (layers >= 2)
        assert ("mlp:layer_3_units" in config) == (layers >= 3)
        assert ("svr_rbf:gamma" in config) == (config.get("svr_rbf:gamma_mode") == "value")
        assert ("catboost:learning_rate" in config) == (config.get("catboost:learning_rate_mode") == "value")
        assert ("random_forest:max_features_fraction" in config) == (
            config.get("random_forest:max_features") == "fraction")
        assert ("decision_tree:max_depth" in config) == bool(config.get("decision_tree:limit_depth", False))
        assert ("imputation:knn:n_neighbors" in config) == (config["imputation:numeric"] == "knn")


FORBIDDEN = {
    "unscaled svr/mlp": lambda c: c["scaling"] == "none" and c["regressor"] in ("svr_rbf", "linear_svr", "mlp"),
    "unscaled polynomial": lambda c: c["scaling"] == "none" and c["feature_preprocessing"] == "polynomial",
    "polynomial + svr/knn": lambda c: c["feature_preprocessing"] == "polynomial" and c["regressor"] in (
        "svr_rbf", "k_neighbors"),
}


def test_forbidden_combinations_are_never_sampled_and_rejected() -> None:
    configs = [dict(c) for c in build_space(seed=7, task=TASK).sample_configuration(2000)]
    for label, is_forbidden in FORBIDDEN.items():
        assert not any(is_forbidden(c) for c in configs), label
    # the parts of each forbidden combination are sampled on their own
    assert any(c["feature_preprocessing"] == "polynomial" for c in configs)
    assert any(c["scaling"] == "none" for c in configs)
    assert any(c["regressor"] == "linear_svr" and c["feature_preprocessing"] == "polynomial" for c in configs)
    assert any(c["regressor"] == "k_neighbors" and c["scaling"] == "none" for c in configs)
    knn = default_configuration("k_neighbors", task=TASK) | {
        "feature_preprocessing": "polynomial", "feature_preprocessing:polynomial:interaction_only": False}
    with pytest.raises(MetalearnError, match="forbidden"):
        config_from_dict(knn)
    svr = default_configuration("svr_rbf", task=TASK) | {"scaling": "none"}
    with pytest.raises(MetalearnError, match="forbidden"):
        config_from_dict(svr)
    assert algorithm_of(config_from_dict(svr | {"scaling": "robust"})) == "svr_rbf"


# Configurations of both tasks ---------------------------------------------------------------------------------------
def test_task_of_config_and_algorithm_of_work_for_both_tasks() -> None:
    classification = default_configuration("random_forest")
    regression = default_configuration("random_forest", task=TASK)
    assert task_of_config(classification) == "classification" and task_of_config(regression) == TASK
    assert algorithm_of(classification) == algorithm_of(regression) == "random_forest"
    assert task_of_config(config_from_dict(regression)) == TASK  # a Configuration too
    with pytest.raises(MetalearnError, match="no 'classifier' or 'regressor'"):
        task_of_config({"scaling": "none"})
    with pytest.raises(MetalearnError, match="both"):
        task_of_config({"classifier": "lda", "regressor": "ridge"})
    with pytest.raises(MetalearnError):
        algorithm_of({})
    # the random forests differ between the tasks: criteria and the default max_features
    assert classification["random_forest:criterion"] == "gini" and regression["random_forest:criterion"] == (
        "squared_error")
    with pytest.raises(MetalearnError, match="unknown hyperparameter"):
        config_from_dict(regression, build_space())
    with pytest.raises(MetalearnError, match="2026.11-r1"):
        config_from_dict(regression | {"class_weight": "balanced"})


def test_canonical_config_round_trips_through_json_and_validates() -> None:
    space = build_space(task=TASK)
    for config in build_space(seed=11, task=TASK).sample_configuration(200):
        canon = canonical_config(config)
        assert list(canon) == sorted(canon) and set(canon) == set(dict(config))
        for value in canon.values():
            assert type(value) in (float, int, str, bool)
        restored = config_from_dict(json.loads(json.dumps(canon)))  # the space comes from the "regressor" key
        assert dict(restored) == dict(config)
        assert config_from_dict(canon, space) == restored
        assert canonical_config(restored) == canon == canonical_config(canon)
    config = default_configuration("ridge", task=TASK)
    noisy = dict(config) | {"svr_rbf:C": 3.0, "scaling:quantile:n_quantiles": 100}
    assert canonical_config(noisy) == config
    assert config_from_dict(config | {"ridge:alpha": 2})["ridge:alpha"] == 2.0
    with pytest.raises(MetalearnError, match="must be one of"):
        config_from_dict(config | {"target_transform": "sqrt"})
    with pytest.raises(MetalearnError, match="out of range"):
        config_from_dict(config | {"ridge:alpha": 0.0})


# Target transforms --------------------------------------------------------------------------------------------------
def test_log1p_falls_back_to_identity_on_negative_targets() -> None:
    positive, negative = np.array([0.0, 1.0, 9.0]), np.array([-2.0, 1.0, 9.0])
    log = Log1pIfNonNegative().fit(positive)
    assert not log.identity_
    np.testing.assert_allclose(log.transform(positive).ravel(), np.log1p(positive))
    np.testing.assert_allclose(log.inverse_transform(log.transform(positive)).ravel(), positive)
    assert np.isfinite(log.inverse_transform(np.array([1e6]))).all()  # no overflow to infinity
    identity = Log1pIfNonNegative().fit(negative)
    assert identity.identity_
    np.testing.assert_array_equal(identity.transform(negative).ravel(), negative)
    np.testing.assert_array_equal(identity.inverse_transform(negative).ravel(), negative)
    # in a pipeline, on the centred diabetes target: the same predictions as without a transform
    mixed = _table("mixed")
    assert mixed.y_train.min() < 0
    config = default_configuration("ridge", task=TASK)
    plain = build_pipeline(config, mixed.numeric, mixed.categorical).fit(mixed.X_train, mixed.y_train)
    logged = build_pipeline(config | {"target_transform": "log1p"}, mixed.numeric, mixed.categorical)
    logged.fit(mixed.X_train, mixed.y_train)
    assert logged.named_steps["regressor"].regressor_.transformer_.identity_
    np.testing.assert_allclose(logged.predict(mixed.X_test), plain.predict(mixed.X_test))


def test_log1p_and_quantile_predict_in_the_original_scale() -> None:
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=list("abc"))
    y = np.exp(2.0 + X["a"] - 0.5 * X["b"]).to_numpy() * 1000.0  # skewed, thousands
    train, test = slice(0, 200), slice(200, None)
    base = default_configuration("ridge", task=TASK)
    logged = build_pipeline(base | {"target_transform": "log1p"}, list("abc"), []).fit(X[train], y[train])
    wrapper = logged.named_steps["regressor"].regressor_  # inside the range clipping
    assert isinstance(wrapper, TransformedTargetRegressor) and not wrapper.transformer_.identity_
    inner = wrapper.regressor_.predict(logged[:-1].transform(X[test]))
    assert inner.max() < np.log1p(y.max()) + 1  # the ridge learnt log(y)...
    pred = logged.predict(X[test])
    # ...and predictions come back in the original scale (the clipping allows 10 % beyond the training range)
    np.testing.assert_allclose(pred, np.clip(np.expm1(inner), None, 1.1 * y[train].max()))
    assert r2_score(np.log(y[test]), np.log(pred)) > 0.95
    plain = build_pipeline(base, list("abc"), []).fit(X[train], y[train])
    assert r2_score(np.log(y[test]), np.log(np.clip(plain.predict(X[test]), 1, None))) < 0.9

    quantile = build_pipeline(base | {"target_transform": "quantile"}, list("abc"), []).fit(X[train], y[train])
    pred = quantile.predict(X[test])
    assert y[train].min() <= pred.min() and pred.max() <= y[train].max()
    assert r2_score(np.log(y[test]), np.log(pred)) > 0.8


def test_quantile_transform_caps_quantiles_to_the_rows() -> None:
    y = np.random.RandomState(0).exponential(size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn would warn about n_quantiles > n_samples
        transformer = TargetQuantileTransformer(random_state=0).fit(y)
    assert transformer.transformer_.n_quantiles_ == 50
    z = transformer.transform(y).ravel()
    assert abs(z.mean()) < 0.1 and 0.8 < z.std() < 1.5
    np.testing.assert_allclose(transformer.inverse_transform(z).ravel(), y, rtol=1e-6)
    with pytest.raises(MetalearnError, match="unknown target transform"):
        with_target_transform(object(), "sqrt")


@pytest.mark.parametrize("algorithm", ["svr_rbf", "linear_svr", "mlp"])
def test_svr_and_mlp_learn_a_standardized_target(algorithm: str) -> None:
    diabetes = _table("diabetes")
    config = default_configuration(algorithm, task=TASK)
    pipe = build_pipeline(config, diabetes.numeric, [], random_state=0)
    wrapper = pipe.named_steps["regressor"].regressor
    assert isinstance(wrapper, TransformedTargetRegressor) and isinstance(wrapper.transformer, StandardScaler)
    unit = pipe.fit(diabetes.X_train, diabetes.y_train).predict(diabetes.X_test)
    scaled = clone(pipe).fit(diabetes.X_train, diabetes.y_train * 1e6).predict(diabetes.X_test)
    np.testing.assert_allclose(scaled / 1e6, unit, rtol=1e-4, atol=1e-3)  # scale-free


# Pipeline construction ----------------------------------------------------------------------------------------------
def test_pipeline_structure_and_settings() -> None:
    for algorithm in REGRESSION_ALGORITHMS:
        config = default_configuration(algorithm, task=TASK) | {"target_transform": "quantile"}
        pipe = build_pipeline(config, ["a", "b"], ["c"], random_state=123)
        assert [name for name, _ in pipe.steps] == ["preprocess", "feature_preprocessing", "regressor"]
        for key, value in pipe.get_params().items():
            if key.endswith(("random_state", "random_seed")) and value is not None:
                assert value == 123, (algorithm, key)
            if key.endswith(("n_jobs", "thread_count")):
                assert value in (1, None), (algorithm, key)


def test_pipeline_is_reproducible_and_picklable() -> None:
    table = _table("mixed")
    percentile = "feature_preprocessing:select_percentile:"
    config = config_from_dict(default_configuration("extra_trees", task=TASK) | {
        "imputation:numeric": "knn", "imputation:knn:n_neighbors": 3, "feature_preprocessing": "select_percentile",
        percentile + "score_func": "mutual_info", percentile + "percentile": 40.0, "target_transform": "quantile"})
    fitted = [build_pipeline(config, table.numeric, table.categorical, random_state=5).fit(table.X_train,
                                                                                           table.y_train)
              for _ in range(2)]
    p0, p1 = (pipe.predict(table.X_test) for pipe in fitted)
    np.testing.assert_array_equal(p0, p1)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted[0])).predict(table.X_test), p0)


def _with_preprocessing(choice: str, **params: object) -> dict:
    return with_preprocessing("ridge", choice, task=TASK, **params)


@pytest.mark.parametrize("config", [
    _with_preprocessing("l1_selection", alpha_ratio=0.5),
    _with_preprocessing("rfe", n_features_fraction=0.1, step=0.5),
    _with_preprocessing("select_percentile", score_func="f_regression", percentile=5.0),
    _with_preprocessing("select_percentile", score_func="mutual_info", percentile=5.0),
], ids=["l1", "rfe", "percentile_f", "percentile_mi"])
def test_feature_selectors_keep_at_least_one_feature(config: dict) -> None:
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd"))
    y = rng.normal(size=60)  # pure noise: 5% of 4 rounds to 0, RFE keeps round(0.1 * 4) = 0
    if config["feature_preprocessing"] == "l1_selection":
        y = np.full(60, 3.0)  # a relative penalty below 1 keeps some noise; a constant target zeroes every weight
    pipe = build_pipeline(config, list("abcd"), []).fit(X, y)
    assert pipe[:-1].transform(X).shape[1] == 1
    assert pipe.predict(X).shape == (60,)
    selector = pipe.named_steps["feature_preprocessing"]
    if config["feature_preprocessing"] == "rfe":
        assert isinstance(selector, FractionRidgeRFE)
    if config["feature_preprocessing"] == "l1_selection":
        assert np.all(l1_importances(selector.estimator_) < 1e-5)  # the fallback was needed


def test_l1_selection_is_relative_to_the_target_scale() -> None:
    diabetes = _table("diabetes")
    config = _with_preprocessing("l1_selection", alpha_ratio=0.1)
    masks = []
    for scale in (1e-3, 1.0, 1e4):
        pipe = build_pipeline(config, diabetes.numeric, []).fit(diabetes.X_train, diabetes.y_train * scale)
        selector = pipe.named_steps["feature_preprocessing"]
        assert isinstance(selector.estimator_, RelativeLasso)
        np.testing.assert_array_equal(selector.get_support(), l1_importances(selector.estimator_) > 1e-5)
        masks.append(selector.get_support())
    assert 1 <= masks[0].sum() < len(diabetes.numeric)
    assert all(np.array_equal(mask, masks[0]) for mask in masks)


def test_k_neighbors_works_with_fewer_rows_than_neighbours() -> None:
    diabetes = _table("diabetes")
    config = default_configuration("k_neighbors", task=TASK) | {"k_neighbors:n_neighbors": 50}
    pipe = build_pipeline(config, diabetes.numeric, []).fit(diabetes.X_train.iloc[:20], diabetes.y_train[:20])
    assert pipe.named_steps["regressor"].regressor_.estimator_.n_neighbors == 20
    assert pipe.predict(diabetes.X_test).shape == (len(diabetes.X_test),)


@pytest.mark.parametrize("algorithm", ["random_forest", "extra_trees", "decision_tree"])
def test_friedman_mse_is_built_as_its_squared_error_equivalent(algorithm: str) -> None:
    """scikit-learn 1.9 deprecates ``friedman_mse`` (an alias of ``squared_error``); stored configurations keep it."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    config = {**default_configuration(algorithm, task="regression"), f"{algorithm}:criterion": "friedman_mse"}
    pipeline = build_pipeline(config, list(X.columns), [])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        pipeline.fit(X.iloc[:200], y.iloc[:200])
    estimator = pipeline.steps[-1][1]
    estimator = getattr(estimator, "regressor_", estimator)
    assert estimator.criterion == "squared_error"


def test_predictions_stay_near_the_training_target_range() -> None:
    """A linear model extrapolates from a feature far beyond the training rows; the pipeline clips its prediction to
    the training target's range widened by 10 % of it, and leaves predictions inside that band unchanged."""
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"a": rng.uniform(0, 10, 200), "b": rng.normal(size=200)})
    y = 3.0 * X["a"].to_numpy() + rng.normal(scale=0.1, size=200)
    pipe = build_pipeline(default_configuration("ridge", task=TASK), ["a", "b"], []).fit(X, y)
    far = pd.DataFrame({"a": [1_000.0, -1_000.0, 5.0], "b": [0.0, 0.0, 0.0]})
    inner = pipe.named_steps["regressor"].regressor_.predict(pipe[:-1].transform(far))
    low, high = y.min() - 0.1 * np.ptp(y), y.max() + 0.1 * np.ptp(y)
    assert inner[0] > 50 * high and inner[1] < -50 * abs(low)  # what the ridge alone would say
    np.testing.assert_allclose(pipe.predict(far), [high, low, inner[2]])
