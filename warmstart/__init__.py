"""Warm start: owns the path from a dataset's meta-features to a finished search.

``neighbors`` (scaling + distance), ``portfolio`` (greedy portfolio), ``recommend`` (ranked
configurations with evidence), ``search`` (the strategy table -> SMAC facade + initial design),
``loop`` (the ask/tell loop), ``result`` (Trial, SearchResult: THE incumbent, trajectory and trial
numbering), ``executors`` (serial or Dask) and ``estimator`` (``search``, ``recommend``,
``AutoClassifier``). It reads and writes the knowledge base; it never imports the service, report or
front ends above it.
"""

from metalearn.warmstart.estimator import AutoClassifier, AutoRegressor, recommend, search
from metalearn.warmstart.recommend import Recommender
from metalearn.warmstart.recommendation import Recommendation, RecommendationReport
from metalearn.warmstart.result import SearchResult, Trial, incumbent, trajectory, trials_from_runs
from metalearn.warmstart.search import STRATEGIES, SearchSettings, WarmStartSearch

__all__ = ["STRATEGIES", "AutoClassifier", "AutoRegressor", "Recommendation", "RecommendationReport", "Recommender",
           "SearchResult", "SearchSettings", "Trial", "WarmStartSearch", "incumbent", "recommend", "search",
           "trajectory", "trials_from_runs"]
