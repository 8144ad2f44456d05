"""What defines one run of the equal wall-clock benchmark: :class:`EqualTimeConfig` (one task per run)."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from metalearn.benchmark.systems import DEFAULT_SYSTEMS, SYSTEMS, parse_budgets, parse_systems
from metalearn.errors import MetalearnError
from metalearn.protocol import DEFAULT_METRICS, DEFAULT_TASK, TASKS, check_choice

DEFAULT_BUDGETS = (60, 180)
DEFAULT_OUTPUT = "benchmarks/results/equal-time"
#: the default output directory per task
DEFAULT_OUTPUTS = {"classification": DEFAULT_OUTPUT, "regression": f"{DEFAULT_OUTPUT}-regression"}


@dataclass(frozen=True)
class EqualTimeConfig:
    """Everything that defines one equal wall-clock benchmark run (``--help`` shows the flags)."""

    suite: str
    systems: tuple[str, ...] = DEFAULT_SYSTEMS
    budgets: tuple[int, ...] = DEFAULT_BUDGETS
    seeds: int = 1
    cores: int = 1
    jobs: int = 1
    output: str | None = None  # None: DEFAULT_OUTPUTS of the task
    db: str | None = None
    peers_python: str | None = None
    peer_worker: str | None = None
    max_rows: int | None = 2000
    test_size: float = 1 / 3
    test_max_rows: int | None = 10_000
    limit: int | None = None
    shuffle: bool = False
    datasets: str | None = None  # a file naming the datasets to run (benchmarks/selections/)
    cache_dir: str | None = None
    cap_factor: float = 2.0
    cap_extra: float = 60.0
    margin: float = 0.03  # metalearn: its whole-job budget is the budget minus margin x budget (>= min_margin s)
    min_margin: float = 1.0
    pin_cpus: bool = False
    retry_failed: bool = False
    keep_splits: bool = False
    task: str | None = None  # None: the suite's one task

    def validate(self) -> EqualTimeConfig:
        """A copy with parsed systems and budgets; a :class:`MetalearnError` for a bad setting."""
        least = {"--seeds": (self.seeds, 1), "--cores": (self.cores, 1), "--jobs": (self.jobs, 1),
                 "--limit": (self.limit, 1), "--max-rows": (self.max_rows, 20), "--cap-factor": (self.cap_factor, 1)}
        for flag, (value, minimum) in least.items():
            if value is not None and value < minimum:
                raise MetalearnError(f"{flag} must be at least {minimum}, got {value}")
        if not 0 < self.test_size < 1 or self.margin < 0 or self.min_margin < 0 or self.cap_extra < 0:
            raise MetalearnError("test_size must be in (0, 1); margin, min_margin and cap_extra must be >= 0")
        if self.task is not None:
            check_choice("task", self.task, TASKS)
        return replace(self, systems=parse_systems(self.systems), budgets=parse_budgets(self.budgets))

    def for_task(self, task: str, systems: tuple[str, ...] | None = None) -> EqualTimeConfig:
        """A copy for ``task`` (the output defaulting to the task's directory), with ``systems`` when given."""
        return replace(self, task=check_choice("task", task, TASKS), output=self.output or DEFAULT_OUTPUTS[task],
                       systems=self.systems if systems is None else systems)

    @property
    def metric(self) -> str:
        """The test metric: balanced accuracy, or R^2 for regression (which records the RMSE too)."""
        return DEFAULT_METRICS[self.task or DEFAULT_TASK]

    @property
    def output_dir(self) -> str:
        """``output``, or the task's default directory."""
        return self.output or DEFAULT_OUTPUTS[self.task or DEFAULT_TASK]

    def cap(self, budget: float) -> float:
        """The hard cap of one run: ``cap_factor x budget + cap_extra`` seconds."""
        return self.cap_factor * float(budget) + self.cap_extra

    def python_for(self, system: str) -> str:
        """The interpreter of ``system``'s worker: the peers venv's for peers when given (made absolute, as the
        worker runs in its own directory; symlinks kept, or a venv's python would become the base one), else this
        one."""
        if SYSTEMS[system].kind == "peer" and self.peers_python:
            return os.path.abspath(self.peers_python)
        return sys.executable

    def protocol(self) -> dict[str, Any]:
        """What must not change between a run and its resumption in the same output directory."""
        return {"suite": self.suite, "max_rows": self.max_rows, "test_size": self.test_size,
                "test_max_rows": self.test_max_rows, "cores": self.cores, "db": self.db, "margin": self.margin,
                "min_margin": self.min_margin, "metric": self.metric}

    def command(self) -> str:
        """The command line that makes (or resumes) this run."""
        parts = [Path(sys.executable).name, "-m", "metalearn.benchmark.equal_time", "--suite", self.suite,
                 "--systems", ",".join(self.systems), "--budgets", ",".join(map(str, self.budgets)),
                 "--seeds", str(self.seeds), "--cores", str(self.cores), "--jobs", str(self.jobs),
                 "--output", self.output_dir, "--max-rows", str(self.max_rows or 0)]
        optional = {"--task": self.task, "--db": self.db, "--peers-python": self.peers_python,
                    "--peer-worker": self.peer_worker, "--limit": self.limit, "--datasets": self.datasets,
                    "--cache-dir": self.cache_dir}
        parts += [item for flag, value in optional.items() if value for item in (flag, str(value))]
        defaults = EqualTimeConfig(self.suite)
        for name in ("cap_factor", "cap_extra", "margin", "min_margin"):
            if getattr(self, name) != getattr(defaults, name):
                parts += [f"--{name.replace('_', '-')}", f"{getattr(self, name):g}"]
        flags = {"--shuffle": self.shuffle, "--pin-cpus": self.pin_cpus, "--retry-failed": self.retry_failed,
                 "--keep-splits": self.keep_splits}
        return shlex.join(parts + [flag for flag, on in flags.items() if on])

    def setup(self) -> dict[str, Any]:
        """What the report needs to know of the run."""
        return {"systems": list(self.systems), "budgets": list(self.budgets), "seeds": self.seeds,
                "task": self.task or DEFAULT_TASK, "metric": self.metric,
                "jobs": self.jobs, "command": self.command(), "protocol": self.protocol(),
                "cap": {"factor": self.cap_factor, "extra_seconds": self.cap_extra}}
