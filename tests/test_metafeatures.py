"""Tests for metalearn.metafeatures: fixed names, clean values, determinism, subsampling, robustness."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymfe.mfe import MFE
from sklearn.datasets import load_breast_cancer, load_iris

from metalearn.errors import DatasetError
from metalearn.metafeatures import (
    EXTRACTOR_VERSION,
    FEATURE_NAMES,
    MAX_ROWS,
    PYMFE_FEATURE_NAMES,
    PYMFE_FEATURES,
    SIMPLE_FEATURE_NAMES,
    SUMMARIES,
    MetaFeatures,
    _stratified_rows,
    extract_metafeatures,
)

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
