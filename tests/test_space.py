"""Tests for metalearn.space and metalearn.pipeline: the search space, configuration handling and pipeline
construction."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from functools import cache

import numpy as np
import pandas as pd
import pytest
from helpers_space import FIT_WARNINGS, Split, capped, fit_failures, sampled, split, with_preprocessing
from helpers_space import single_thread as single_thread  # autouse: one OpenMP/BLAS thread
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.model_selection import train_test_split

from metalearn.components import PolynomialIfCheap, l1_importances
from metalearn.errors import MetalearnError
from metalearn.pipeline import build_pipeline
from metalearn.space import (
    ALGORITHMS,
    CLASS_WEIGHT_ALGORITHMS,
    FEATURE_PREPROCESSORS,
    POLYNOMIAL_MAX_INPUT_FEATURES,
    SCALERS,
    SPACE_VERSION,
    algorithm_of,
    build_space,
    canonical_config,
    config_from_dict,
    default_configuration,
)


def _breast_cancer() -> Split:
    """Binary, 30 numeric features (more than the polynomial cap), 180 rows."""
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.to_numpy()
    rows, _ = train_test_split(np.arange(len(y)), train_size=180, stratify=y, random_state=0)
    X = X.iloc[np.sort(rows)].reset_index(drop=True)
    return split("breast_cancer", X, y[np.sort(rows)], list(X.columns), [])


def _wine() -> Split:
    """Three classes, 13 numeric features with very different scales, 178 rows."""
    data = load_wine(as_frame=True)
    return split("wine", data.data, data.target.to_numpy(), list(data.data.columns), [])


def _mixed() -> Split:
    """Iris with ~10% NaNs, string / pandas-category / mixed-type categoricals, rare categories,
    an all-NaN numeric and an all-NaN categorical column, and unseen categories in the test rows."""
    rng = np.random.RandomState(0)
    data = load_iris(as_frame=True)
    X = data.data.copy()
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    y = data.target.to_numpy()
    n = len(y)
    numeric = list(X.columns)
    X = X.mask(rng.rand(*X.shape) < 0.1)
    # Informative string column with noise, a rare category and missing values.
    color = np.array(["red", "green", "blue"], dtype=object)[y]
    noise = rng.rand(n) < 0.2
    color[noise] = rng.choice(["red", "green", "blue"], noise.sum())
    color[rng.choice(n, 2, replace=False)] = "purple"  # rare
    X["color"] = pd.Series(color).mask(rng.rand(n) < 0.1)
    X["size"] = pd.Categorical(rng.choice(["S", "M", "L", "XL"], n, p=[0.4, 0.35, 0.23, 0.02]))
    X.loc[rng.rand(n) < 0.1, "size"] = np.nan
    X["code"] = pd.Series(rng.choice([1, 2, "x"], n), dtype=object)  # mixed ints and strings
    X["empty_numeric"] = np.nan
    X["empty_categorical"] = pd.Series([None] * n, dtype=object)
    categorical = ["color", "size", "code", "empty_categorical"]
    numeric.append("empty_numeric")
    ds = split("mixed", X, y, numeric, categorical)
    X_test = ds.X_test.copy()
    X_test.iloc[:5, X_test.columns.get_loc("color")] = "never_seen"
    X_test["size"] = X_test["size"].cat.add_categories(["XXL"])
    X_test.iloc[5:8, X_test.columns.get_loc("size")] = "XXL"
    X_test.iloc[8:10, X_test.columns.get_loc("empty_categorical")] = "appears_at_predict_time"
    return ds.with_test(X_test)


@cache
def _datasets() -> tuple[Split, ...]:
    return (_breast_cancer(), _wine(), _mixed())


def _fit_and_check(config: dict, ds: Split) -> None:
    pipe = build_pipeline(config, ds.numeric, ds.categorical, n_features=ds.n_features, random_state=0)
    pipe.fit(ds.X_train, ds.y_train)
    assert len(pipe[:-1].get_feature_names_out()) == pipe[:-1].transform(ds.X_test.iloc[:3]).shape[1]
    pred = pipe.predict(ds.X_test)
    assert pred.shape == (len(ds.X_test),)
    assert set(np.unique(pred)) <= set(np.unique(ds.y_train))
    assert hasattr(pipe, "predict_proba"), "every classifier must offer predict_proba"
    proba = pipe.predict_proba(ds.X_test)
    assert proba.shape == (len(ds.X_test), len(np.unique(ds.y_train)))
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# Sampled configurations build, fit and predict
# --------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings(*FIT_WARNINGS)
def test_sampled_configurations_fit_and_predict() -> None:
    """300 sampled configurations (boosting rounds and trees capped, see ``capped``), each fitted on one of the
    three datasets in turn; every family and every feature preprocessor meets every dataset."""
    datasets = _datasets()
    cases = [(capped(config), datasets[i % len(datasets)]) for i, config in enumerate(sampled())]
    for key in ("classifier", "feature_preprocessing"):
        met = {(config[key], ds.name) for config, ds in cases}
        assert met == {(config[key], ds.name) for config, _ in cases for ds in datasets}, key
    failures = fit_failures(cases, _fit_and_check)
    assert not failures, f"{len(failures)}/{len(cases)} configurations failed:\n" + "\n".join(failures[:5])


@pytest.mark.filterwarnings(*FIT_WARNINGS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_default_of_each_algorithm_fits_every_dataset_and_all_categorical_data(algorithm: str) -> None:
    config = default_configuration(algorithm)
    for ds in _datasets():
        _fit_and_check(config, ds)
    _fit_and_check(config, _datasets()[2].categorical_only())


# --------------------------------------------------------------------------------------------------
# The space
# --------------------------------------------------------------------------------------------------
def test_space_is_deterministic_and_versioned() -> None:
    assert SPACE_VERSION and isinstance(SPACE_VERSION, str)
    a, b = build_space(seed=1), build_space(seed=1)
    assert a == b
    assert [dict(c) for c in a.sample_configuration(20)] == [dict(c) for c in b.sample_configuration(20)]
    assert len(ALGORITHMS) >= 12 and len(set(ALGORITHMS)) == len(ALGORITHMS)


def test_defaults_are_valid() -> None:
    space = build_space()
    default = space.get_default_configuration()
    default.check_valid_configuration()
    assert canonical_config(default) == default_configuration()
    assert algorithm_of(default_configuration()) in {"random_forest", "hist_gradient_boosting"}
    for algorithm in ALGORITHMS:
        config = default_configuration(algorithm)
        assert algorithm_of(config) == algorithm
        config_from_dict(config, space).check_valid_configuration()
        # classifier defaults are the space defaults of that classifier's hyperparameters
        for name, value in config.items():
            if name.startswith(algorithm + ":"):
                assert value == space[name].default_value
    with pytest.raises(MetalearnError, match="unknown algorithm"):
        default_configuration("no_such_family")


def test_every_choice_can_be_sampled() -> None:
    configs = sampled()
    assert set(Counter(algorithm_of(c) for c in configs)) == set(ALGORITHMS)
    assert {c["feature_preprocessing"] for c in configs} == set(FEATURE_PREPROCESSORS)
    assert {c["scaling"] for c in configs} == set(SCALERS)
    assert {c["imputation:numeric"] for c in configs} == {"mean", "median", "most_frequent", "knn"}
    assert {c["encoding"] for c in configs} == {"one_hot", "ordinal"}


def test_conditional_hyperparameters_are_only_active_where_they_apply() -> None:
    for config in build_space(seed=3).sample_configuration(500):
        algorithm = algorithm_of(config)
        assert ("class_weight" in config) == (algorithm in CLASS_WEIGHT_ALGORITHMS)
        for name in config:
            if name.split(":")[0] in ALGORITHMS:
                assert name.startswith(algorithm + ":")
        assert ("lda:shrinkage" in config) == (config.get("lda:solver") == "lsqr")
        layers = config.get("mlp:n_layers", 0)
        assert ("mlp:layer_2_units" in config) == (layers >= 2)
        assert ("mlp:layer_3_units" in config) == (layers >= 3)
        assert ("imputation:knn:n_neighbors" in config) == (config["imputation:numeric"] == "knn")


FORBIDDEN = {
    "lbfgs with an L1 penalty": lambda c: (
        c.get("logistic_regression:solver") == "lbfgs"
        and c.get("logistic_regression:penalty") in ("l1", "elasticnet")
    ),
    "linear_svc l1 + hinge": lambda c: (
        c.get("linear_svc:penalty") == "l1" and c.get("linear_svc:loss") == "hinge"
    ),
    "unscaled svc/mlp": lambda c: c["scaling"] == "none" and c["classifier"] in ("svc_rbf", "mlp"),
    "unscaled polynomial": lambda c: c["scaling"] == "none" and c["feature_preprocessing"] == "polynomial",
    "polynomial + svc/knn": lambda c: (
        c["feature_preprocessing"] == "polynomial" and c["classifier"] in ("svc_rbf", "k_neighbors")
    ),
    "unscaled saga selection": lambda c: (
        c["scaling"] == "none" and c.get("feature_preprocessing:l1_selection:solver") == "saga"
    ),
}


def test_forbidden_combinations_are_never_sampled() -> None:
    configs = [dict(c) for c in build_space(seed=7).sample_configuration(2000)]
    for label, is_forbidden in FORBIDDEN.items():
        assert not any(is_forbidden(c) for c in configs), label
    # the parts of each forbidden combination are sampled on their own
    assert any(c["feature_preprocessing"] == "polynomial" for c in configs)
    assert any(c["scaling"] == "none" for c in configs)
    assert any(c.get("linear_svc:penalty") == "l1" for c in configs)
    assert any(c.get("linear_svc:loss") == "hinge" for c in configs)


def test_forbidden_combination_is_rejected() -> None:
    config = default_configuration("k_neighbors")
    config["feature_preprocessing"] = "polynomial"
    config["feature_preprocessing:polynomial:interaction_only"] = False
    with pytest.raises(MetalearnError, match="forbidden"):
        config_from_dict(config)
    lr = default_configuration("logistic_regression") | {"logistic_regression:penalty": "l1"}
    with pytest.raises(MetalearnError, match="forbidden"):
        config_from_dict(lr)
    lr["logistic_regression:solver"] = "saga"
    assert algorithm_of(config_from_dict(lr)) == "logistic_regression"


# --------------------------------------------------------------------------------------------------
# Configuration round trips and validation
# --------------------------------------------------------------------------------------------------
def test_canonical_config_round_trips_through_json() -> None:
    space = build_space()
    for config in build_space(seed=11).sample_configuration(200):
        canon = canonical_config(config)
        assert list(canon) == sorted(canon)
        assert set(canon) == set(dict(config))
        for value in canon.values():
            assert type(value) in (float, int, str, bool)
        restored = config_from_dict(json.loads(json.dumps(canon)), space)
        assert dict(restored) == dict(config)
        assert canonical_config(restored) == canon
        assert canonical_config(canon) == canon


def test_canonical_config_drops_inactive_entries_of_a_dict() -> None:
    config = default_configuration("random_forest")
    noisy = dict(config) | {"svc_rbf:C": 3.0, "scaling:quantile:n_quantiles": 100}
    assert canonical_config(noisy) == config
    numpy_typed = {k: (np.float64(v) if isinstance(v, float) else v) for k, v in config.items()}
    assert canonical_config(numpy_typed) == config


def test_config_from_dict_accepts_json_number_types() -> None:
    config = default_configuration("random_forest") | {"random_forest:n_estimators": 50.0}
    assert config_from_dict(config)["random_forest:n_estimators"] == 50
    svc = default_configuration("svc_rbf") | {"svc_rbf:C": 2}
    assert config_from_dict(svc)["svc_rbf:C"] == 2.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"not_a_hyperparameter": 1}, "unknown hyperparameter"),
        ({"random_forest:n_estimators": 10_000}, "out of range"),
        ({"random_forest:n_estimators": 10.5}, "must be an integer"),
        ({"random_forest:n_estimators": "100"}, "must be an integer"),
        ({"random_forest:bootstrap": 1}, "must be one of"),
        ({"classifier": "no_such_family"}, "must be one of"),
        ({"svc_rbf:C": 1.0}, "inactive"),
        ({"random_forest:criterion": None}, "must be one of"),
    ],
)
def test_invalid_dict_raises_metalearn_error(change: dict, message: str) -> None:
    config = default_configuration("random_forest") | change
    with pytest.raises(MetalearnError, match=message):
        config_from_dict(config)


def test_missing_active_value_and_non_mapping_raise_metalearn_error() -> None:
    config = default_configuration("random_forest")
    del config["random_forest:n_estimators"]
    with pytest.raises(MetalearnError, match="active but has no value"):
        config_from_dict(config)
    with pytest.raises(MetalearnError, match="inactive"):
        config_from_dict({**default_configuration("random_forest"), "classifier": "svc_rbf"})
    with pytest.raises(MetalearnError):
        config_from_dict(["classifier", "random_forest"])  # type: ignore[arg-type]
    with pytest.raises(MetalearnError):
        build_pipeline({"classifier": "random_forest"}, ["a"], [])
    with pytest.raises(MetalearnError):
        algorithm_of({})


# --------------------------------------------------------------------------------------------------
# Pipeline construction
# --------------------------------------------------------------------------------------------------
def _polynomial_config(interaction_only: bool = False) -> dict:
    return default_configuration("logistic_regression") | {
        "feature_preprocessing": "polynomial",
        "feature_preprocessing:polynomial:interaction_only": interaction_only,
    }


@pytest.mark.filterwarnings(*FIT_WARNINGS)
def test_polynomial_features_are_skipped_for_many_features() -> None:
    config = _polynomial_config()
    cols = [f"x{i}" for i in range(POLYNOMIAL_MAX_INPUT_FEATURES + 5)]
    pipe = build_pipeline(config, cols, [], n_features=len(cols))
    assert pipe.named_steps["feature_preprocessing"] == "passthrough"
    small = build_pipeline(config, cols[:5], [], n_features=5)
    assert isinstance(small.named_steps["feature_preprocessing"], PolynomialIfCheap)

    # n_features unknown: decided at fit time on the encoded width
    cancer, wine = _datasets()[0], _datasets()[1]
    wide = build_pipeline(config, cancer.numeric, []).fit(cancer.X_train, cancer.y_train)
    assert wide[:-1].transform(cancer.X_test).shape[1] == len(cancer.numeric)
    narrow = build_pipeline(config, wine.numeric, []).fit(wine.X_train, wine.y_train)
    m = len(wine.numeric)
    assert narrow[:-1].transform(wine.X_test).shape[1] == m + m * (m + 1) // 2
    inter = build_pipeline(_polynomial_config(True), wine.numeric, []).fit(wine.X_train, wine.y_train)
    assert inter[:-1].transform(wine.X_test).shape[1] == m + m * (m - 1) // 2


def test_pipeline_structure_and_settings() -> None:
    config = default_configuration()
    pipe = build_pipeline(config, ["a", "b"], ["c"], random_state=123)
    assert [name for name, _ in pipe.steps] == ["preprocess", "feature_preprocessing", "classifier"]
    params = pipe.get_params()
    for key, value in params.items():
        if (
            key.endswith("random_state")
            and value is not None
            and not isinstance(value, np.random.RandomState)
        ):
            assert value == 123, key
        if key.endswith("n_jobs"):
            assert value in (1, None), key
    assert params["classifier__n_jobs"] == 1
    assert pipe.named_steps["classifier"].random_state == 123
    numeric_only = build_pipeline(config, ["a"], [])
    assert [t[0] for t in numeric_only.named_steps["preprocess"].transformers] == ["numeric"]
    with pytest.raises(MetalearnError):
        build_pipeline(config, [], [])
    with pytest.raises(MetalearnError):
        build_pipeline(config, ["a"], ["a"])


@pytest.mark.filterwarnings(*FIT_WARNINGS)
def test_pipeline_accepts_a_configuration_and_is_reproducible_and_picklable() -> None:
    ds = _datasets()[2]
    config = config_from_dict(
        default_configuration("extra_trees")
        | {
            "imputation:numeric": "knn",
            "imputation:knn:n_neighbors": 3,
            "feature_preprocessing": "select_percentile",
            "feature_preprocessing:select_percentile:score_func": "mutual_info",
            "feature_preprocessing:select_percentile:percentile": 40.0,
        }
    )
    fitted = [
        build_pipeline(config, ds.numeric, ds.categorical, random_state=5).fit(ds.X_train, ds.y_train)
        for _ in range(2)
    ]
    p0, p1 = (pipe.predict_proba(ds.X_test) for pipe in fitted)
    np.testing.assert_array_equal(p0, p1)
    restored = pickle.loads(pickle.dumps(fitted[0]))
    np.testing.assert_array_equal(restored.predict_proba(ds.X_test), p0)


def _with_preprocessing(choice: str, **params: object) -> dict:
    return with_preprocessing("logistic_regression", choice, **params)


@pytest.mark.filterwarnings(*FIT_WARNINGS)
@pytest.mark.parametrize(
    "config",
    [
        _with_preprocessing("l1_selection", solver="liblinear", C=0.01),
        _with_preprocessing("l1_selection", solver="saga", C=0.01),
        _with_preprocessing("rfe", n_features_fraction=0.1, step=0.5),
        _with_preprocessing("select_percentile", score_func="f_classif", percentile=5.0),
        _with_preprocessing("select_percentile", score_func="mutual_info", percentile=5.0),
    ],
    ids=["l1_liblinear", "l1_saga", "rfe", "percentile_f", "percentile_mi"],
)
def test_feature_selectors_keep_at_least_one_feature(config: dict) -> None:
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd"))
    y = np.repeat([0, 1, 2], 20)  # pure noise: strong L1 removes every feature, 5% of 4 rounds to 0
    pipe = build_pipeline(config, list("abcd"), []).fit(X, y)
    assert pipe[:-1].transform(X).shape[1] == 1
    assert pipe.predict_proba(X).shape == (60, 3)
    if config["feature_preprocessing"] == "l1_selection":
        selector = pipe.named_steps["feature_preprocessing"]
        assert np.all(l1_importances(selector.estimator_) < 1e-5)  # the fallback was needed


@pytest.mark.filterwarnings(*FIT_WARNINGS)
@pytest.mark.parametrize("solver", ["liblinear", "saga"])
def test_l1_selection_uses_an_l1_threshold_on_multiclass_data(solver: str) -> None:
    wine = _datasets()[1]
    pipe = build_pipeline(_with_preprocessing("l1_selection", solver=solver, C=0.1), wine.numeric, [])
    pipe.fit(wine.X_train, wine.y_train)
    selector = pipe.named_steps["feature_preprocessing"]
    importances = l1_importances(selector.estimator_)
    np.testing.assert_array_equal(selector.get_support(), importances > 1e-5)
    assert 1 <= selector.get_support().sum() < len(wine.numeric)


@pytest.mark.filterwarnings(*FIT_WARNINGS)
@pytest.mark.parametrize("encoding", ["one_hot", "ordinal"])
def test_pandas_nullable_dtypes(encoding: str) -> None:
    n = 40
    rng = np.random.RandomState(1)
    y = np.tile([0, 1], n // 2)
    X = pd.DataFrame(
        {
            "count": pd.array(
                [None if i % 7 == 0 else int(v) for i, v in enumerate(y * 3 + rng.randint(0, 3, n))],
                dtype="Int64",
            ),
            "ratio": pd.array(
                [None if i % 5 == 0 else float(v) for i, v in enumerate(rng.rand(n))], dtype="Float64"
            ),
            "label": pd.array(
                [None if i % 6 == 0 else ("a" if v else "b") for i, v in enumerate(y)], dtype="string"
            ),
            "flag": pd.array([None if i % 4 == 0 else bool(v) for i, v in enumerate(y)], dtype="boolean"),
        }
    )
    config = default_configuration("random_forest") | {"encoding": encoding}
    if encoding == "ordinal":
        del config["encoding:one_hot:min_frequency"]
    pipe = build_pipeline(config, ["count", "ratio"], ["label", "flag"]).fit(X, y)
    assert pipe.predict_proba(X).shape == (n, 2)
    assert (pipe.predict(X) == y).mean() > 0.8


@pytest.mark.filterwarnings(*FIT_WARNINGS)
def test_k_neighbors_works_with_fewer_rows_than_neighbours() -> None:
    wine = _datasets()[1]
    X, y = wine.X_train.iloc[:20], wine.y_train[:20]
    config = default_configuration("k_neighbors") | {"k_neighbors:n_neighbors": 50}
    pipe = build_pipeline(config, wine.numeric, []).fit(X, y)
    assert pipe.named_steps["classifier"].estimator_.n_neighbors == len(X)
    assert pipe.predict_proba(wine.X_test).shape == (len(wine.X_test), len(np.unique(y)))


@pytest.mark.filterwarnings(*FIT_WARNINGS)
@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost"])
def test_boosting_families_use_one_thread_and_balance_classes(family: str) -> None:
    """The gradient-boosting libraries run on the trial's one core and honour class_weight="balanced"."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    y = np.where(X["a"] + 1.5 * rng.normal(size=2000) > 2.5, "rare", "common")  # about 4 % "rare", noisy
    train, test = slice(0, 1000), slice(1000, None)
    recalls = {}
    for weight in ("none", "balanced"):
        config = default_configuration(family) | {"class_weight": weight}
        pipeline = build_pipeline(config, ["a", "b"], [], n_features=2, random_state=0).fit(X[train], y[train])
        params = pipeline.get_params()
        threads = [v for k, v in params.items() if k.endswith(("n_jobs", "thread_count"))]
        assert threads and all(v == 1 for v in threads)
        predicted = pipeline.predict(X[test])
        assert set(predicted) <= {"rare", "common"} and predicted.shape == (1000,)
        recalls[weight] = float(np.mean(predicted[y[test] == "rare"] == "rare"))
    assert recalls["balanced"] > recalls["none"]
