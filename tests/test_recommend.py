"""The ranking rules of the Recommender on a hand-built knowledge base with known answers."""

from __future__ import annotations

import pytest

from metalearn.knowledge_base import KnowledgeBase, RunRecord
from metalearn.metafeatures import EXTRACTOR_VERSION
from metalearn.space import SPACE_VERSION, default_configuration
from metalearn.warmstart import Recommender

# raw scores of four configurations on two close datasets A and B (and two far ones, C and D)
SCORES = {
    "c1": {"A": 0.90, "B": 0.50, "C": 0.6, "D": 0.6},  # best on A, worst on B
    "c2": {"A": 0.50, "B": 0.88, "C": 0.6, "D": 0.6},  # best on B, worst on A
    "c3": {"A": 0.89, "B": 0.60, "C": 0.6, "D": 0.6},  # nearly c1 again
    "c4": {"A": 0.70, "B": 0.70, "C": 0.6, "D": 0.6},
}
POSITION = {"A": 0.0, "B": 1.0, "C": 10.0, "D": 11.0}


@pytest.fixture
def hand_built(kb: KnowledgeBase) -> dict[str, int]:
    ids = {}
    for name, x in POSITION.items():
        ids[name] = kb.register_dataset(name=name, content_hash=f"hash-{name}", n_rows=100, n_features=2,
                                        n_classes=2, family=name)
        kb.store_metafeatures(ids[name], EXTRACTOR_VERSION, {"f1": x, "f2": x}, seconds=0.0)
    runs = []
    for i, (config_name, by_dataset) in enumerate(SCORES.items()):
        config = {**default_configuration("gaussian_nb"), "gaussian_nb:var_smoothing": 10.0 ** -(i + 3)}
        ids[config_name] = kb.register_configuration(config, "gaussian_nb", SPACE_VERSION)
        runs += [RunRecord(dataset_id=ids[d], config=config, algorithm="gaussian_nb", metric="balanced_accuracy",
                           status="success", score=s, seconds=0.1, origin="smac") for d, s in by_dataset.items()]
    kb.record_runs(runs)
    return ids


def _order(kb: KnowledgeBase, ranking: str, ids: dict[str, int]) -> list[str]:
    names = {v: k for k, v in ids.items() if k.startswith("c")}
    report = Recommender(kb, min_datasets=1, ranking=ranking).recommend({"f1": 0.3, "f2": 0.3}, top=4, k=2)
    assert not report.far and [n.name for n in report.neighbors] == ["A", "B"]
    return [names[r.configuration_id] for r in report.recommendations]


def test_percentile_ranking_follows_the_nearest_neighbour(kb: KnowledgeBase, hand_built: dict[str, int]) -> None:
    assert _order(kb, "percentile", hand_built)[:2] == ["c1", "c3"]


def test_greedy_ranking_covers_the_second_neighbour_with_its_second_pick(
        kb: KnowledgeBase, hand_built: dict[str, int]) -> None:
    # c3 is almost c1 on A and better on B, so it leads; then c2, the only one good on B
    order = _order(kb, "greedy", hand_built)
    assert order[:2] == ["c3", "c2"] and sorted(order) == ["c1", "c2", "c3", "c4"]


def test_unknown_ranking_is_rejected(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError, match="unknown ranking"):
        Recommender(kb, ranking="best-guess")


def _reports(recommender: Recommender) -> list[dict]:
    return [recommender.recommend({"f1": x, "f2": x}, top=4, k=2).to_json() for x in (0.0, 0.5, 5.0, 10.5)]


def test_incremental_update_matches_a_rebuild_and_reads_only_what_changed(
        kb: KnowledgeBase, hand_built: dict[str, int]) -> None:
    recommender = Recommender(kb, min_datasets=1)
    assert recommender.updated() is recommender  # nothing new: the same object
    # new runs on an existing dataset (its meta-features unchanged): the update equals a fresh build
    config = {**default_configuration("gaussian_nb"), "gaussian_nb:var_smoothing": 0.5}
    kb.record_runs([RunRecord(dataset_id=hand_built["A"], config=config, algorithm="gaussian_nb",
                              metric="balanced_accuracy", status="success", score=0.99, seconds=0.1, origin="smac")])
    updated = recommender.updated()
    assert updated is not recommender and _reports(updated) == _reports(Recommender(kb, min_datasets=1))
    assert _reports(recommender) != _reports(updated)  # the old one is untouched: requests in flight stay consistent
    assert updated.recommend({"f1": 0.0, "f2": 0.0}, top=1, k=1).recommendations[0].expected_score == 0.99


def test_incremental_update_indexes_a_new_dataset(kb: KnowledgeBase, hand_built: dict[str, int]) -> None:
    recommender = Recommender(kb, min_datasets=1)
    new = kb.register_dataset(name="E", content_hash="hash-E", n_rows=100, n_features=2, n_classes=2, family="E")
    kb.store_metafeatures(new, EXTRACTOR_VERSION, {"f1": 20.0, "f2": 20.0}, seconds=0.0)
    assert [n.name for n in recommender.updated().neighbors({"f1": 20.0, "f2": 20.0}, k=1)] == ["D"]  # no runs yet
    config = {**default_configuration("gaussian_nb"), "gaussian_nb:var_smoothing": 0.25}
    kb.record_runs([RunRecord(dataset_id=new, config=config, algorithm="gaussian_nb", metric="balanced_accuracy",
                              status="success", score=0.8, seconds=0.1, origin="smac")])
    updated = recommender.updated()
    assert [n.name for n in updated.neighbors({"f1": 20.0, "f2": 20.0}, k=1)] == ["E"]
    found = kb.dataset_by_hash("hash-E")
    assert found is not None and updated.hidden_configurations({new}) >= {kb.register_configuration(
        config, "gaussian_nb", SPACE_VERSION)}  # found only on E: hidden when E is held out


def test_hidden_configurations_match_their_definition_for_every_exclusion(
        kb: KnowledgeBase, hand_built: dict[str, int]) -> None:
    """The indexed lookup equals the definition (found on, or pooled because of, excluded datasets only) for
    every set of held-out datasets, before and after an incremental update."""
    nb = default_configuration("gaussian_nb")
    winner = {**nb, "gaussian_nb:var_smoothing": 0.7}  # best on A, then cross-evaluated everywhere
    elsewhere = {**nb, "gaussian_nb:var_smoothing": 0.6}  # found only on a regression dataset
    run = {"algorithm": "gaussian_nb", "status": "success", "seconds": 0.1}
    kb.record_runs([RunRecord(dataset_id=hand_built["A"], config=winner, metric="balanced_accuracy", score=0.99,
                              origin="smac", **run)]
                   + [RunRecord(dataset_id=hand_built[d], config=winner, metric="balanced_accuracy", score=0.5,
                                origin="cross_eval", **run) for d in "BCD"])
    other = kb.register_dataset(name="R", content_hash="hash-R", n_rows=100, n_features=2, n_classes=0,
                                task="regression")
    kb.record_runs([RunRecord(dataset_id=other, config=elsewhere, metric="r2", score=0.3, origin="smac", **run)])

    def definition(recommender: Recommender, excluded: frozenset[int]) -> frozenset[int]:
        allowed = set(recommender._row) - excluded
        return frozenset({c for c, found in recommender._found_on.items() if found.isdisjoint(allowed)}
                         | {c for c, why in recommender._pooled_by.items() if why.isdisjoint(allowed)})

    names = "ABCD"
    subsets = [frozenset(hand_built[n] for i, n in enumerate(names) if mask >> i & 1) for mask in range(16)]
    recommender = Recommender(kb, min_datasets=1)
    winner_id = kb.register_configuration(winner, "gaussian_nb", SPACE_VERSION)
    assert winner_id in recommender.hidden_configurations({hand_built["A"]})
    assert kb.register_configuration(elsewhere, "gaussian_nb", SPACE_VERSION) in recommender.hidden_configurations()
    for excluded in subsets:
        assert recommender.hidden_configurations(excluded) == definition(recommender, excluded)
    kb.record_runs([RunRecord(dataset_id=hand_built["B"], config=winner, metric="balanced_accuracy", score=0.999,
                              origin="smac", **run)])  # now B's own best too: holding out A no longer hides it
    updated = recommender.updated()
    assert winner_id not in updated.hidden_configurations({hand_built["A"]})
    for excluded in subsets:
        assert updated.hidden_configurations(excluded) == definition(updated, excluded)
