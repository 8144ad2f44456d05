"""Every default has one home: the command line's options show the defaults of the dataclasses they set, and the
library's helpers agree with the settings they mirror."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from metalearn.benchmark.config import BenchmarkConfig, parse_budgets, parse_fractions, parse_strategies
from metalearn.protocol import DEFAULTS
from metalearn.report.model import ReportOptions
from metalearn.seeding import SeedProtocol
from metalearn.settings import Limits, ServerSettings
from metalearn.tables import TableBudget


def _defaults(module: str, command: str) -> dict[str, Any]:
    """The default of every option of ``command`` (registered in ``module``), by parameter name."""
    group = typer.main.get_group(importlib.import_module(module).commands)
    return {param.name: param.default for param in group.commands[command].params}


def test_kb_seed_options_default_to_the_seed_protocol() -> None:
    shown, protocol = _defaults("metalearn.cli.seed", "seed"), SeedProtocol()
    assert (shown["trials"], shown["folds"], shown["max_rows"], shown["trial_time_limit"], shown["seed"],
            shown["cross_evaluate"], shown["pool_size"]) == (
        protocol.n_trials, protocol.folds, protocol.max_rows, protocol.trial_time_limit, protocol.seed,
        protocol.cross_evaluate, protocol.pool_size) == (60, 3, 2000, 60.0, 0, 0, 0)


def test_benchmark_options_default_to_the_benchmark_config() -> None:
    shown, config = _defaults("metalearn.cli.bench", "benchmark"), BenchmarkConfig("suite")
    assert shown["strategies"] == "warm,cold,random,flaml,flaml-zeroshot"
    assert shown["budgets"] == "1,2,5,10,20,50" and shown["kb_fractions"] == "0.1,0.25,0.5,1.0"
    assert parse_strategies(shown["strategies"]) == config.strategies
    assert parse_budgets(shown["budgets"]) == config.budgets
    assert parse_fractions(shown["kb_fractions"]) == config.kb_fractions
    assert (shown["seeds"], shown["max_rows"], shown["folds"], shown["trial_time_limit"]) == (
        config.seeds, config.max_rows, config.folds, config.trial_time_limit) == (3, 2000, 3, 60.0)


def test_report_options_default_to_the_report_options() -> None:
    # the CLI repeats these two (metalearn.report.model loads the report stack, too heavy for --help): kept equal here
    shown, options = _defaults("metalearn.cli.search", "report"), ReportOptions()
    assert (shown["sample_size"], shown["shap_seconds"]) == (options.sample_size, options.shap_seconds)


def test_settings_mirror_the_library_defaults() -> None:
    # settings may not import protocol (independent layers): the server's trial limit is kept equal here
    assert ServerSettings.trial_time_limit == DEFAULTS.trial_time_limit
    budget = TableBudget()
    assert (budget.max_rows, budget.max_columns) == (Limits.max_rows, Limits.max_columns) == (1_000_000, 5_000)
    assert TableBudget.from_limits(Limits()).max_bytes == budget.max_bytes
