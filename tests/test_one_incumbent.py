"""One hyperband search, five readers: the CLI's ``search --json``, ``SearchResult``, the HTTP API, the model
report's search section and the benchmark's reader must name the same best trial with the same numbering."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import breast_cancer_frame, run_cli
from servers import running_server

from metalearn.benchmark.jobs import budget_incumbents
from metalearn.knowledge_base import KnowledgeBase
from metalearn.report import search_section_from_kb
from metalearn.warmstart.result import SearchResult, incumbent, trials_from_runs
from metalearn.warmstart.search import SearchSettings


@pytest.fixture(scope="module")
def hyperband_search(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("incumbent")
    csv = root / "bc.csv"
    breast_cancer_frame(240).to_csv(csv, index=False)
    db = root / "kb.sqlite"
    done = run_cli("search", str(csv), "--target", "target", "--strategy", "hyperband", "--trials", "14", "--folds",
                   "3", "--max-rows", "240", "--seed", "1", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    return {"root": root, "db": str(db), "json": json.loads(done.stdout)}


def test_every_reader_names_the_same_best_trial(hyperband_search: dict) -> None:
    cli = hyperband_search["json"]
    search_id = cli["search_id"]
    kb = KnowledgeBase(hyperband_search["db"])
    trials = trials_from_runs(kb.runs_frame(search_id=search_id))
    result = SearchResult(search_id, cli["dataset"], SearchSettings(strategy="hyperband"), trials, cli["status"])

    # the search really used several budgets, so "the best trial" depends on the budget rule
    assert len({t.budget for t in trials if t.ok}) > 1
    assert [t["trial"] for t in cli["trials"]] == [t.number for t in trials] == list(range(1, len(trials) + 1))
    assert [(t["score"], t["budget"]) for t in cli["trials"]] == [(t.score, t.budget) for t in trials]
    best = result.best
    assert best is not None and best is incumbent(trials)
    assert best.budget == max(t.budget for t in trials if t.ok)
    assert cli["best"]["trial"] == best.number and cli["best"]["score"] == best.score
    assert kb.search(search_id)["best_run_id"] == best.run_id

    cells = budget_incumbents(result, [1, 5, len(trials), 100])
    assert [c["incumbent"].number if c["incumbent"] else None for c in cells] == [
        None if incumbent(trials, n) is None else incumbent(trials, n).number for n in (1, 5, len(trials), 100)]
    assert cells[-1]["incumbent"] is best and cells[-1]["trials"] == len(trials)

    section = search_section_from_kb(kb, search_id, neighbors=False)
    assert section["best"]["trial"] == best.number
    assert [t["best_so_far"] for t in section["trajectory"]] == [t["best_so_far"] for t in cli["trajectory"]]

    with running_server(hyperband_search["root"], {"METALEARN_DB": hyperband_search["db"],
                                                   "METALEARN_API_SEED": "0", "METALEARN_API_RECOVER": "0"}) as server:
        url = server.url
        listed = httpx.get(f"{url}/v1/searches/{search_id}/trials", timeout=30).json()["trials"]
        status = httpx.get(f"{url}/v1/searches/{search_id}", timeout=30).json()
    assert [(t["trial"], t["run_id"], t["score"]) for t in listed] == [(t.number, t.run_id, t.score) for t in trials]
    assert status["best"]["trial"] == best.number and status["best"]["run_id"] == best.run_id
    assert [t["best_so_far"] for t in status["trajectory"]] == [t["best_so_far"] for t in cli["trajectory"]]
    kb.dispose()


def test_a_search_never_names_a_lower_budget_trial_over_a_full_budget_one(hyperband_search: dict) -> None:
    kb = KnowledgeBase(hyperband_search["db"])
    trials = trials_from_runs(kb.runs_frame(search_id=hyperband_search["json"]["search_id"]))
    kb.dispose()
    for n in range(1, len(trials) + 1):
        best = incumbent(trials, n)
        seen = [t for t in trials[:n] if t.ok]
        if best is None:
            assert not seen
            continue
        top = max(t.budget for t in seen)
        assert best.budget == top and best.score == max(t.score for t in seen if t.budget == top)
