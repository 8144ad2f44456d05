"""Loading datasets from files, OpenML (offline fixture) and manifests, task detection, and rejecting bad
input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CORPUS, SHARED, breast_cancer_frame, messy_iris_frame, run_cli, wine_frame
from sklearn.datasets import load_diabetes

from metalearn.datasets import (
    FeatureSchema,
    detect_task,
    from_frame,
    from_xy,
    load_file,
    load_openml_dataset,
    load_openml_task,
    read_manifest,
    stratified_subsample,
)
from metalearn.errors import DatasetError
from metalearn.settings import Limits
from metalearn.tasks import quantile_bins, strata

REGRESSION_CORPUS = SHARED / "datasets-regression"


def diabetes_frame() -> pd.DataFrame:
    """scikit-learn's diabetes table: 442 rows, 10 numeric features, a float target with 214 values."""
    return load_diabetes(as_frame=True).frame


def test_csv_parquet_arff_round_trip(tmp_path: Path) -> None:
    frame = messy_iris_frame()
    frame.to_csv(tmp_path / "iris.csv", index=False)
    frame.to_parquet(tmp_path / "iris.parquet")
    lines = ["@RELATION iris", *[f"@ATTRIBUTE {c} NUMERIC" for c in frame.columns[:4]],
             "@ATTRIBUTE target {setosa,versicolor,virginica}", "@DATA"]
    clean = frame.iloc[:, :4].fillna(0.0).assign(target=frame["target"])
    lines += [",".join(str(v) for v in row) for row in clean.itertuples(index=False)]
    (tmp_path / "iris.arff").write_text("\n".join(lines))
    csv = load_file(tmp_path / "iris.csv", "target")
    parquet = load_file(tmp_path / "iris.parquet", "target", name="custom")
    arff = load_file(tmp_path / "iris.arff", "target")
    assert csv.name == "iris" and parquet.name == "custom" and arff.name == "iris"
    assert csv.n_rows == parquet.n_rows == arff.n_rows == 150
    assert set(csv.categorical) == {"colour", "size"}
    assert csv.n_classes == 3 and csv.X["sepal_length"].isna().any()
    assert csv.content_hash == parquet.content_hash  # same data, same dataset
    assert arff.content_hash != csv.content_hash


def test_integer_like_text_labels_become_integers() -> None:
    frame = breast_cancer_frame(60)
    frame["target"] = (frame["target"] == "benign").astype(int).astype(str)
    dataset = from_frame(frame, "target")
    assert pd.api.types.is_integer_dtype(dataset.y)


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (b"", ".csv", "file is empty"),
        (b"a,b\n", ".csv", "is empty"),
        (b"\x00\x01\x02garbage\xff\xfe" * 50, ".parquet", "cannot read"),
        (b"x,y\n1,2\n", ".xlsx", "unsupported file type"),
        (b"x,target\n1,a\n2,a\n3,a\n", ".csv", "at least 2"),
        (b"x,label\n1,a\n2,b\n", ".csv", "target column 'target' not found"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, content: bytes, suffix: str, message: str) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        load_file(path, "target")


def test_missing_file_and_size_limits(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="file not found"):
        load_file(tmp_path / "nope.csv", "target")
    breast_cancer_frame(100).to_csv(tmp_path / "big.csv", index=False)
    with pytest.raises(DatasetError, match="more than the limit of 50"):
        load_file(tmp_path / "big.csv", "target", limits=Limits(max_rows=50))
    with pytest.raises(DatasetError, match="feature columns"):
        load_file(tmp_path / "big.csv", "target", limits=Limits(max_columns=5))
    with pytest.raises(DatasetError, match="MiB"):
        load_file(tmp_path / "big.csv", "target", limits=Limits(max_file_bytes=100))


def test_cli_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "one_class.csv"
    path.write_text("x,target\n1,a\n2,a\n")
    for args in (["metafeatures", str(tmp_path / "missing.csv"), "--target", "y"],
                 ["metafeatures", str(path), "--target", "target"],
                 ["search", str(path), "--target", "nope", "--db", str(tmp_path / "kb.sqlite")]):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr


def test_openml_dataset_from_recorded_cache(openml_cache: Path) -> None:
    dataset = load_openml_dataset(2, cache=str(openml_cache))
    assert dataset.name == "anneal" and dataset.openml_id == 2 and dataset.source == "openml"
    assert dataset.n_rows == 898 and dataset.n_classes >= 5
    assert dataset.categorical  # anneal has nominal features


def test_openml_task_without_cached_data_is_a_clear_error(openml_cache: Path) -> None:
    with pytest.raises(DatasetError, match="cannot load"):
        load_openml_task(1, cache=str(openml_cache))


def test_manifest_directory(tmp_path: Path) -> None:
    breast_cancer_frame(80).to_parquet(tmp_path / "a.parquet")
    messy_iris_frame().to_parquet(tmp_path / "b.parquet")
    manifest = [
        {"name": "a", "file": "a.parquet", "target": "target", "family": "bc", "categorical": []},
        {"name": "b", "file": "b.parquet", "target": "target", "family": "iris", "categorical": ["colour"],
         "openml_id": 61},
    ]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    entries = read_manifest(tmp_path)
    assert [e.family for e in entries] == ["bc", "iris"]
    b = entries[1].load()
    assert b.openml_id == 61 and b.family == "iris" and "colour" in b.categorical
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_manifest(tmp_path)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/datasets is not present")
def test_shared_corpus_manifest_loads() -> None:
    entries = read_manifest(CORPUS)
    assert len(entries) == 187 and len({e.family for e in entries}) == 119  # 123 original + 64 from R's datasets
    assert {e.task for e in entries} == {"classification"}
    breast = next(e for e in entries if e.name == "breast").load()
    assert set(breast.categorical) >= {"f0", "f1"}


def test_stratified_subsample_keeps_every_class() -> None:
    frame = breast_cancer_frame(400)
    frame.loc[:2, "target"] = "rare"
    dataset = from_frame(frame, "target")
    X, y = stratified_subsample(dataset.X, dataset.y, 100, seed=1)
    assert len(X) == 100 and set(y) == set(dataset.y)
    X2, _ = stratified_subsample(dataset.X, dataset.y, 100, seed=1)
    assert X.equals(X2)


def test_classification_content_hash_is_pinned() -> None:
    """Knowledge bases identify datasets by this hash: it must not change for classification data."""
    dataset = from_frame(breast_cancer_frame(120), "target")
    assert dataset.task == "classification"
    assert dataset.content_hash == "59b1e8e94523a079c8c68ceb28ce4c5c9b1cc8b8ae083a08b6fd8f1ca4e766e9"
    assert from_frame(messy_iris_frame(), "target").content_hash == (
        "ab33a631810745f0aacc0f9ff6fcaa648bb34fd1e51b95d59d27179b4c252585")


@pytest.mark.parametrize(
    ("values", "task", "reason"),
    [
        (np.linspace(0, 1, 412), "regression", "numeric target with 412 distinct values -> regression"),
        (np.arange(100) % 30, "regression", "30 distinct values"),
        ([0.5, 1.5, 2.25, 0.5, 1.5], "regression", "fractional values (3 distinct)"),
        (np.arange(100) % 20, "classification", "20 distinct integer values"),
        ([0.0, 1.0, 1.0, 0.0], "classification", "2 distinct integer values"),
        ([0.5, 1.5, 0.5], "classification", "2 distinct"),
        (pd.Series(["a", "b"] * 30), "classification", "non-numeric"),
        (pd.Series([f"v{i}" for i in range(100)]), "classification", "non-numeric"),
        (pd.Series([True, False] * 5), "classification", "boolean target"),
        (pd.Series(np.arange(50.0)).astype("category"), "classification", "non-numeric (category)"),
    ],
)
def test_detect_task(values: object, task: str, reason: str) -> None:
    detected, why = detect_task(pd.Series(values))
    assert detected == task and reason in why and why.endswith(f"-> {task}")


def test_regression_is_detected_and_kept_float() -> None:
    dataset = from_frame(diabetes_frame(), "target", "diabetes")
    assert dataset.task == "regression" and dataset.n_classes is None
    assert dataset.y.dtype == "float64" and dataset.y.name == "target" and dataset.n_rows == 442
    described = dataset.describe()
    assert described["task"] == "regression" and described["n_classes"] is None
    assert FeatureSchema.of(dataset).classes is None
    assert FeatureSchema.of(dataset).to_json()["classes"] is None
    classification = from_frame(wine_frame(), "target")
    assert classification.task == "classification" and classification.describe()["task"] == "classification"
    assert classification.n_classes == 3 and FeatureSchema.of(classification).classes == (0, 1, 2)
    # a float target with many values used to be rejected as "classification only"
    frame = diabetes_frame().assign(target=lambda f: f["target"] + 0.5)
    assert from_frame(frame, "target").task == "regression"


def test_task_can_be_forced() -> None:
    wine = from_frame(wine_frame(), "target", task="regression")  # 3 integer codes, as numbers
    assert wine.task == "regression" and wine.y.dtype == "float64" and wine.n_classes is None
    assert wine.content_hash != from_frame(wine_frame(), "target").content_hash
    frame = pd.DataFrame({"x": np.arange(12.0), "target": [0.5, 1.5, 2.5] * 4})
    as_regression = from_frame(frame, "target")
    as_classes = from_frame(frame, "target", task="classification")
    assert as_regression.task == "regression" and as_classes.task == "classification"
    assert as_classes.n_classes == 3 and list(as_classes.y[:3]) == ["0.5", "1.5", "2.5"]
    # same text form of the target either way: the task keeps the two datasets apart
    assert as_regression.content_hash != as_classes.content_hash
    continuous = diabetes_frame().assign(target=np.random.default_rng(0).normal(size=442))
    with pytest.raises(DatasetError, match="looks continuous .* task='regression'"):
        from_frame(continuous, "target", task="classification")
    with pytest.raises(DatasetError, match="unknown task 'ranking'"):
        from_frame(diabetes_frame(), "target", task="ranking")


def test_load_file_and_from_xy_pass_the_task(tmp_path: Path) -> None:
    diabetes_frame().to_csv(tmp_path / "diabetes.csv", index=False)
    assert load_file(tmp_path / "diabetes.csv", "target").task == "regression"
    wine_frame().to_csv(tmp_path / "wine.csv", index=False)
    assert load_file(tmp_path / "wine.csv", "target").task == "classification"
    assert load_file(tmp_path / "wine.csv", "target", task="regression").task == "regression"
    X, y = load_diabetes(return_X_y=True)
    dataset = from_xy(X, y)
    assert dataset.task == "regression" and dataset.y.name == "target"
    assert from_xy(X, (y > 140).astype(int)).task == "classification"
    assert from_xy(X, np.round(y), task="classification").task == "classification"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (["a", "b", "c"] * 10, "is not numeric .* regression needs a numeric target"),
        ([True, False] * 15, "is not numeric \\(dtype bool\\)"),
        ([1.0, 2.0, 3.0] * 3, "9 labelled rows; regression needs at least 10"),
        ([4.2] * 30, "single value"),
        ([1.0, np.inf, 2.0] * 10, "infinite values"),
    ],
)
def test_bad_regression_targets(target: list, message: str) -> None:
    frame = pd.DataFrame({"x": np.arange(len(target), dtype=float), "target": target})
    with pytest.raises(DatasetError, match=message):
        from_frame(frame, "target", "bad", task="regression")


def test_regression_split_and_subsample_stratify_on_quantiles() -> None:
    dataset = from_frame(diabetes_frame(), "target")
    train, test = dataset.split(0.25, seed=3)
    assert train.task == test.task == "regression" and train.n_rows + test.n_rows == 442
    assert test.n_rows == 111 and train.y.dtype == "float64"
    again = dataset.split(0.25, seed=3)[1]
    assert test.y.equals(again.y) and not test.y.equals(dataset.split(0.25, seed=4)[1].y)
    bins = quantile_bins(dataset.y)
    test_bins = np.bincount(bins[np.isin(np.arange(442), _positions(dataset, test))], minlength=10)
    assert test_bins.min() >= 10 and test_bins.max() <= 12  # ~11 test rows per decile
    X, y = stratified_subsample(dataset.X, dataset.y, 100, seed=1)
    assert len(X) == 100 and y.dtype == "float64"
    assert np.bincount(quantile_bins(y, 10)).min() >= 8  # every decile present
    X2, _ = stratified_subsample(dataset.X, dataset.y, 100, seed=1, task="regression")
    assert X.equals(X2)
    tiny = from_frame(diabetes_frame().head(12), "target", task="regression")
    small_train, small_test = tiny.split(0.25, seed=0)  # 3 test rows: one from each of 3 bins
    assert (small_train.n_rows, small_test.n_rows) == (9, 3)
    assert sorted(np.bincount(quantile_bins(tiny.y, 3)[_positions(tiny, small_test)])) == [1, 1, 1]
    assert strata(tiny.y, "regression", 3) is not None
    assert strata(tiny.y, "regression", 1) is None  # a single test row: plain random
    assert tiny.split(0.05, seed=0)[1].n_rows == 1
    assert len(stratified_subsample(tiny.X, tiny.y, 11, seed=0)[0]) == 11  # likewise


def _positions(dataset: object, part: object) -> np.ndarray:
    """Row positions of ``part`` in ``dataset`` (rows are unique in the diabetes table)."""
    keys = pd.util.hash_pandas_object(dataset.X, index=False)
    return np.flatnonzero(keys.isin(pd.util.hash_pandas_object(part.X, index=False)).to_numpy())


def test_manifest_tasks(tmp_path: Path) -> None:
    diabetes_frame().to_parquet(tmp_path / "d.parquet")
    wine_frame().to_parquet(tmp_path / "w.parquet")
    manifest = [
        {"name": "d", "file": "d.parquet", "target": "target", "task": "regression", "target_unique": 214},
        {"name": "w", "file": "w.parquet", "target": "target"},
        {"name": "wr", "file": "w.parquet", "target": "target", "task": "regression"},
    ]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    d, w, wr = read_manifest(tmp_path)
    assert (d.task, d.target_unique, w.task, w.target_unique) == ("regression", 214, "classification", None)
    assert d.load().task == "regression" and d.load().y.nunique() == d.target_unique
    assert w.load().task == "classification" and wr.load().task == "regression"
    manifest[0]["task"] = "ranking"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="entry 0 is malformed: unknown task"):
        read_manifest(tmp_path)


@pytest.mark.skipif(not REGRESSION_CORPUS.is_dir(), reason="../shared/datasets-regression is not present")
def test_shared_regression_corpus_manifest_loads() -> None:
    entries = read_manifest(REGRESSION_CORPUS)
    assert len(entries) == 89 and len({e.family for e in entries}) == 85
    assert {e.task for e in entries} == {"regression"}
    for entry in entries:
        dataset = entry.load()
        assert dataset.task == "regression" and dataset.n_classes is None, entry.name
        assert dataset.y.dtype == "float64" and dataset.y.nunique() == entry.target_unique, entry.name
        assert detect_task(dataset.y)[0] == "regression", entry.name  # detected too, not only declared
