"""The benchmark's datasets: a suite's dataset sources, its task, and each dataset's seeded outer train / test split."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from metalearn import seeding
from metalearn.datasets import Dataset, stratified_subsample
from metalearn.errors import DatasetError, MetalearnError
from metalearn.protocol import TASKS, check_choice
from metalearn.seeding import DatasetSource
from metalearn.tasks import strata


def resolve_suite(suite: str, cache: str | None = None) -> list[DatasetSource]:
    """Dataset sources of a manifest directory (or ``manifest.json``) or an OpenML suite id / alias."""
    path = Path(suite).expanduser()
    if path.is_dir() or path.is_file():
        sources = seeding.manifest_sources(str(path))
        if not sources:
            raise MetalearnError(f"manifest {path} lists no datasets")
        return sources
    if os.sep in suite or suite.endswith(".json") or suite.startswith("."):
        raise MetalearnError(f"no manifest directory or file at {suite}")
    try:
        sources = seeding.openml_suite_sources(suite, cache)
    except DatasetError as exc:
        raise MetalearnError(f"unknown or unreachable OpenML suite {suite!r} (not a manifest directory either): "
                             f"{exc}") from None
    if not sources:
        raise MetalearnError(f"OpenML suite {suite!r} has no tasks")
    return sources


def suite_task(sources: list[DatasetSource], task: str | None = None) -> tuple[str, list[DatasetSource]]:
    """The one task of a benchmark run and its sources: ``task`` when given (the sources of that task),
    else the task all sources share (manifest ``"task"``); a mix without ``task`` is refused."""
    tasks = sorted({s.task for s in sources}, key=TASKS.index)
    if task is None:
        if len(tasks) > 1:
            counts = ", ".join(f"{sum(s.task == t for s in sources)} {t}" for t in tasks)
            raise MetalearnError(f"the suite mixes tasks ({counts} datasets); one benchmark run is one task: "
                                 f"pass --task {' or --task '.join(tasks)}")
        task = tasks[0] if tasks else "classification"
    check_choice("task", task, TASKS)
    chosen = [s for s in sources if s.task == task]
    if not chosen:
        raise MetalearnError(f"the suite has no {task} dataset (its datasets are {', '.join(tasks)})")
    return task, chosen


def read_selection(path: str) -> list[str]:
    """Dataset names chosen in a file: a JSON list, a JSON object with a ``datasets`` list, or one name per line."""
    file = Path(path).expanduser()
    try:
        text = file.read_text()
    except OSError as exc:
        raise MetalearnError(f"cannot read the dataset selection {file}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    names = data.get("datasets") if isinstance(data, dict) else data
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise MetalearnError(f"{file} must list dataset names (a JSON list, {{\"datasets\": [...]}}, or lines)")
    return names


def select_sources(sources: list[DatasetSource], *, shuffle: bool = False, limit: int | None = None,
                   datasets: str | None = None) -> list[DatasetSource]:
    """The benchmark's datasets: one source per dataset key (a manifest may list a dataset twice), only those
    named in the ``datasets`` file when given (an unknown name is an error), in a fixed random order with
    ``shuffle``, the first ``limit``."""
    unique: dict[str, DatasetSource] = {}
    for source in sources:
        unique.setdefault(source.key, source)
    chosen = list(unique.values())
    if datasets is not None:
        names = read_selection(datasets)
        by_name = {source.key.split(":", 1)[-1]: source for source in chosen}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise MetalearnError(f"{datasets} names datasets the suite does not have: {', '.join(unknown[:10])}")
        chosen = [by_name[name] for name in dict.fromkeys(names)]
    if shuffle:
        chosen = [chosen[i] for i in np.random.default_rng(0).permutation(len(chosen))]
    return chosen[:limit] if limit else chosen


def _subset(dataset: Dataset, index: np.ndarray, X: pd.DataFrame | None = None, y: pd.Series | None = None,
            name: str | None = None) -> Dataset:
    X = dataset.X.iloc[index].reset_index(drop=True) if X is None else X
    y = dataset.y.iloc[index].reset_index(drop=True) if y is None else y
    return Dataset(name=name or dataset.name, X=X, y=y, categorical=list(dataset.categorical), target=dataset.target,
                   source="benchmark", family=dataset.family, openml_id=dataset.openml_id, task=dataset.task)


def _capped(part: Dataset, max_rows: int | None, seed: int) -> Dataset:
    """``part`` with at most ``max_rows`` rows (a stratified subsample)."""
    if max_rows is None or part.n_rows <= max_rows:
        return part
    X, y = stratified_subsample(part.X, part.y, max_rows, seed, task=part.task)
    return _subset(part, np.arange(len(X)), X=X, y=y, name=part.name)


def _regression_split(dataset: Dataset, seed: int, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Train / test row positions stratified on quantile bins of the target (plain random when too small)."""
    n_test = max(1, int(round(test_size * dataset.n_rows)))
    stratify = strata(dataset.y, "regression", min(n_test, dataset.n_rows - n_test))
    train_idx, test_idx = train_test_split(np.arange(dataset.n_rows), test_size=n_test, stratify=stratify,
                                           random_state=seed)
    return np.sort(train_idx), np.sort(test_idx)


def _classification_split(dataset: Dataset, seed: int, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Train / test row positions stratified on the classes; classes with a single row go to train."""
    y = dataset.y
    counts = y.value_counts()
    rare = y.isin(counts[counts < 2].index).to_numpy()
    rest = np.flatnonzero(~rare)
    stratify = y.iloc[rest] if y.iloc[rest].nunique() > 1 else None
    n_test = max(1, int(round(test_size * len(rest))))
    if stratify is not None:
        n_test = max(n_test, int(stratify.nunique()))
    train_idx, test_idx = train_test_split(rest, test_size=n_test, stratify=stratify, random_state=seed)
    return np.sort(np.concatenate([train_idx, np.flatnonzero(rare)])), np.sort(test_idx)


def outer_split(dataset: Dataset, seed: int, test_size: float = 1 / 3, max_rows: int | None = 2000,
                test_max_rows: int | None = 10_000) -> tuple[Dataset, Dataset]:
    """Stratified train / test split: on the classes (classes with a single row go to train), for regression
    on quantile bins of the target. Both parts are capped (stratified) at ``max_rows`` / ``test_max_rows`` rows."""
    split = _regression_split if dataset.task == "regression" else _classification_split
    train_idx, test_idx = split(dataset, seed, test_size)
    train = _subset(dataset, train_idx, name=f"{dataset.name} (benchmark train, seed {seed})")
    test = _subset(dataset, test_idx, name=f"{dataset.name} (benchmark test, seed {seed})")
    return _capped(train, max_rows, seed), _capped(test, test_max_rows, seed)
