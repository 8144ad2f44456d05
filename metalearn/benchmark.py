"""Offline benchmark: does the warm start pay off?

The protocol is documented in ``benchmarks/README.md``; in short, for every dataset of a suite
and every seed:

1. a stratified outer split (``test_size``, seeded) into train and test; the train part is capped
   at ``max_rows`` rows (stratified) and is all that any strategy sees; test is only for scoring;
2. ``warm``, ``cold`` and ``random`` (and ``warm@<fraction>``, the knowledge-base size curve) run
   one :class:`~metalearn.warmstart.WarmStartSearch` of ``max(budgets)`` trials each
   (``folds``-fold CV on the train part); the incumbent after each budget is refit on train and
   its balanced accuracy on test recorded, with the wall-clock seconds the search had used;
3. peers: ``flaml`` (FLAML ``AutoML`` with the wall-clock that ``warm`` used for the largest
   budget) and ``flaml-zeroshot`` (one fit of ``flaml.default.LGBMClassifier``);
4. leave-one-family-out: the query's family (and its content hash) is excluded from the
   neighbours and from the portfolio of the warm start; what was actually used is recorded.

Runs go to a scratch copy of the knowledge base in the output directory; the recommender only
reads the datasets that were in the knowledge base when the copy was made, so what the benchmark
writes never feeds later queries. Results are appended to ``results.jsonl`` per (dataset, seed,
strategy) and finished combinations are skipped on restart.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shlex
import signal
import sqlite3
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metalearn.datasets import Dataset, stratified_subsample
from metalearn.errors import DatasetError, MetalearnError
from metalearn.seeding import DatasetSource

METRIC = "balanced_accuracy"
SEARCH_STRATEGIES = ("warm", "cold", "random", "hyperband", "successive-halving")
PEER_STRATEGIES = ("flaml", "flaml-zeroshot")
MAIN_STRATEGIES = SEARCH_STRATEGIES + PEER_STRATEGIES
DEFAULT_STRATEGIES = ("warm", "cold", "random", "flaml", "flaml-zeroshot")
DEFAULT_BUDGETS = (1, 2, 5, 10, 20, 50)
DEFAULT_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
MATCH_BUDGET = 50
BOOTSTRAP = 1000

RESULT_COLUMNS = [
    "dataset", "dataset_key", "family", "seed", "strategy", "budget", "test_score", "cv_score", "seconds",
    "trials", "incumbent_trial", "algorithm", "kb_fraction", "kb_datasets", "neighbors", "neighbor_families",
    "time_budget", "n_train", "n_test", "n_classes", "content_hash", "created",
]

Echo = Callable[[str], None]


# --------------------------------------------------------------------------- configuration


def _fraction_name(fraction: float) -> str:
    return "warm" if fraction >= 1.0 else f"warm@{fraction:g}"


def compared_strategies(strategies: Iterable[str]) -> list[str]:
    """The strategies among ``strategies`` that are compared with each other (ranked, and setting each
    dataset's normalisation scale): all but the warm@fraction ablations, in canonical order."""
    present = set(strategies)
    return [s for s in MAIN_STRATEGIES if s in present]


def strategy_fraction(strategy: str) -> float | None:
    """``warm@0.25`` -> 0.25, ``warm`` -> 1.0, anything else -> None."""
    if strategy == "warm":
        return 1.0
    if strategy.startswith("warm@"):
        return float(strategy.split("@", 1)[1])
    return None


def parse_strategies(text: str | Sequence[str]) -> tuple[str, ...]:
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not items:
        raise MetalearnError("give at least one strategy")
    out: list[str] = []
    for item in items:
        if item.startswith("warm@"):
            try:
                fraction = float(item.split("@", 1)[1])
            except ValueError:
                raise MetalearnError(f"bad strategy {item!r}: expected warm@<fraction>, e.g. warm@0.25") from None
            if not 0 < fraction <= 1:
                raise MetalearnError(f"bad strategy {item!r}: the fraction must be in (0, 1]")
            item = _fraction_name(fraction)
        elif item not in MAIN_STRATEGIES:
            raise MetalearnError(f"unknown strategy {item!r}; choose from {', '.join(MAIN_STRATEGIES)} "
                                 "or warm@<fraction>")
        if item not in out:
            out.append(item)
    return tuple(out)


def parse_budgets(text: str | Sequence[int]) -> tuple[int, ...]:
    raw = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = sorted({int(str(v).strip()) for v in raw if str(v).strip()})
    except ValueError:
        raise MetalearnError(f"budgets must be whole numbers of trials, got {text!r}") from None
    if not values or values[0] < 1:
        raise MetalearnError(f"budgets must be positive numbers of trials, got {text!r}")
    return tuple(values)


def parse_fractions(text: str | Sequence[float]) -> tuple[float, ...]:
    raw = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = sorted({float(str(v).strip()) for v in raw if str(v).strip()})
    except ValueError:
        raise MetalearnError(f"knowledge-base fractions must be numbers in (0, 1], got {text!r}") from None
    if any(not 0 < v <= 1 for v in values):
        raise MetalearnError(f"knowledge-base fractions must be in (0, 1], got {text!r}")
    return tuple(values)


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything that defines one benchmark run (``metalearn benchmark --help`` shows the defaults)."""

    suite: str
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    budgets: tuple[int, ...] = DEFAULT_BUDGETS
    seeds: int = 3
    jobs: int = 1
    output: str = "benchmarks/results/warmstart"
    db: str | None = None
    max_rows: int = 2000
    folds: int = 3
    kb_fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    limit: int | None = None
    shuffle: bool = False  # a fixed (seed 0) random order of the datasets, so --limit takes a random sample
    test_size: float = 1 / 3
    test_max_rows: int = 10_000
    trial_time_limit: float | None = 60.0
    cache_dir: str | None = None
    k: int = 5
    n_warm: int = 10
    kb_fraction_seeds: int | None = None  # run the warm@fraction ablations on the first N seeds only (None: all)

    def validate(self) -> BenchmarkConfig:
        strategies = parse_strategies(self.strategies)
        budgets = parse_budgets(self.budgets)
        fractions = parse_fractions(self.kb_fractions)
        if self.seeds < 1:
            raise MetalearnError(f"--seeds must be at least 1, got {self.seeds}")
        if self.jobs < 1:
            raise MetalearnError(f"--jobs must be at least 1, got {self.jobs}")
        if self.folds < 2:
            raise MetalearnError(f"--folds must be at least 2, got {self.folds}")
        if self.max_rows < 20:
            raise MetalearnError(f"--max-rows must be at least 20, got {self.max_rows}")
        if self.limit is not None and self.limit < 1:
            raise MetalearnError(f"--limit must be at least 1, got {self.limit}")
        if self.kb_fraction_seeds is not None and self.kb_fraction_seeds < 1:
            raise MetalearnError(f"--kb-fraction-seeds must be at least 1, got {self.kb_fraction_seeds}")
        if not 0 < self.test_size < 1:
            raise MetalearnError(f"test_size must be in (0, 1), got {self.test_size}")
        if "flaml" in strategies and "warm" not in strategies:
            raise MetalearnError("strategy flaml needs warm: its time budget is the wall-clock warm used")
        return replace(self, strategies=strategies, budgets=budgets, kb_fractions=fractions)

    @property
    def max_budget(self) -> int:
        return max(self.budgets)

    @property
    def min_budget(self) -> int:
        return min(self.budgets)

    @property
    def all_strategies(self) -> tuple[str, ...]:
        """Requested strategies plus ``warm@f`` for every KB fraction below 1 (when warm is requested)."""
        out = list(self.strategies)
        if "warm" in out:
            for fraction in self.kb_fractions:
                name = _fraction_name(fraction)
                if name not in out:
                    out.append(name)
        return tuple(out)

    def strategies_for(self, seed: int) -> tuple[str, ...]:
        """The strategies run with ``seed``: all of them, less the warm@fraction ablations from seed
        ``kb_fraction_seeds`` on."""
        if self.kb_fraction_seeds is None or seed < self.kb_fraction_seeds:
            return self.all_strategies
        return tuple(s for s in self.all_strategies if strategy_fraction(s) in (None, 1.0))

    @property
    def compared_strategies(self) -> tuple[str, ...]:
        """The requested strategies without the warm@fraction ablations (see :func:`compared_strategies`)."""
        return tuple(compared_strategies(self.strategies))

    def budgets_of(self, strategy: str) -> tuple[int, ...]:
        """Budgets at which ``strategy`` gets a row: all for searches, the largest for flaml, the smallest
        for flaml-zeroshot."""
        if strategy == "flaml":
            return (self.max_budget,)
        if strategy == "flaml-zeroshot":
            return (self.min_budget,)
        return self.budgets

    def protocol(self) -> dict[str, Any]:
        """What must not change between a run and its resumption in the same output directory."""
        return {"suite": self.suite, "max_rows": self.max_rows, "folds": self.folds, "test_size": self.test_size,
                "test_max_rows": self.test_max_rows, "trial_time_limit": self.trial_time_limit, "k": self.k,
                "n_warm": self.n_warm, "metric": METRIC}

    def command(self) -> str:
        parts = ["metalearn", "benchmark", "--suite", self.suite, "--strategies", ",".join(self.strategies),
                 "--budgets", ",".join(map(str, self.budgets)), "--seeds", str(self.seeds), "--jobs", str(self.jobs),
                 "--output", self.output, "--max-rows", str(self.max_rows), "--folds", str(self.folds),
                 "--kb-fractions", ",".join(f"{f:g}" for f in self.kb_fractions)]
        if self.db:
            parts += ["--db", self.db]
        if self.limit:
            parts += ["--limit", str(self.limit)]
        if self.kb_fraction_seeds is not None:
            parts += ["--kb-fraction-seeds", str(self.kb_fraction_seeds)]
        if self.shuffle:
            parts += ["--shuffle"]
        if self.trial_time_limit != 60.0:
            parts += ["--trial-time-limit", str(self.trial_time_limit)]
        if self.cache_dir:
            parts += ["--cache-dir", self.cache_dir]
        return shlex.join(parts)


def flaml_available() -> bool:
    try:
        import flaml  # noqa: F401
        import flaml.default  # noqa: F401
        from flaml import AutoML  # noqa: F401
    except Exception:  # ImportError, or a broken optional dependency
        return False
    return True


# --------------------------------------------------------------------------- datasets


def resolve_suite(suite: str, cache: str | None = None) -> list[DatasetSource]:
    """Dataset sources of a manifest directory (or ``manifest.json``) or an OpenML suite id / alias."""
    from metalearn import seeding

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


def _subset(dataset: Dataset, index: np.ndarray, X: pd.DataFrame | None = None, y: pd.Series | None = None,
            name: str | None = None) -> Dataset:
    X = dataset.X.iloc[index].reset_index(drop=True) if X is None else X
    y = dataset.y.iloc[index].reset_index(drop=True) if y is None else y
    return Dataset(name=name or dataset.name, X=X, y=y, categorical=list(dataset.categorical), target=dataset.target,
                   source="benchmark", family=dataset.family, openml_id=dataset.openml_id)


def outer_split(dataset: Dataset, seed: int, test_size: float = 1 / 3, max_rows: int | None = 2000,
                test_max_rows: int | None = 10_000) -> tuple[Dataset, Dataset]:
    """Stratified train / test split; classes with a single row go to train. Both parts are capped
    (stratified) at ``max_rows`` / ``test_max_rows`` rows."""
    from sklearn.model_selection import train_test_split

    y = dataset.y
    counts = y.value_counts()
    rare = y.isin(counts[counts < 2].index).to_numpy()
    rest = np.flatnonzero(~rare)
    stratify = y.iloc[rest] if y.iloc[rest].nunique() > 1 else None
    n_test = max(1, int(round(test_size * len(rest))))
    if stratify is not None:
        n_test = max(n_test, int(stratify.nunique()))
    train_idx, test_idx = train_test_split(rest, test_size=n_test, stratify=stratify, random_state=seed)
    train_idx = np.sort(np.concatenate([train_idx, np.flatnonzero(rare)]))
    test_idx = np.sort(test_idx)
    train = _subset(dataset, train_idx, name=f"{dataset.name} (benchmark train, seed {seed})")
    test = _subset(dataset, test_idx, name=f"{dataset.name} (benchmark test, seed {seed})")
    if max_rows is not None and train.n_rows > max_rows:
        X, y_train = stratified_subsample(train.X, train.y, max_rows, seed)
        train = _subset(train, np.arange(len(X)), X=X, y=y_train, name=train.name)
    if test_max_rows is not None and test.n_rows > test_max_rows:
        X, y_test = stratified_subsample(test.X, test.y, test_max_rows, seed)
        test = _subset(test, np.arange(len(X)), X=X, y=y_test, name=test.name)
    return train, test


# --------------------------------------------------------------------------- knowledge base


@dataclass(frozen=True)
class ReferenceDataset:
    """A dataset of the knowledge base as it was when the benchmark's scratch copy was made."""

    id: int
    name: str
    family: str
    content_hash: str


def _sqlite_copy(source: Path, target: Path) -> None:
    """Consistent copy of a (possibly WAL-mode) SQLite file, without writing to the source."""
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error:
        src = sqlite3.connect(str(source))
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def reference_datasets(kb: Any) -> list[ReferenceDataset]:
    """Datasets usable by the recommender: current meta-features and successful runs in the current space."""
    from metalearn.metafeatures import EXTRACTOR_VERSION
    from metalearn.space import SPACE_VERSION

    with_runs = set(kb.performance(METRIC, SPACE_VERSION)["dataset_id"].astype(int))
    with_mf = set(kb.metafeature_matrix(EXTRACTOR_VERSION).index.astype(int))
    return [ReferenceDataset(d.id, d.name, d.family or d.name, d.content_hash) for d in kb.datasets()
            if d.id in with_runs and d.id in with_mf and d.source != "benchmark"]


def prepare_knowledge_base(db: str | None, output: Path, echo: Echo = lambda _: None
                           ) -> tuple[str, list[ReferenceDataset]]:
    """The scratch knowledge base ``output/kb.sqlite`` (made once) and its frozen reference datasets.

    ``db`` (a SQLite file is copied with SQLite's backup API; any other URL goes through a snapshot) or,
    without ``db``, the shipped seed snapshot is the source. The source is never written to.
    """
    from metalearn.knowledge_base import KnowledgeBase
    from metalearn.knowledge_base.engine import is_sqlite
    from metalearn.knowledge_base.snapshot import export_snapshot, import_snapshot, seed_path
    from metalearn.settings import database_url

    target = output / "kb.sqlite"
    reference_file = output / "kb.json"
    url = f"sqlite:///{target.resolve()}"
    if target.is_file() and reference_file.is_file():
        items = json.loads(reference_file.read_text())["datasets"]
        return url, [ReferenceDataset(**item) for item in items]
    partial = output / "kb.sqlite.partial"
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm"), target, Path(f"{target}-wal"),
                  Path(f"{target}-shm")):
        stale.unlink(missing_ok=True)
    if db is None:
        seed = seed_path()
        if not seed.is_file():
            raise MetalearnError(f"no --db given and the shipped seed snapshot {seed.name} is not built yet; "
                                 "pass --db with a knowledge base (e.g. one made by `metalearn kb seed`)")
        kb = KnowledgeBase(str(partial))
        import_snapshot(kb, seed)
        kb.dispose()
        source = f"seed snapshot {seed.name}"
    else:
        source_url = database_url(db)
        if is_sqlite(source_url):
            from sqlalchemy.engine import make_url

            path = Path(make_url(source_url).database or "")
            if not path.is_file():
                raise MetalearnError(f"knowledge base {path} not found")
            _sqlite_copy(path, partial)
        else:
            snapshot = output / "kb-source.json.gz"
            export_snapshot(KnowledgeBase(db, create=False), snapshot)
            kb = KnowledgeBase(str(partial))
            import_snapshot(kb, snapshot)
            kb.dispose()
        source = db
    kb = KnowledgeBase(str(partial))
    try:
        reference = reference_datasets(kb)
    finally:
        kb.dispose()
    if not reference:
        echo(f"warning: the knowledge base from {source} has no dataset with meta-features and runs; "
             "warm will start from library defaults")
    reference_file.write_text(json.dumps({"source": str(source), "created": _now(),
                                          "datasets": [asdict(r) for r in reference]}, indent=1))
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(target)
    echo(f"scratch knowledge base {target}: copy of {source}, {len(reference)} reference datasets")
    return url, reference


# --------------------------------------------------------------------------- checkpoint


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records as one locked write (several worker processes share the file)."""
    text = "".join(json.dumps(r, default=_json_default, allow_nan=True) + "\n" for r in records)
    if not text:
        return
    with path.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a torn last line (killed mid-write) is ignored."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def done_combinations(records: Iterable[dict[str, Any]]) -> set[tuple[str, int, str, int]]:
    return {(r["dataset_key"], int(r["seed"]), r["strategy"], int(r["budget"])) for r in records}


def _is_done(done: set[tuple[str, int, str, int]], key: str, seed: int, strategy: str,
             config: BenchmarkConfig) -> bool:
    return all((key, seed, strategy, b) in done for b in config.budgets_of(strategy))


# --------------------------------------------------------------------------- one dataset


@dataclass
class _Context:
    """What a worker needs for one dataset."""

    source: DatasetSource
    config: BenchmarkConfig
    kb_url: str
    reference: list[ReferenceDataset]
    output: str
    strategies: tuple[str, ...]
    done: set[tuple[str, int, str, int]] = field(default_factory=set)
    warm_seconds: dict[int, float] = field(default_factory=dict)


def _balanced_accuracy(y_true: Any, y_pred: Any) -> float:
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(y_true, y_pred))


def flaml_balanced_accuracy(X_val: Any, y_val: Any, estimator: Any, labels: Any, X_train: Any, y_train: Any,
                            weight_val: Any = None, weight_train: Any = None, *args: Any, **kwargs: Any
                            ) -> tuple[float, dict[str, float]]:
    """FLAML custom metric: loss ``1 - balanced accuracy`` (FLAML has no balanced-accuracy string)."""
    score = _balanced_accuracy(y_val, estimator.predict(X_val))
    return 1.0 - score, {"balanced_accuracy": score}


def _dummy_score(train: Dataset, test: Dataset) -> float:
    """Test score of a majority-class model: what a strategy without a successful trial delivers."""
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="most_frequent").fit(train.X, train.y)
    return _balanced_accuracy(test.y, model.predict(test.X))


def _order(strategies: Sequence[str]) -> list[str]:
    """warm first (it pays for the meta-features and sets flaml's time budget), then the rest, flaml last."""
    rank = {"warm": 0, "cold": 2, "random": 3, "flaml-zeroshot": 4, "flaml": 5}
    return sorted(strategies, key=lambda s: (rank.get(s, 1), s))


def _base_row(ctx: _Context, dataset: Dataset, train: Dataset, test: Dataset, seed: int, strategy: str
              ) -> dict[str, Any]:
    return {"dataset": dataset.name, "dataset_key": ctx.source.key, "family": dataset.family or dataset.name,
            "seed": seed, "strategy": strategy, "n_train": train.n_rows, "n_test": test.n_rows,
            "n_classes": dataset.n_classes, "content_hash": dataset.content_hash, "kb_fraction": None,
            "kb_datasets": None, "neighbors": [], "neighbor_families": [], "time_budget": None,
            "incumbent_trial": None, "algorithm": None, "cv_score": None}


def _fraction_subset(candidates: list[int], fraction: float, seed: int, key: str) -> list[int]:
    if fraction >= 1.0 or not candidates:
        return sorted(candidates)
    size = max(1, int(round(fraction * len(candidates))))
    rng = np.random.default_rng([seed, int(round(fraction * 10_000)), zlib.crc32(key.encode())])
    return sorted(int(i) for i in rng.choice(sorted(candidates), size=size, replace=False))


def _run_search(ctx: _Context, kb: Any, strategy: str, dataset: Dataset, train: Dataset, test: Dataset,
                seed: int, refits: dict[str, float]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    from metalearn.knowledge_base import canonical_json
    from metalearn.warmstart import Recommender, SearchSettings, WarmStartSearch
    from metalearn.warmstart.search import MULTI_FIDELITY

    config = ctx.config
    family = dataset.family or dataset.name
    excluded = {r.id for r in ctx.reference if r.family == family or r.content_hash == dataset.content_hash}
    fraction = strategy_fraction(strategy)
    base = "warm" if fraction is not None else strategy
    settings = SearchSettings(strategy=base, n_trials=config.max_budget, trial_time_limit=config.trial_time_limit,
                              metric=METRIC, folds=config.folds, seed=seed, max_rows=config.max_rows,
                              n_warm=config.n_warm, k=config.k, refit=False)
    recommender = None
    used: list[int] = []
    if fraction is not None or base in MULTI_FIDELITY:  # warm-started: read only the reference datasets
        candidates = [r.id for r in ctx.reference if r.id not in excluded]
        used = _fraction_subset(candidates, fraction or 1.0, seed, ctx.source.key)
        recommender = Recommender(kb, METRIC, restrict_to=used)
    engine = WarmStartSearch(kb, settings, recommender=recommender, exclude_ids=excluded,
                             exclude_families={family})
    result = engine.run(train)
    if result.status in ("interrupted", "cancelled"):  # stopped by Ctrl-C or a signal: rerun on resume
        raise MetalearnError(f"{strategy} search on {dataset.name} ended {result.status} after "
                             f"{len(result.trials)} trials")
    leak: dict[str, Any] | None = None
    names = {r.id: r for r in ctx.reference}
    neighbors: list[Any] = []
    if fraction is not None:
        report = result.recommendations
        neighbors = list(report.neighbors) if report is not None else []
        rec = engine.recommender
        dropped = rec.excluded_ids(excluded, {family}, {train.content_hash, dataset.content_hash})
        portfolio_ids = sorted(set(int(i) for i in rec.performance["dataset_id"]) - dropped)
        evidence = sorted({(e.dataset_id, e.dataset) for r in (report.recommendations if report else [])
                           for e in r.evidence})
        leak = {
            "dataset": dataset.name, "dataset_key": ctx.source.key, "family": family, "seed": seed,
            "strategy": strategy, "kb_fraction": fraction, "kb_datasets": len(used),
            "excluded_ids": sorted(excluded),
            "neighbors": [{"id": n.dataset_id, "name": n.name, "family": names[n.dataset_id].family
                           if n.dataset_id in names else n.family, "distance": n.distance} for n in neighbors],
            "portfolio_datasets": [{"id": i, "name": names[i].name if i in names else None,
                                    "family": names[i].family if i in names else None} for i in portfolio_ids],
            "evidence_datasets": [{"id": i, "name": n, "family": names[i].family if i in names else None}
                                  for i, n in evidence],
            "recommended": [{"configuration_id": r.configuration_id, "algorithm": r.algorithm, "source": r.source}
                            for r in (report.recommendations if report else [])],
            "far": bool(report.far) if report is not None else None, "created": _now(),
        }
    rows = []
    for budget in config.budgets:
        trial = result.incumbent_after(budget)
        n = min(budget, len(result.trials))
        seconds = result.trials[n - 1].elapsed if n else result.seconds
        row = _base_row(ctx, dataset, train, test, seed, strategy)
        if trial is None:
            key = "__dummy__"
            if key not in refits:
                refits[key] = _dummy_score(train, test)
        else:
            key = canonical_json(trial.configuration)
            if key not in refits:
                model = engine.refit(trial.configuration, train)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    refits[key] = _balanced_accuracy(test.y, model.predict(test.X))
            row.update(incumbent_trial=trial.number, algorithm=trial.algorithm, cv_score=trial.score)
        row.update(budget=budget, test_score=refits[key], seconds=float(seconds), trials=n)
        if fraction is not None:
            row.update(kb_fraction=fraction, kb_datasets=len(used),
                       neighbors=[x.name for x in neighbors],
                       neighbor_families=[names[x.dataset_id].family if x.dataset_id in names else x.family
                                          for x in neighbors])
        rows.append(row)
    return rows, leak


def _run_flaml(ctx: _Context, dataset: Dataset, train: Dataset, test: Dataset, seed: int,
               time_budget: float) -> list[dict[str, Any]]:
    from flaml import AutoML

    config = ctx.config
    min_count = int(train.y.value_counts().min())
    options: dict[str, Any] = {"eval_method": "holdout"} if min_count < 2 else {
        "eval_method": "cv", "n_splits": max(2, min(config.folds, min_count))}
    automl = AutoML()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(X_train=train.X, y_train=train.y, task="classification", metric=flaml_balanced_accuracy,
                   time_budget=max(1.0, float(time_budget)), n_jobs=1, seed=seed, verbose=0, log_file_name="",
                   retrain_full=True, **options)
        seconds = time.perf_counter() - start
        score = _balanced_accuracy(test.y, automl.predict(test.X))
    row = _base_row(ctx, dataset, train, test, seed, "flaml")
    best_loss = getattr(automl, "best_loss", None)
    history = getattr(automl, "config_history", None) or {}
    row.update(budget=config.max_budget, test_score=score, seconds=seconds, trials=len(history) or None,
               time_budget=float(time_budget), algorithm=getattr(automl, "best_estimator", None),
               cv_score=None if best_loss is None or not np.isfinite(best_loss) else 1.0 - float(best_loss))
    return [row]


def _run_flaml_zeroshot(ctx: _Context, dataset: Dataset, train: Dataset, test: Dataset, seed: int
                        ) -> list[dict[str, Any]]:
    from flaml.default import LGBMClassifier

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LGBMClassifier(n_jobs=1, random_state=seed, verbose=-1)
        model.fit(train.X, train.y)
        seconds = time.perf_counter() - start
        score = _balanced_accuracy(test.y, model.predict(test.X))
    row = _base_row(ctx, dataset, train, test, seed, "flaml-zeroshot")
    row.update(budget=ctx.config.min_budget, test_score=score, seconds=seconds, trials=1, algorithm="lgbm")
    return [row]


def run_dataset(ctx: _Context, notify: Any = None) -> dict[str, Any]:
    """All seeds and strategies of one dataset; rows are appended to the checkpoint as they finish."""
    from metalearn.knowledge_base import KnowledgeBase

    def tell(event: dict[str, Any]) -> None:
        if notify is not None:
            notify.put(event) if hasattr(notify, "put") else notify(event)

    config, key = ctx.config, ctx.source.key
    output = Path(ctx.output)
    seeds = range(config.seeds)
    todo = {(s, st) for s in seeds for st in ctx.strategies
            if st in config.strategies_for(s) and not _is_done(ctx.done, key, s, st, config)}
    if not todo:
        return {"key": key, "status": "done", "new_rows": 0}
    start = time.perf_counter()
    try:
        dataset = ctx.source.loader()
    except Exception as exc:  # a dataset that cannot be loaded is skipped, not fatal
        append_jsonl(output / "errors.jsonl", [{"dataset_key": key, "stage": "load", "error": str(exc),
                                                "created": _now()}])
        for _ in todo:
            tell({"key": key, "status": "skipped"})
        return {"key": key, "status": "skipped", "error": str(exc), "new_rows": 0}
    kb = KnowledgeBase(ctx.kb_url)
    new_rows, errors = 0, 0
    try:
        for seed in seeds:
            pending = [st for st in _order(ctx.strategies) if (seed, st) in todo]
            if not pending:
                continue
            train, test = outer_split(dataset, seed, config.test_size, config.max_rows, config.test_max_rows)
            refits: dict[str, float] = {}
            for strategy in pending:
                try:
                    leak = None
                    if strategy == "flaml":
                        budget = ctx.warm_seconds.get(seed)
                        if budget is None:
                            raise MetalearnError("no warm result for this seed to set flaml's time budget")
                        rows = _run_flaml(ctx, dataset, train, test, seed, budget)
                    elif strategy == "flaml-zeroshot":
                        rows = _run_flaml_zeroshot(ctx, dataset, train, test, seed)
                    else:
                        rows, leak = _run_search(ctx, kb, strategy, dataset, train, test, seed, refits)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # record it and go on with the other strategies
                    errors += 1
                    append_jsonl(output / "errors.jsonl", [{
                        "dataset_key": key, "dataset": dataset.name, "seed": seed, "strategy": strategy,
                        "stage": "run", "error": f"{type(exc).__name__}: {exc}"[-2000:], "created": _now()}])
                    tell({"key": key, "status": "error", "strategy": strategy})
                    continue
                if strategy == "warm":
                    ctx.warm_seconds[seed] = next(r["seconds"] for r in rows if r["budget"] == config.max_budget)
                created = _now()
                for row in rows:
                    row["created"] = created
                if leak is not None:
                    append_jsonl(output / "neighbors.jsonl", [leak])
                append_jsonl(output / "results.jsonl", rows)
                new_rows += len(rows)
                tell({"key": key, "status": "done", "strategy": strategy, "dataset": dataset.name})
    finally:
        kb.dispose()
    return {"key": key, "dataset": dataset.name, "status": "done" if not errors else "errors", "new_rows": new_rows,
            "errors": errors, "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------- driver


def _state(output: Path, config: BenchmarkConfig) -> dict[str, Any]:
    path = output / "state.json"
    protocol = config.protocol()
    if path.is_file():
        state = json.loads(path.read_text())
        if state.get("protocol") != protocol:
            changed = sorted(k for k in protocol if state.get("protocol", {}).get(k) != protocol[k])
            raise MetalearnError(f"{output} holds a benchmark with a different protocol ({', '.join(changed)}); "
                                 "use another --output or the same settings")
        if state.get("db") != config.db:
            raise MetalearnError(f"{output} was made from knowledge base {state.get('db') or 'seed snapshot'}, "
                                 f"not {config.db or 'seed snapshot'}; use another --output")
        return state
    return {"protocol": protocol, "db": config.db, "seconds": 0.0, "invocations": []}


def _save_state(output: Path, state: dict[str, Any]) -> None:
    tmp = output / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(output / "state.json")


def _stop_on_sigterm() -> Any:
    """Make SIGTERM (``kill PID`` of a background run) stop the run like Ctrl-C; returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def run_benchmark(config: BenchmarkConfig, *, echo: Echo = print, progress: bool = True,
                  report_only: bool = False) -> dict[str, Any]:
    """Run (or resume) the benchmark and write its outputs; returns the summary.

    ``report_only`` runs nothing: it rewrites the summary, report and plots from the datasets whose
    every strategy and seed is already done (the state of an interrupted run, for partial results).
    """
    config = config.validate()
    strategies = config.all_strategies
    if any(s in PEER_STRATEGIES for s in strategies) and not flaml_available():
        echo("warning: flaml is not importable (pip install -e '.[bench]'); skipping flaml and flaml-zeroshot")
        kept = tuple(s for s in config.strategies if s not in PEER_STRATEGIES)
        if not kept:
            raise MetalearnError("no strategy left to run: flaml is not importable")
        config = replace(config, strategies=kept)
        strategies = config.all_strategies
    sources = resolve_suite(config.suite, config.cache_dir)
    if config.shuffle:
        sources = [sources[i] for i in np.random.default_rng(0).permutation(len(sources))]
    if config.limit:
        sources = sources[:config.limit]
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    state = _state(output, config)
    kb_url, reference = prepare_knowledge_base(config.db, output, echo)
    _save_state(output, state)
    started, start = _now(), time.perf_counter()
    records = read_jsonl(output / "results.jsonl")
    done = done_combinations(records)
    warm_seconds: dict[str, dict[int, float]] = {}
    for r in records:
        if r["strategy"] == "warm" and int(r["budget"]) == config.max_budget:
            warm_seconds.setdefault(r["dataset_key"], {})[int(r["seed"])] = float(r["seconds"])
    contexts = [_Context(source, config, kb_url, reference, str(output), strategies,
                         {d for d in done if d[0] == source.key}, warm_seconds.get(source.key, {}))
                for source in sources]
    total = len(sources) * sum(len(config.strategies_for(s)) for s in range(config.seeds))
    already = sum(1 for c in contexts for s in range(config.seeds) for st in config.strategies_for(s)
                  if _is_done(c.done, c.source.key, s, st, config))
    echo(f"benchmark {config.suite}: {len(sources)} datasets x {config.seeds} seeds x {len(strategies)} strategies "
         f"({already}/{total} done); output {output}")
    if report_only:
        from metalearn.benchmark_analysis import finalize

        complete = [c.source.key for c in contexts
                    if all(_is_done(c.done, c.source.key, s, st, config) for s in range(config.seeds)
                           for st in config.strategies_for(s))]
        summary = finalize(output, config, complete, hours=state["seconds"] / 3600,
                           extra={"report_only": True, "complete_datasets": len(complete),
                                  "datasets_in_suite": len(sources), "new_rows": 0})
        echo(f"wrote summary.json, report.md and plots from the {len(complete)} complete datasets")
        return summary
    outcomes: list[dict[str, Any]] = []
    previous = _stop_on_sigterm()
    try:
        outcomes = _execute(contexts, config.jobs, total, already, progress)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        state["seconds"] = float(state.get("seconds", 0.0)) + time.perf_counter() - start
        state.setdefault("invocations", []).append({"started": started, "seconds": time.perf_counter() - start,
                                                     "command": config.command()})
        _save_state(output, state)
    errors = [e for e in read_jsonl(output / "errors.jsonl")
              if e.get("dataset_key") in {s.key for s in sources}]
    skipped = [o for o in outcomes if o.get("status") == "skipped"]
    from metalearn.benchmark_analysis import finalize

    summary = finalize(output, config, [s.key for s in sources], hours=state["seconds"] / 3600,
                       extra={"errors": errors[-200:], "skipped": skipped,
                              "new_rows": int(sum(o.get("new_rows", 0) for o in outcomes))})
    echo(f"wrote {output / 'results.parquet'}, summary.json, report.md and plots "
         f"({summary['n_datasets']} datasets, {summary['n_rows']} rows, {summary['new_rows']} new)")
    return summary


def _execute(contexts: list[_Context], jobs: int, total: int, already: int, show: bool) -> list[dict[str, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    outcomes: list[dict[str, Any]] = []
    columns = (TextColumn("benchmark"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
               TimeElapsedColumn())
    with Progress(*columns, disable=not show) as bar:
        task = bar.add_task("benchmark", total=total, completed=already, last="")

        def on_event(event: dict[str, Any]) -> None:
            bar.update(task, advance=1, last=f"{event.get('dataset', event['key'])} {event.get('strategy', '')} "
                                             f"{event['status']}")

        if jobs <= 1:
            for ctx in contexts:
                outcomes.append(run_dataset(ctx, on_event))
            return outcomes
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from queue import Empty

        with multiprocessing.Manager() as manager, ProcessPoolExecutor(max_workers=jobs) as pool:
            queue = manager.Queue()
            pending = {pool.submit(run_dataset, ctx, queue): ctx for ctx in contexts}
            try:
                while pending:
                    finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    while True:
                        try:
                            on_event(queue.get_nowait())
                        except Empty:
                            break
                    for future in finished:
                        ctx = pending.pop(future)
                        try:
                            outcomes.append(future.result())
                        except Exception as exc:  # a worker died: its finished rows are in the checkpoint
                            outcomes.append({"key": ctx.source.key, "status": "failed", "error": repr(exc)})
            except KeyboardInterrupt:
                # stop at once: a worker's unfinished strategy has written nothing, so it reruns on resume
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.kill()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return outcomes

