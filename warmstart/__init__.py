"""Warm start: neighbours in meta-feature space, recommendations, and the SMAC search they start."""

from metalearn.warmstart.estimator import AutoClassifier, recommend, search
from metalearn.warmstart.recommend import Recommendation, RecommendationReport, Recommender
from metalearn.warmstart.search import STRATEGIES, SearchResult, SearchSettings, Trial, WarmStartSearch

__all__ = ["STRATEGIES", "AutoClassifier", "Recommendation", "RecommendationReport", "Recommender",
           "SearchResult", "SearchSettings", "Trial", "WarmStartSearch", "recommend", "search"]
