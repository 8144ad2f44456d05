"""What defines one benchmark run: :class:`BenchmarkConfig`, its task, strategies, budgets and KB fractions.

The search strategies are :data:`metalearn.protocol.STRATEGIES`; the benchmark adds the FLAML peers
and the ``warm@<fraction>`` ablations (warm with a random part of the knowledge base). One run is one
task: its metric is the task's default (:data:`metalearn.protocol.DEFAULT_METRICS`: balanced accuracy,
or R^2 for regression, which also records the test RMSE, negated like every error metric). Like a search, the
trial study ends every budget with an ensemble of the trials so far (``ensemble_size``, the library default;
0 for the single best pipeline).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from metalearn.defaults import (
    BENCHMARK_BUDGETS,
    BENCHMARK_FOLDS,
    BENCHMARK_FRACTIONS,
    BENCHMARK_MAX_ROWS,
    BENCHMARK_SEEDS,
    BENCHMARK_STRATEGIES,
    BENCHMARK_TRIAL_TIME_LIMIT,
)
from metalearn.errors import MetalearnError
from metalearn.protocol import DEFAULT_METRICS, DEFAULT_TASK, DEFAULTS, STRATEGIES, TASKS, check_choice

METRIC = DEFAULT_METRICS["classification"]  # the classification benchmark's protocol (FLAML gets the same)
#: per task, the test metrics recorded besides the headline (``test_<metric>`` columns, higher is better)
EXTRA_TEST_METRICS: dict[str, tuple[str, ...]] = {"classification": (), "regression": ("rmse",)}
#: regression: R^2 below this counts as this for the normalised score only (worse than predicting the mean)
R2_FLOOR = 0.0
#: the default output directory of a trial study per task
DEFAULT_OUTPUTS = {"classification": "benchmarks/results/warmstart",
                   "regression": "benchmarks/results/warmstart-regression"}
PEER_STRATEGIES = ("flaml", "flaml-zeroshot")
MAIN_STRATEGIES = STRATEGIES + PEER_STRATEGIES
DEFAULT_STRATEGIES = BENCHMARK_STRATEGIES  # the defaults live in metalearn.defaults (the CLI's --help reads them)
DEFAULT_BUDGETS = BENCHMARK_BUDGETS
DEFAULT_FRACTIONS = BENCHMARK_FRACTIONS
MATCH_BUDGET = 50
#: issue #22: warm's ensemble after this many trials against its best single pipeline after MATCH_BUDGET
ENSEMBLE_BUDGET = 10
BOOTSTRAP = 1000
#: protocol values of a run made before the key existed (``state.json``): no ensembles then
LEGACY_PROTOCOL: dict[str, Any] = {"ensemble_size": 0, "ensemble_candidates": 0}

RESULT_COLUMNS = [
    "dataset", "dataset_key", "family", "task", "seed", "strategy", "budget", "test_score", "test_rmse", "cv_score",
    "seconds", "trials", "incumbent_trial", "algorithm", "kb_fraction", "kb_datasets", "neighbors",
    "neighbor_families", "time_budget", "n_train", "n_test", "n_classes", "content_hash", "created",
    "single_test_score", "single_test_rmse", "ensemble_members", "ensemble_oof_score",
]


def fraction_name(fraction: float) -> str:
    """The strategy name of warm with ``fraction`` of the knowledge base: ``warm`` or ``warm@<fraction>``."""
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


def _parse_strategy(item: str) -> str:
    if item.startswith("warm@"):
        try:
            fraction = float(item.split("@", 1)[1])
        except ValueError:
            raise MetalearnError(f"bad strategy {item!r}: expected warm@<fraction>, e.g. warm@0.25") from None
        if not 0 < fraction <= 1:
            raise MetalearnError(f"bad strategy {item!r}: the fraction must be in (0, 1]")
        return fraction_name(fraction)
    if item not in MAIN_STRATEGIES:
        raise MetalearnError(f"unknown strategy {item!r}; choose from {', '.join(MAIN_STRATEGIES)} "
                             "or warm@<fraction>")
    return item


def parse_strategies(text: str | Sequence[str]) -> tuple[str, ...]:
    """Comma-separated (or listed) strategy names, checked and deduplicated in order."""
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not items:
        raise MetalearnError("give at least one strategy")
    out: list[str] = []
    for item in map(_parse_strategy, items):
        if item not in out:
            out.append(item)
    return tuple(out)


def parse_positive_ints(text: str | Sequence[float], unit: str, name: str = "budgets") -> tuple[int, ...]:
    """Comma-separated (or listed) positive whole numbers (of ``unit``), sorted and deduplicated; the errors call
    them ``name``."""
    raw = text.split(",") if isinstance(text, str) else list(text)
    try:
        values = sorted({int(str(v).strip()) for v in raw if str(v).strip()})
    except ValueError:
        raise MetalearnError(f"{name} must be whole numbers of {unit}, got {text!r}") from None
    if not values or values[0] < 1:
        raise MetalearnError(f"{name} must be positive numbers of {unit}, got {text!r}")
    return tuple(values)


def parse_budgets(text: str | Sequence[int]) -> tuple[int, ...]:
    """Comma-separated (or listed) positive numbers of trials, sorted and deduplicated."""
    return parse_positive_ints(text, "trials")


def parse_fractions(text: str | Sequence[float]) -> tuple[float, ...]:
    """Comma-separated (or listed) knowledge-base fractions in (0, 1], sorted and deduplicated."""
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
    seeds: int = BENCHMARK_SEEDS
    jobs: int = 1
    output: str | None = None  # None: DEFAULT_OUTPUTS of the task
    db: str | None = None
    max_rows: int = BENCHMARK_MAX_ROWS
    folds: int = BENCHMARK_FOLDS
    kb_fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    limit: int | None = None
    shuffle: bool = False  # a fixed (seed 0) random order of the datasets, so --limit takes a random sample
    datasets: str | None = None  # a file naming the datasets to run (benchmarks/selections/)
    test_size: float = 1 / 3
    test_max_rows: int = 10_000
    trial_time_limit: float | None = BENCHMARK_TRIAL_TIME_LIMIT
    cache_dir: str | None = None
    k: int = 5
    n_warm: int = 10
    kb_fraction_seeds: int | None = None  # run the warm@fraction ablations on the first N seeds only (None: all)
    task: str | None = None  # None: the suite's (see :func:`metalearn.benchmark.suite.suite_task`)
    #: greedy selection rounds of each budget's ensemble (0: the single best pipeline) over its best candidates
    ensemble_size: int = DEFAULTS.ensemble_size
    ensemble_candidates: int = DEFAULTS.ensemble_candidates

    def validate(self) -> BenchmarkConfig:
        """A copy with parsed strategies, budgets and fractions; a :class:`MetalearnError` for a bad setting."""
        strategies = parse_strategies(self.strategies)
        budgets = parse_budgets(self.budgets)
        fractions = parse_fractions(self.kb_fractions)
        minimum = {"--seeds": (self.seeds, 1), "--jobs": (self.jobs, 1), "--folds": (self.folds, 2),
                   "--max-rows": (self.max_rows, 20), "--limit": (self.limit, 1),
                   "--kb-fraction-seeds": (self.kb_fraction_seeds, 1), "ensemble_size": (self.ensemble_size, 0),
                   "ensemble_candidates": (self.ensemble_candidates, 1)}
        for flag, (value, least) in minimum.items():
            if value is not None and value < least:
                raise MetalearnError(f"{flag} must be at least {least}, got {value}")
        if not 0 < self.test_size < 1:
            raise MetalearnError(f"test_size must be in (0, 1), got {self.test_size}")
        if "flaml" in strategies and "warm" not in strategies:
            raise MetalearnError("strategy flaml needs warm: its time budget is the wall-clock warm used")
        if self.task is not None:
            check_choice("task", self.task, TASKS)
        return replace(self, strategies=strategies, budgets=budgets, kb_fractions=fractions)

    def for_task(self, task: str) -> BenchmarkConfig:
        """A copy for ``task`` (the output defaulting to the task's directory)."""
        return replace(self, task=check_choice("task", task, TASKS), output=self.output or DEFAULT_OUTPUTS[task])

    @property
    def metric(self) -> str:
        """The headline metric: the task's default (balanced accuracy, or R^2 for regression)."""
        return DEFAULT_METRICS[self.task or DEFAULT_TASK]

    @property
    def extra_metrics(self) -> tuple[str, ...]:
        """The test metrics recorded besides the headline (``rmse`` for regression)."""
        return EXTRA_TEST_METRICS[self.task or DEFAULT_TASK]

    @property
    def score_floor(self) -> float | None:
        """The floor of a test or CV score in the normalised score (:data:`R2_FLOOR` for regression)."""
        return R2_FLOOR if self.task == "regression" else None

    @property
    def output_dir(self) -> str:
        """``output``, or the task's default directory."""
        return self.output or DEFAULT_OUTPUTS[self.task or DEFAULT_TASK]

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
                name = fraction_name(fraction)
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
                "n_warm": self.n_warm, "metric": self.metric, "ensemble_size": self.ensemble_size,
                "ensemble_candidates": self.ensemble_candidates if self.ensemble_size else 0}

    def command(self) -> str:
        """The ``metalearn benchmark`` command line that makes (or resumes) this run."""
        parts = ["metalearn", "benchmark", "--suite", self.suite, "--strategies", ",".join(self.strategies),
                 "--budgets", ",".join(map(str, self.budgets)), "--seeds", str(self.seeds), "--jobs", str(self.jobs),
                 "--output", self.output_dir, "--max-rows", str(self.max_rows), "--folds", str(self.folds),
                 "--kb-fractions", ",".join(f"{f:g}" for f in self.kb_fractions)]
        if self.task is not None:
            parts += ["--task", self.task]
        if self.db:
            parts += ["--db", self.db]
        if self.limit:
            parts += ["--limit", str(self.limit)]
        if self.datasets:
            parts += ["--datasets", self.datasets]
        if self.kb_fraction_seeds is not None:
            parts += ["--kb-fraction-seeds", str(self.kb_fraction_seeds)]
        if self.shuffle:
            parts += ["--shuffle"]
        if self.trial_time_limit != 60.0:
            parts += ["--trial-time-limit", str(self.trial_time_limit)]
        if self.cache_dir:
            parts += ["--cache-dir", self.cache_dir]
        if self.ensemble_size != DEFAULTS.ensemble_size:
            parts += ["--ensemble-size", str(self.ensemble_size)]
        return shlex.join(parts)
