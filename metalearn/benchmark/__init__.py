"""Offline benchmark: does the warm start pay off? (``metalearn benchmark``; protocol in ``benchmarks/README.md``)

One run is one task (the suite's, or ``--task``): classification scored by balanced accuracy, regression by
R^2 (and the test RMSE). For every dataset of a suite and every seed: a stratified outer train / test split
(:mod:`.suite`); ``warm``, ``cold``, ``random`` (and the ``warm@<fraction>`` knowledge-base size ablations) run one
search of ``max(budgets)`` trials on train, and the model after each budget (by default the ensemble of the
trials so far, and the single incumbent beside it) is refit and scored on test (:mod:`.jobs`); the FLAML peers
run with warm's wall-clock (:mod:`.peers`); leave-one-family-out keeps the query's family out of the warm start.
Runs go to a scratch copy of the knowledge base (:mod:`.scratch`); rows are checkpointed to ``results.jsonl`` and
finished combinations are skipped on restart (:mod:`.checkpoint`, :mod:`.runner`). :mod:`.analysis` computes the
summary statistics, :mod:`.plots` the PNGs and :mod:`.report` writes ``report.md`` and ``summary.json``.

The package is an adapter on top of the library: it imports the warm start, the knowledge base and
the core modules, never the CLI or the HTTP API.
"""

from metalearn.benchmark.analysis import (
    bootstrap_bands,
    bootstrap_ci,
    cell_scores,
    cv_cells,
    gain_by_distance,
    kb_fraction_curves,
    load_results,
    machine_info,
    normalized_error,
    paired_comparison,
    rank_cells,
    raw_scores,
    summarize,
    trials_to_match,
)
from metalearn.benchmark.checkpoint import append_jsonl, done_combinations, read_jsonl
from metalearn.benchmark.config import (
    BOOTSTRAP,
    DEFAULT_BUDGETS,
    DEFAULT_FRACTIONS,
    DEFAULT_OUTPUTS,
    DEFAULT_STRATEGIES,
    ENSEMBLE_BUDGET,
    MAIN_STRATEGIES,
    MATCH_BUDGET,
    METRIC,
    PEER_STRATEGIES,
    R2_FLOOR,
    RESULT_COLUMNS,
    BenchmarkConfig,
    compared_strategies,
    parse_budgets,
    parse_fractions,
    parse_strategies,
    strategy_fraction,
)
from metalearn.benchmark.jobs import dummy_scores, score_predictions
from metalearn.benchmark.peers import flaml_available, flaml_balanced_accuracy
from metalearn.benchmark.plots import make_plots
from metalearn.benchmark.report import banner, finalize, shortfalls, write_report
from metalearn.benchmark.runner import run_benchmark, run_dataset
from metalearn.benchmark.scratch import ReferenceDataset, prepare_knowledge_base, reference_datasets
from metalearn.benchmark.suite import outer_split, resolve_suite, suite_task

__all__ = [
    "BOOTSTRAP", "DEFAULT_BUDGETS", "DEFAULT_FRACTIONS", "DEFAULT_OUTPUTS", "DEFAULT_STRATEGIES", "ENSEMBLE_BUDGET",
    "MAIN_STRATEGIES",
    "MATCH_BUDGET", "METRIC", "PEER_STRATEGIES", "R2_FLOOR", "RESULT_COLUMNS", "BenchmarkConfig", "ReferenceDataset",
    "append_jsonl", "banner", "bootstrap_bands", "bootstrap_ci", "cell_scores", "compared_strategies", "cv_cells",
    "done_combinations", "dummy_scores", "finalize", "flaml_available", "flaml_balanced_accuracy",
    "gain_by_distance", "kb_fraction_curves", "load_results", "machine_info", "make_plots", "normalized_error",
    "outer_split",
    "paired_comparison", "parse_budgets", "parse_fractions", "parse_strategies", "prepare_knowledge_base",
    "rank_cells", "raw_scores", "read_jsonl", "reference_datasets", "resolve_suite", "run_benchmark", "run_dataset",
    "score_predictions", "shortfalls", "strategy_fraction", "suite_task", "summarize", "trials_to_match",
    "write_report",
]
