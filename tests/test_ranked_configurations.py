"""The one ranking of a dataset's configurations (``KnowledgeBase.ranked_configurations``) and its callers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metalearn.api.studio_services import best_runs
from metalearn.knowledge_base import KnowledgeBase, RunRecord, sets_by
from metalearn.protocol import CROSS_EVAL_ORIGIN, ENSEMBLE_ORIGIN
from metalearn.space import SPACE_VERSIONS
from metalearn.warmstart.recommend import Recommender

METRIC = "balanced_accuracy"
RankedKB = tuple[KnowledgeBase, dict[str, int], dict[str, int]]


def _config(name: str) -> dict:
    return {"classifier": "gaussian_nb", "var_smoothing": {"low": 1e-9, "high": 1e-5, "mid": 1e-7, "x": 1e-3}[name]}


def _run(dataset_id: int, name: str, score: float | None, origin: str = "seed", status: str = "success",
         std: float | None = None) -> RunRecord:
    return RunRecord(dataset_id=dataset_id, config=_config(name), algorithm="gaussian_nb", metric=METRIC,
                     status=status, score=score, score_std=std, seconds=0.1, origin=origin)


@pytest.fixture
def ranked_kb(kb: KnowledgeBase) -> RankedKB:
    """Datasets a (a tie, a failed run, cross-evaluation and ensemble runs) and b; configurations registered in
    the order low < high < mid < x of their ids, their runs recorded in another order."""
    datasets = {name: kb.register_dataset(name=name, content_hash=f"hash-{name}", n_rows=10, n_features=2,
                                          n_classes=2) for name in ("a", "b")}
    ids = {name: kb.register_configuration(_config(name), "gaussian_nb", SPACE_VERSIONS["classification"])
           for name in ("low", "high", "mid", "x")}
    a, b = datasets["a"], datasets["b"]
    kb.record_runs([_run(a, "high", 0.875, std=0.01), _run(a, "low", 0.75, std=0.02), _run(a, "low", 1.0, std=0.05),
                    _run(a, "mid", 0.75), _run(a, "mid", 0.5), _run(a, "x", None, status="crash"),
                    _run(a, "x", 0.9375, origin=CROSS_EVAL_ORIGIN), _run(a, "mid", 1.0, origin=ENSEMBLE_ORIGIN),
                    _run(b, "mid", 0.5), _run(b, "low", 0.25, origin=CROSS_EVAL_ORIGIN)])
    return kb, datasets, ids


def _order(frame: pd.DataFrame, dataset_id: int) -> list[tuple[int, int]]:
    rows = frame[frame["dataset_id"] == dataset_id]
    return list(zip(rows["configuration_id"].astype(int), rows["rank"].astype(int), strict=True))


def test_rank_is_score_then_lower_configuration_id(ranked_kb: RankedKB) -> None:
    kb, datasets, ids = ranked_kb
    searched = kb.ranked_configurations(METRIC, searched_only=True)
    # a tie at 0.875 (exact binary means): the lower configuration id first; failed and ensemble runs never count
    assert _order(searched, datasets["a"]) == [(ids["low"], 0), (ids["high"], 1), (ids["mid"], 2)]
    assert _order(searched, datasets["b"]) == [(ids["mid"], 0)]
    everything = kb.ranked_configurations(METRIC)
    assert _order(everything, datasets["a"]) == [(ids["x"], 0), (ids["low"], 1), (ids["high"], 2), (ids["mid"], 3)]
    assert _order(everything, datasets["b"]) == [(ids["mid"], 0), (ids["low"], 1)]
    assert list(everything["dataset_id"]) == sorted(everything["dataset_id"])


def test_callers_share_the_ranking(ranked_kb: RankedKB) -> None:
    kb, datasets, ids = ranked_kb
    best = kb.best_configurations(datasets["a"], METRIC, 3)
    assert [(s.configuration_id, s.score, s.std, s.n_runs) for s in best] == [
        (ids["x"], 0.9375, None, 1), (ids["low"], 0.875, pytest.approx(0.05), 2),
        (ids["high"], 0.875, pytest.approx(0.01), 1)]
    assert best[1].config == _config("low")
    # the searches' own winner of a is "low" (tie-break), cross-evaluated on b; "mid" won b but was not pooled
    assert kb.pooled_by(METRIC) == {ids["low"]: frozenset({datasets["a"]})}
    assert kb.pooled_by(METRIC, [datasets["b"]]) == {}
    runs = best_runs(Recommender(kb, METRIC))
    assert runs.configuration == {datasets["a"]: ids["x"], datasets["b"]: ids["mid"]}
    assert runs.score == {datasets["a"]: 0.9375, datasets["b"]: 0.5}
    assert runs.algorithm == {datasets["a"]: "gaussian_nb", datasets["b"]: "gaussian_nb"}


def test_tie_in_the_studio_goes_to_the_lower_id(ranked_kb: RankedKB) -> None:
    kb, datasets, ids = ranked_kb
    kb.record_runs([_run(datasets["a"], "x", 0.8125, origin=CROSS_EVAL_ORIGIN)])  # x now 0.875: a three-way tie
    assert best_runs(Recommender(kb, METRIC)).configuration[datasets["a"]] == ids["low"]
    assert [s.configuration_id for s in kb.best_configurations(datasets["a"], METRIC, 3)] == [
        ids["low"], ids["high"], ids["x"]]


def test_sets_by_is_the_groupby_of_its_two_columns() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"configuration_id": rng.integers(0, 300, 5000), "dataset_id": rng.integers(0, 40, 5000)})
    expected = {int(c): frozenset(int(d) for d in group)
                for c, group in frame.groupby("configuration_id")["dataset_id"]}
    assert sets_by(frame, "configuration_id", "dataset_id") == expected and len(expected) == 300
    assert sets_by(frame.iloc[:0], "configuration_id", "dataset_id") == {}
