"""Fairness mitigation (``search --sensitive COL --fairness ...``) on a real table with a sensitive attribute.

``tests/data/titanic_sex.csv`` is 600 rows of the Titanic passenger table (see ``tests/data/README.md``): women
survived far more often than men, so an accurate model has a large demographic-parity gap on ``sex``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli
from sklearn.base import clone
from sklearn.model_selection import cross_val_predict

from metalearn import service
from metalearn.datasets import load_file
from metalearn.errors import MetalearnError
from metalearn.knowledge_base import KnowledgeBase
from metalearn.mitigation import FairClassifier, FairnessRequest, check_request, mitigate
from metalearn.model_io import ModelBundle
from metalearn.pipeline import build_pipeline
from metalearn.report import render_report
from metalearn.space import build_space, canonical_config

REPO = Path(__file__).resolve().parents[1]
TITANIC = REPO / "tests" / "data" / "titanic_sex.csv"


@pytest.fixture(scope="module")
def fair_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path]:
    root = tmp_path_factory.mktemp("fair")
    db, model = root / "kb.sqlite", root / "fair.joblib"
    proc = run_cli("search", str(TITANIC), "--target", "survived", "--trials", "3", "--strategy", "random",
                "--test-size", "0.3", "--sensitive", "sex", "--fairness", "demographic_parity", "--db", str(db),
                "-o", str(model), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), model, db


def test_search_with_fairness_reduces_the_parity_gap_on_held_out_rows(fair_search: tuple[dict, Path, Path]) -> None:
    result, model, _ = fair_search
    fairness = result["fairness"]
    assert fairness["sensitive"] == "sex" and fairness["constraint"] == "demographic_parity"
    assert fairness["evaluated_on"].startswith("held-out test split (180 rows)")
    before, after = fairness["before"], fairness["after"]
    assert before["demographic_parity_difference"] > 0.3  # the unmitigated model follows sex closely
    assert after["demographic_parity_difference"] < before["demographic_parity_difference"] / 2
    assert {g["group"] for g in before["groups"]} == {"female", "male"} == {g["group"] for g in after["groups"]}
    assert all(0 <= g["selection_rate"] <= 1 for g in after["groups"])
    bundle = ModelBundle.load(model)
    assert isinstance(bundle.model, FairClassifier) and bundle.metadata["fairness"]["sensitive"] == "sex"
    assert result["test_score"] == pytest.approx(after["balanced_accuracy"])  # the final model is the fair one


def test_fair_model_predicts_from_the_same_columns_and_needs_the_sensitive_one(
        fair_search: tuple[dict, Path, Path], tmp_path: Path) -> None:
    _, model, _ = fair_search
    proc = run_cli("predict", str(model), str(TITANIC))
    assert proc.returncode == 0, proc.stderr
    predictions = pd.read_csv(pd.io.common.StringIO(proc.stdout))["prediction"]
    assert len(predictions) == 600 and set(predictions) <= {0, 1}
    again = ModelBundle.load(model).predict(pd.read_csv(TITANIC))  # randomised thresholds, fixed seed
    assert list(again) == list(predictions)
    without = tmp_path / "no-sex.csv"
    pd.read_csv(TITANIC).drop(columns="sex").to_csv(without, index=False)
    refused = run_cli("predict", str(model), str(without))
    assert refused.returncode == 2 and "'sex'" in refused.stderr


def test_report_of_a_fair_model_shows_before_and_after_per_group(fair_search: tuple[dict, Path, Path]) -> None:
    _, model, _ = fair_search
    report = service.report(str(model), TITANIC, shap=False, lime=False, folds=2, permutation_repeats=1,
                            pdp_features=1, sample_size=50)
    section = report.sections["fairness"]
    assert section["attributes"][0]["attribute"] == "sex"  # the mitigated column, without --sensitive
    assert section["mitigation"]["after"]["demographic_parity_difference"] < \
        section["mitigation"]["before"]["demographic_parity_difference"]
    page = render_report(report, "html")
    assert "Mitigation: demographic_parity on sex" in page and "after: selection rate" in page


def test_equalized_odds_mitigation_of_a_pipeline_and_its_clone() -> None:
    dataset = load_file(TITANIC, "survived")
    train, test = dataset.split(0.3, seed=1)
    config = canonical_config(build_space(seed=0).get_default_configuration())
    pipeline = build_pipeline(config, train.numeric, train.categorical, n_features=train.n_features)
    pipeline.fit(train.X, train.y)
    fair, summary = mitigate(pipeline, train, FairnessRequest("sex", "equalized_odds"), test=test, seed=0)
    assert summary["before"]["equalized_odds_difference"] > summary["after"]["equalized_odds_difference"]
    proba = fair.predict_proba(test.X)
    assert proba.shape == (len(test.X), 2) and abs(proba.sum(axis=1) - 1).max() < 1e-9
    # an unfitted clone refits the pipeline and its thresholds (what the report's cross-validation does)
    oof = cross_val_predict(clone(fair), train.X, train.y, cv=2)
    assert set(oof) <= {0, 1} and len(oof) == len(train.X)


def test_unusable_fairness_requests_are_refused_before_the_search(tmp_path: Path) -> None:
    db = tmp_path / "kb.sqlite"
    for target, request, message in [("survived", FairnessRequest("sex", "parity"), "unknown fairness constraint"),
                                      ("pclass", FairnessRequest("sex"), "two classes"),
                                      ("survived", FairnessRequest("survived"), "is the target"),
                                      ("survived", FairnessRequest("gender"), "not a column"),
                                      ("fare", FairnessRequest("sex"), "classification target")]:
        with pytest.raises(MetalearnError, match=message):
            check_request(request, load_file(TITANIC, target))
    cases = [
        (["--target", "fare", "--sensitive", "sex", "--fairness", "demographic_parity"], "classification target"),
        (["--target", "survived", "--fairness", "demographic_parity"], "--sensitive"),
    ]
    for args, message in cases:
        proc = run_cli("search", str(TITANIC), *args, "--trials", "2", "--strategy", "random", "--db", str(db))
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
    assert KnowledgeBase(str(db)).stats()["searches"] == 0  # nothing was started
