"""Defaults shared by a heavy module's dataclass and the command-line option that sets the same field.

This module imports nothing, so a command's ``--help`` reads its defaults here without loading the module that
owns the dataclass (:mod:`metalearn.seeding`, the :mod:`metalearn.benchmark` package and its search stack). The
dataclasses read their defaults from here too: each value has this one home.
"""

from __future__ import annotations

# metalearn.seeding.SeedProtocol (``metalearn kb seed``)
SEED_TRIALS = 60
SEED_FOLDS = 3
SEED_MAX_ROWS = 2000
SEED_TRIAL_TIME_LIMIT = 60.0
SEED_CROSS_EVALUATE = 0
SEED_POOL_SIZE = 0

# metalearn.benchmark.BenchmarkConfig (``metalearn benchmark``)
BENCHMARK_STRATEGIES: tuple[str, ...] = ("warm", "cold", "random", "flaml", "flaml-zeroshot")
BENCHMARK_BUDGETS: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
BENCHMARK_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
BENCHMARK_SEEDS = 3
BENCHMARK_MAX_ROWS = 2000
BENCHMARK_FOLDS = 3
BENCHMARK_TRIAL_TIME_LIMIT = 60.0

# metalearn.report.model.ReportOptions (``metalearn search --report-rows`` and its SHAP budget)
REPORT_SAMPLE_SIZE = 500
REPORT_SHAP_SECONDS = 20.0

# seconds per trial: metalearn.protocol.DEFAULTS and the service's ServerSettings
TRIAL_TIME_LIMIT = 120.0
