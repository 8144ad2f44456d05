"""Two CLI searches writing one knowledge base at once (SQLite, and PostgreSQL when the CI provides one): no run
is lost or written twice, and no ``database is locked`` reaches the user."""

from __future__ import annotations

from pathlib import Path

from fault_helpers import CliSearch, runs_of, sqlite_intact, table, unseeded_kb

#: each search runs 10 trials of a fraction of a second: many writes at once (a trial count, not a time budget:
#: on a loaded machine a 15 s budget could end before the fifth trial)
BUDGET = ("--trials", "10", "--folds", "2", "--max-rows", "300", "--ensemble-size", "0")


def test_two_searches_write_one_knowledge_base_at_once(tmp_path: Path, kb_path: str) -> None:
    kb = unseeded_kb(kb_path)
    try:
        before = len(kb.runs_frame())
        searches = [CliSearch.start(tmp_path, kb_path, table(tmp_path / f"t{i}.csv", 300, seed=i), *BUDGET)
                    for i in range(2)]
        codes = [search.wait(timeout=180) for search in searches]
        for search, code in zip(searches, codes, strict=True):
            errors = search.stderr.read_text()
            assert code == 0, errors[-3000:]
            assert "database is locked" not in errors and "Traceback" not in errors, errors[-3000:]
        results = [search.result() for search in searches]
        assert len({r["search_id"] for r in results}) == 2
        for result in results:
            runs = runs_of(kb, result["search_id"])
            assert result["status"] == "succeeded" == kb.search(result["search_id"])["status"]
            assert result["n_trials"] == 10 and len(runs) == result["n_trials"]  # none lost, none twice
            assert list(runs["status"]) == [t["status"] for t in result["trials"]]
            assert list(runs["algorithm"]) == [t["algorithm"] for t in result["trials"]]
        everything = kb.runs_frame(ensembles=True)
        assert len(everything) - before == sum(r["n_trials"] for r in results)
        assert everything["id"].is_unique
    finally:
        kb.dispose()
    if not kb_path.startswith("postgresql"):
        sqlite_intact(kb_path)
