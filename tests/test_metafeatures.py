"""Tests for metalearn.metafeatures: fixed names, clean values, determinism, subsampling, robustness, for
classification and regression."""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymfe.mfe import MFE
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from metalearn import metafeatures_regression
from metalearn.errors import DatasetError
from metalearn.metafeatures import (
    EXTRACTOR_VERSION,
    EXTRACTOR_VERSIONS,
    FEATURE_NAMES,
    FEATURE_NAMES_BY_TASK,
    MAX_COLS,
    MAX_ROWS,
    PYMFE_FEATURE_NAMES,
    PYMFE_FEATURES,
    REGRESSION_EXTRACTOR_VERSION,
    REGRESSION_FEATURE_NAMES,
    REGRESSION_PYMFE_FEATURES,
    SIMPLE_FEATURE_NAMES,
    SUMMARIES,
    MetaFeatures,
    _stratified_rows,
    extract_metafeatures,
    feature_names,
)
from metalearn.metafeatures_regression import (
    LANDMARK_FEATURE_NAMES,
    REGRESSION_PYMFE_FEATURE_NAMES,
    REGRESSION_SIMPLE_FEATURE_NAMES,
)
from metalearn.protocol import TASKS
from metalearn.tasks import quantile_bins

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _mixed_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric and string-categorical columns with missing values in both."""
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["no", "yes", "maybe"], size=n, p=[0.6, 0.3, 0.1]), name="label")
    X = pd.DataFrame(
        {
            "age": np.where(rng.random(n) < 0.1, np.nan, rng.normal(40, 10, n)),
            "income": rng.lognormal(10, 1, n),
            "colour": pd.Series(rng.choice(["red", "green", "blue", None], size=n), dtype=object),
            "city": pd.Series(rng.choice([f"c{i}" for i in range(30)], size=n)).astype("category"),
            "flag": rng.random(n) < 0.5,
        }
    )
    return X, y


def _check_result(result: MetaFeatures) -> None:
    assert isinstance(result, MetaFeatures)
    assert result.extractor == EXTRACTOR_VERSION
    assert tuple(result.features) == FEATURE_NAMES
    for name, value in result.features.items():
        assert value is None or (type(value) is float and math.isfinite(value)), (name, value)
    for name in SIMPLE_FEATURE_NAMES:
        assert result.features[name] is not None, name
    payload = result.to_json()
    assert set(payload) == {"extractor", "seconds", "features"}
    json.dumps(payload, allow_nan=False)  # raises on nan/inf
    vector = result.vector()
    assert vector.dtype == float and vector.shape == (len(FEATURE_NAMES),)
    assert np.array_equal(np.isnan(vector), [v is None for v in result.features.values()])


def test_feature_names_are_fixed_and_unique() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURE_NAMES == SIMPLE_FEATURE_NAMES + PYMFE_FEATURE_NAMES
    assert set(PYMFE_FEATURES) == {"general", "statistical", "info-theory", "model-based", "landmarking"}


@pytest.mark.parametrize("dataset", ["breast_cancer", "mixed"])
def test_constant_names_match_pymfe_output(dataset: str) -> None:
    """The constant name list is exactly what pymfe produces for the configured groups and summaries."""
    if dataset == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        data, cat_cols = X, []
    else:
        frame, labels = _mixed_frame()
        data = frame.assign(age=frame["age"].fillna(40.0), colour=frame["colour"].fillna("none"))
        data = data.astype({"city": str, "flag": str}).to_numpy(dtype=object)
        y, cat_cols = labels.to_numpy(), [2, 3, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mfe = MFE(
            groups=list(PYMFE_FEATURES),
            features=[f for feats in PYMFE_FEATURES.values() for f in feats],
            summary=list(SUMMARIES),
            num_cv_folds=5,
            random_state=0,
        )
        mfe.fit(data, y, cat_cols=cat_cols, suppress_warnings=True)
        names, _ = mfe.extract(suppress_warnings=True)
    assert tuple(names) == PYMFE_FEATURE_NAMES


def test_same_names_and_clean_values_across_datasets() -> None:
    iris = extract_metafeatures(*load_iris(return_X_y=True, as_frame=True))
    cancer = extract_metafeatures(*load_breast_cancer(return_X_y=True, as_frame=True))
    X, y = _mixed_frame()
    mixed = extract_metafeatures(X, y, categorical=["colour"])
    for result in (iris, cancer, mixed):
        _check_result(result)
    assert list(iris.features) == list(cancer.features) == list(mixed.features)
    # Plain, well-behaved tables define almost everything (can_cor.nansd needs >= 3 classes).
    assert sum(v is None for v in iris.features.values()) == 0
    assert sum(v is None for v in cancer.features.values()) <= 1

    simple = mixed.features
    assert simple["simple.n_classes"] == 3.0
    assert simple["simple.log_n_rows"] == pytest.approx(math.log(300))
    assert simple["simple.log_n_features"] == pytest.approx(math.log(5))
    assert simple["simple.cat_ratio"] == pytest.approx(3 / 5)  # colour, city (category), flag (bool)
    assert simple["simple.missing_ratio"] == pytest.approx(X.isna().to_numpy().mean())
    assert 0 < simple["simple.minority_class_ratio"] < 1 / 3
    assert 0 < simple["simple.class_entropy"] < 1
    assert mixed.features["nr_cat"] == 3.0 and mixed.features["nr_num"] == 2.0
    assert iris.features["simple.class_entropy"] == pytest.approx(1.0)
    assert 0.5 < iris.features["one_nn.nanmean"] <= 1.0


def test_deterministic_for_same_seed() -> None:
    X, y = _mixed_frame(n=400)
    first = extract_metafeatures(X, y, seed=3, max_rows=250)
    second = extract_metafeatures(X, y, seed=3, max_rows=250)
    assert first.features == second.features
    other = extract_metafeatures(X, y, seed=4, max_rows=250)
    assert other.features != first.features  # the seed drives the subsample and the CV folds


def test_does_not_touch_global_rng_or_leak_warnings() -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    np.random.seed(1234)
    expected = np.random.random()
    np.random.seed(1234)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        extract_metafeatures(X.assign(const=0.0), y)
    assert np.random.random() == expected
    assert caught == []


def test_large_table_is_subsampled_but_size_features_use_full_table() -> None:
    rng = np.random.default_rng(0)
    n, max_rows = 3000, 200
    y = pd.Series(rng.choice([0, 1, 2], size=n, p=[0.7, 0.29, 0.01]))
    X = pd.DataFrame(rng.normal(size=(n, 4)) + y.to_numpy()[:, None], columns=list("abcd"))
    result = extract_metafeatures(X, y, max_rows=max_rows)
    _check_result(result)
    assert result.features["simple.log_n_rows"] == pytest.approx(math.log(n))
    assert result.features["simple.minority_class_ratio"] == pytest.approx((y == 2).mean())
    # pymfe saw only the subsample: nodes_per_inst = nodes / rows seen.
    rows_seen = result.features["nodes"] / result.features["nodes_per_inst"]
    assert rows_seen == pytest.approx(len(_stratified_rows(y.to_numpy(), max_rows, 0)))
    assert rows_seen == max_rows
    assert MAX_ROWS >= 1000


def test_stratified_rows() -> None:
    codes = np.repeat([0, 1, 2], [9000, 990, 10])
    rows = _stratified_rows(codes, 1000, seed=7)
    counts = np.bincount(codes[rows])
    assert len(rows) == 1000 and len(set(rows.tolist())) == 1000
    assert np.all(np.diff(rows) > 0)
    assert counts.tolist() == [899, 99, 2]  # minority raised to 2 rows
    assert np.array_equal(rows, _stratified_rows(codes, 1000, seed=7))
    assert not np.array_equal(rows, _stratified_rows(codes, 1000, seed=8))
    # Tiny classes keep at least two rows (if they have them), paid for by the largest class.
    tiny = np.repeat([0, 1, 2, 3], [5000, 2, 2, 1])
    kept = np.bincount(tiny[_stratified_rows(tiny, 100, seed=0)], minlength=4)
    assert kept.tolist() == [95, 2, 2, 1]
    # Only when the minimums alone exceed the cap is it exceeded.
    many = np.repeat(np.arange(60), 50)
    assert np.bincount(many[_stratified_rows(many, 100, seed=0)]).tolist() == [2] * 60
    assert np.array_equal(_stratified_rows(codes[:50], 100, seed=0), np.arange(50))


def test_degenerate_columns_do_not_crash() -> None:
    rng = np.random.default_rng(1)
    n = 120
    y = pd.Series(rng.integers(0, 2, n))
    X = pd.DataFrame(
        {
            "signal": rng.normal(size=n) + y,
            "constant": 5.0,
            "all_nan": np.nan,
            "with_inf": np.where(rng.random(n) < 0.1, np.inf, rng.normal(size=n)),
            "one_level": "x",
            "all_missing_cat": pd.Series([None] * n, dtype=object),
            "many_levels": [f"id{i}" for i in range(n)],
        }
    )
    result = extract_metafeatures(X, y, categorical=["all_missing_cat"])
    _check_result(result)
    assert result.features["simple.missing_ratio"] == pytest.approx(2 * n / (7 * n))
    assert result.features["one_nn.nanmean"] is not None
    # A table of nothing but degenerate columns still yields every key.
    only_bad = extract_metafeatures(X[["constant", "all_nan", "one_level"]], y)
    _check_result(only_bad)


def test_invalid_input_raises_dataset_error() -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    with pytest.raises(DatasetError):
        extract_metafeatures(X, pd.Series(np.zeros(len(X))))
    with pytest.raises(DatasetError):
        extract_metafeatures(X, y.iloc[:10])
    with pytest.raises(DatasetError):
        extract_metafeatures(X, y, categorical=["no such column"])
    with pytest.raises(DatasetError):
        extract_metafeatures(X.iloc[:, :0], y)
    with pytest.raises(ValueError):
        extract_metafeatures(X, y, seed=-1)


def _manifest() -> dict[str, dict]:
    if not (SHARED / "manifest.json").is_file():
        pytest.skip(f"shared datasets not found at {SHARED}")
    return {item["name"]: item for item in json.loads((SHARED / "manifest.json").read_text())}


@pytest.mark.parametrize("name", ["breast", "Titanic"])
def test_real_shared_dataset(name: str) -> None:
    item = _manifest().get(name)
    if item is None or not (SHARED / item["file"]).is_file():
        pytest.skip(f"{name} not in {SHARED}")
    frame = pd.read_parquet(SHARED / item["file"])
    X, y = frame.drop(columns=[item["target"]]), frame[item["target"]]
    result = extract_metafeatures(X, y, categorical=item["categorical"])
    _check_result(result)
    assert result.features["simple.log_n_rows"] == pytest.approx(math.log(item["n_rows"]))
    assert result.features["simple.n_classes"] == item["n_classes"]
    assert result.features["nr_cat"] == len(item["categorical"])
    assert (result.features["simple.missing_ratio"] > 0) == (item["missing_cells"] > 0)
    assert sum(v is None for v in result.features.values()) <= 2


# --------------------------------------------------------------------------- classification vector pinned

# Knowledge bases hold classification vectors: names and values must not move (see EXTRACTOR_VERSION).
_IRIS_PINNED = {
    "simple.class_entropy": 0.9999999999999998,
    "freq_class.nanmean": 0.3333333333333333,
    "cor.nanmean": 0.594116025760156,
    "w_lambda": 0.023438633222267347,
    "mut_inf.nanmean": 0.8439327791692814,
    "attr_ent.nanmean": 2.2771912775084115,
    "leaves": 9.0,
    "tree_depth.nanmean": 3.0588235294117645,
    "one_nn.nanmean": 0.9600000000000002,
    "naive_bayes.nanmean": 0.96,
    "linear_discr.nanmean": 0.9800000000000001,
    "nr_outliers": 1.0,
}


def test_classification_vector_is_unchanged() -> None:
    digest = hashlib.sha256(json.dumps(list(FEATURE_NAMES)).encode()).hexdigest()
    assert digest == "318fd7e027c8c0faac312b0d1480eec1ebf8bea28c76147cf67e534633335b23"
    assert len(FEATURE_NAMES) == 69 and EXTRACTOR_VERSION.endswith("/ml-1")
    X, y = load_iris(return_X_y=True, as_frame=True)
    default = extract_metafeatures(X, y)
    assert default.extractor == EXTRACTOR_VERSION == EXTRACTOR_VERSIONS["classification"]
    assert default.task == "classification" and tuple(default.features) == FEATURE_NAMES
    for name, value in _IRIS_PINNED.items():
        assert default.features[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    explicit = extract_metafeatures(X, y, task="classification")
    assert explicit.features == default.features


# --------------------------------------------------------------------------- regression


def _regression_frame(n: int = 400, seed: int = 0, cols: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric and categorical columns with missing values; a skewed target that depends on them."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(cols)})
    X["x0"] = X["x0"].mask(rng.random(n) < 0.1)
    X["colour"] = pd.Series(rng.choice(["red", "green", "blue", None], size=n), dtype=object)
    X["city"] = pd.Series(rng.choice([f"c{i}" for i in range(30)], size=n)).astype("category")
    signal = 2 * X["x1"] + X["x2"] ** 2 + (X["colour"] == "red") + rng.normal(scale=0.5, size=n)
    return X, pd.Series(np.exp(signal / 2), name="price")


def _check_regression(result: MetaFeatures) -> None:
    assert result.extractor == REGRESSION_EXTRACTOR_VERSION and result.task == "regression"
    assert tuple(result.features) == REGRESSION_FEATURE_NAMES
    for name, value in result.features.items():
        assert value is None or (type(value) is float and math.isfinite(value)), (name, value)
    for name in REGRESSION_SIMPLE_FEATURE_NAMES:
        if name != "simple.target_cv":  # undefined for a zero-mean target
            assert result.features[name] is not None, name
    json.dumps(result.to_json(), allow_nan=False)
    vector = result.vector()
    assert vector.shape == (len(REGRESSION_FEATURE_NAMES),)
    assert np.array_equal(np.isnan(vector), [v is None for v in result.features.values()])


def test_regression_feature_names_are_fixed_and_unique() -> None:
    assert set(EXTRACTOR_VERSIONS) == set(FEATURE_NAMES_BY_TASK) == set(TASKS)
    assert REGRESSION_EXTRACTOR_VERSION.endswith("/reg-1") and REGRESSION_EXTRACTOR_VERSION != EXTRACTOR_VERSION
    assert len(set(REGRESSION_FEATURE_NAMES)) == len(REGRESSION_FEATURE_NAMES) == 44
    assert REGRESSION_FEATURE_NAMES == (
        REGRESSION_SIMPLE_FEATURE_NAMES + REGRESSION_PYMFE_FEATURE_NAMES + LANDMARK_FEATURE_NAMES)
    assert set(REGRESSION_PYMFE_FEATURES) == {"general", "statistical", "info-theory"}
    assert feature_names(REGRESSION_EXTRACTOR_VERSION) == feature_names("regression") == REGRESSION_FEATURE_NAMES
    assert feature_names(EXTRACTOR_VERSION) == feature_names("pymfe-0.0.1/ml-0") == FEATURE_NAMES


def test_regression_pymfe_names_match_pymfe_output() -> None:
    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mfe = MFE(groups=list(REGRESSION_PYMFE_FEATURES),
                  features=[f for feats in REGRESSION_PYMFE_FEATURES.values() for f in feats],
                  summary=list(SUMMARIES), random_state=0)
        mfe.fit(X, quantile_bins(y), suppress_warnings=True)
        names, _ = mfe.extract(suppress_warnings=True)
    assert tuple(names) == REGRESSION_PYMFE_FEATURE_NAMES


def test_regression_metafeatures_are_clean_and_deterministic() -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    diabetes = extract_metafeatures(X, y, task="regression")
    _check_regression(diabetes)
    assert sum(v is None for v in diabetes.features.values()) == 0
    features = diabetes.features
    assert features["simple.log_n_rows"] == pytest.approx(math.log(442))
    assert features["simple.target_distinct_ratio"] == pytest.approx(214 / 442)
    assert features["simple.target_integer"] == 1.0 and features["simple.target_zero_ratio"] == 0.0
    assert features["simple.target_cv"] == pytest.approx(y.std(ddof=0) / y.mean())
    assert features["simple.target_skewness"] == pytest.approx(float(((y - y.mean()) ** 3).mean() / y.std(ddof=0) ** 3))
    assert 0.3 < features["landmark.linear_r2.nanmean"] < 0.7 and features["nr_num"] == 10.0

    X, y = _regression_frame()
    first = extract_metafeatures(X, y, seed=3, max_rows=250, task="regression")
    _check_regression(first)
    assert first.features["nr_cat"] == 2.0 and first.features["simple.cat_ratio"] == pytest.approx(2 / 7)
    assert first.features["simple.target_skewness"] > 0.5 and first.features["simple.target_integer"] == 0.0
    assert first.features == extract_metafeatures(X, y, seed=3, max_rows=250, task="regression").features
    assert first.features != extract_metafeatures(X, y, seed=4, max_rows=250, task="regression").features
    centred = extract_metafeatures(X, y - y.mean(), task="regression")  # cv is undefined at mean 0
    _check_regression(centred)
    assert centred.features["simple.target_cv"] is None or abs(centred.features["simple.target_cv"]) > 1e6


def test_regression_tolerates_degenerate_tables() -> None:
    rng = np.random.default_rng(1)
    n = 60
    y = pd.Series(np.where(rng.random(n) < 0.7, 0.0, rng.gamma(2.0, 10.0, n)))  # zero-inflated
    X = pd.DataFrame({"constant": 5.0, "all_nan": np.nan, "one_level": "x",
                      "signal": y + rng.normal(size=n), "flag": rng.random(n) < 0.5})
    result = extract_metafeatures(X, y, task="regression")
    _check_regression(result)
    assert result.features["simple.target_zero_ratio"] == pytest.approx((y == 0).mean())
    few = extract_metafeatures(X.head(8), pd.Series(np.arange(8.0)), task="regression")
    _check_regression(few)
    assert all(few.features[name] is None for name in LANDMARK_FEATURE_NAMES)  # too few rows for CV


def test_regression_cost_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 20k-row, 120-column table: pymfe and the landmarkers see at most MAX_ROWS x MAX_COLS."""
    seen: list[tuple[int, int]] = []
    prepare = metafeatures_regression.prepare_for_pymfe

    def recording(X: pd.DataFrame, is_cat: list[bool]) -> tuple[np.ndarray, list[int]]:
        seen.append(X.shape)
        return prepare(X, is_cat)

    monkeypatch.setattr(metafeatures_regression, "prepare_for_pymfe", recording)
    X, y = _regression_frame(n=20_000, cols=118)
    start = time.perf_counter()
    result = extract_metafeatures(X, y, task="regression")
    elapsed = time.perf_counter() - start
    _check_regression(result)
    assert seen == [(MAX_ROWS, MAX_COLS)]
    assert result.features["simple.log_n_rows"] == pytest.approx(math.log(20_000))
    assert result.features["nr_attr"] == MAX_COLS
    assert elapsed < 30  # ~1 s on an idle core; generous for a loaded CI machine


def test_regression_rejects_unusable_targets() -> None:
    X, y = _regression_frame(n=50)
    with pytest.raises(DatasetError, match="not numeric"):
        extract_metafeatures(X, y.astype(str), task="regression")
    with pytest.raises(DatasetError, match="not numeric"):
        extract_metafeatures(X, y > 1, task="regression")
    with pytest.raises(DatasetError, match="single value"):
        extract_metafeatures(X, pd.Series(np.full(50, 2.5)), task="regression")
    with pytest.raises(DatasetError, match="infinite"):
        extract_metafeatures(X, y.replace(y.iloc[0], np.inf), task="regression")
    with pytest.raises(DatasetError, match="no non-missing"):
        extract_metafeatures(X, pd.Series(np.full(50, np.nan)), task="regression")
    with pytest.raises(DatasetError, match="unknown task"):
        extract_metafeatures(X, y, task="ranking")
