"""Cost-aware warm starts: a recommendation expected to take too large a share of a search's time budget (from
its recorded seconds on the neighbours, scaled to this search's rows and folds) is left out of the warm start."""

from __future__ import annotations

import pytest

from metalearn.knowledge_base import KnowledgeBase, RunRecord
from metalearn.space import SPACE_VERSION, build_space, default_configuration
from metalearn.warmstart import Recommender
from metalearn.warmstart.cost import MAX_TRIAL_SHARE, affordable, expected_seconds
from metalearn.warmstart.neighbors import Neighbor
from metalearn.warmstart.recommendation import Recommendation, RecommendationReport
from metalearn.warmstart.search import SearchSettings, WarmStartSearch

ROWS = {"A": 300, "B": 3000}  # B has more rows than the seeding protocol's 2000: its trials used 2000
SECONDS = {"cheap": {"A": 0.1, "B": 0.4}, "slow": {"A": 30.0, "B": 300.0}}


@pytest.fixture
def hand_built(kb: KnowledgeBase) -> dict[str, int]:
    ids = {name: kb.register_dataset(name=name, content_hash=f"hash-{name}", n_rows=n, n_features=2, n_classes=2,
                                     family=name) for name, n in ROWS.items()}
    runs = []
    for config_name, algorithm in (("cheap", "gaussian_nb"), ("slow", "catboost")):
        config = default_configuration(algorithm)
        ids[config_name] = kb.register_configuration(config, algorithm, SPACE_VERSION)
        for dataset, seconds in SECONDS[config_name].items():  # two runs each: the mean counts
            runs += [RunRecord(dataset_id=ids[dataset], config=config, algorithm=algorithm, metric="balanced_accuracy",
                               status="success", score=0.9, seconds=seconds * factor, origin="smac")
                     for factor in (0.5, 1.5)]
    kb.record_runs(runs)
    return ids


def _neighbors(ids: dict[str, int]) -> list[Neighbor]:
    return [Neighbor(ids[name], name, name, distance) for name, distance in (("A", 0.1), ("B", 0.2))]


def _recommendation(rank: int, name: str, ids: dict[str, int]) -> Recommendation:
    algorithm = {"cheap": "gaussian_nb", "slow": "catboost", "unknown": "lda"}[name]
    return Recommendation(rank, algorithm, default_configuration(algorithm), ids.get(name, 10_000), 0.9, None,
                          "neighbors", 0.5)


def test_expected_seconds_scale_the_neighbours_trials_to_this_search(kb: KnowledgeBase,
                                                                      hand_built: dict[str, int]) -> None:
    recorded = Recommender(kb, min_datasets=1).recorded_seconds()
    assert recorded[(hand_built["A"], hand_built["slow"])] == pytest.approx(30.0)  # the mean of 15 s and 45 s
    rows = {hand_built[name]: n for name, n in ROWS.items()}.__getitem__
    # 600 rows, 5 folds: 4 x 600 rows fitted; A's trials fitted 2 x 300 (3 folds), B's 2 x 2000
    expected = expected_seconds(hand_built["slow"], _neighbors(hand_built), recorded, rows, 600, 5, 5000)
    assert expected == pytest.approx((30.0 * 2400 / 600 + 300.0 * 2400 / 4000) / 2)
    capped = expected_seconds(hand_built["slow"], _neighbors(hand_built), recorded, rows, 600, 5, 300)
    assert capped == pytest.approx(expected / 2)  # --max-rows 300: half the rows fitted
    assert expected_seconds(10_000, _neighbors(hand_built), recorded, rows, 600, 5, 5000) is None  # never run

    recs = [_recommendation(rank, name, hand_built) for rank, name in enumerate(("slow", "cheap", "unknown"), 1)]
    kept, notes = affordable(recs, _neighbors(hand_built), recorded, rows, 600, 5, 5000, budget=60.0)
    assert [r.algorithm for r in kept] == ["gaussian_nb", "lda"]  # no estimate: kept
    assert len(notes) == 1 and "recommendation 1 (catboost): expected 150.0 s" in notes[0]
    assert f"{MAX_TRIAL_SHARE:.0%} of the 60 s budget" in notes[0]
    kept, notes = affordable(recs, _neighbors(hand_built), recorded, rows, 600, 5, 5000, budget=3600.0)
    assert len(kept) == 3 and not notes


def test_a_search_with_a_time_budget_leaves_slow_recommendations_out(kb: KnowledgeBase,
                                                                     hand_built: dict[str, int]) -> None:
    recs = [_recommendation(rank, name, hand_built) for rank, name in enumerate(("slow", "cheap"), 1)]
    report = RecommendationReport({}, {}, _neighbors(hand_built), recs, False, "balanced_accuracy")
    space = build_space(seed=0)
    timed = WarmStartSearch(kb, SearchSettings(time_budget=60.0, n_trials=None))
    configs, note = timed.initial_configs(space, report, n_rows=600)
    assert [c["classifier"] for c in configs] == ["gaussian_nb"] and note.used == 1 and note.requested == 2
    assert "expected 150.0 s per trial" in note.dropped[0] and not note.ran_cold
    counted = WarmStartSearch(kb, SearchSettings(n_trials=10))  # a trial count, no time budget: all of them
    configs, note = counted.initial_configs(space, report, n_rows=600)
    assert [c["classifier"] for c in configs] == ["catboost", "gaussian_nb"] and not note.dropped
