"""Loading datasets from files, OpenML (offline fixture) and manifests, and rejecting bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import CORPUS, breast_cancer_frame, messy_iris_frame

from metalearn.datasets import (
    from_frame,
    load_file,
    load_openml_dataset,
    load_openml_task,
    read_manifest,
    stratified_subsample,
)
from metalearn.errors import DatasetError
from metalearn.settings import Limits


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
        proc = subprocess.run([sys.executable, "-m", "metalearn.cli", *args], capture_output=True, text=True)
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
