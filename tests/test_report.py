"""Model report: every section's figures against independent computations, the CLI, and the page in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import breast_cancer_frame, messy_iris_frame
from helpers_report import PLOT, needs_chromium, rendered_sections
from sklearn.base import clone
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from typer.testing import CliRunner

from metalearn.cli import app
from metalearn.datasets import from_frame
from metalearn.knowledge_base import KnowledgeBase
from metalearn.report import SECTIONS, ModelReport, build_report, render_report, report_for_result
from metalearn.service import save_search_model
from metalearn.space import default_configuration
from metalearn.warmstart import SearchSettings, WarmStartSearch

pytest.importorskip("shap")
pytest.importorskip("fairlearn")
pytest.importorskip("lime")
pytest.importorskip("matplotlib")

FAST = {"shap_rows": 40, "shap_seconds": 15.0, "sample_size": 200, "permutation_repeats": 3, "lime_samples": 300}


def _bc_dataset():
    """300 breast-cancer rows with a derived categorical column (also the sensitive attribute)."""
    frame = breast_cancer_frame(300, seed=1)
    frame["texture_band"] = pd.cut(frame["mean_texture"], [0, 17, 21, 100], labels=["low", "mid", "high"]).astype(str)
    return from_frame(frame, "target", "bc-report")


@pytest.fixture(scope="module")
def bc() -> tuple[ModelReport, object]:
    dataset = _bc_dataset()
    config = default_configuration("random_forest") | {"random_forest:n_estimators": 30}
    report = build_report(config, dataset, sensitive=["texture_band"], lime=True, **FAST)
    return report, dataset


def _pos_index(report: ModelReport) -> int:
    classes = list(report.artifacts["classes"])
    return classes.index(report["metrics"]["positive_class"])


def test_evaluation_is_reproducible_out_of_fold_and_metrics_match_sklearn(bc) -> None:
    report, dataset = bc
    a = report.artifacts
    assert report.data["meta"]["evaluation"]["method"] == "cross-validated predictions"
    # independent out-of-fold probabilities: the same folds on a clone of the same pipeline
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    proba = cross_val_predict(clone(a["model"]), dataset.X, dataset.y, cv=cv, method="predict_proba")
    np.testing.assert_allclose(a["proba"], proba)
    y_true, y_pred, classes = a["y_true"], a["classes"][proba.argmax(axis=1)], a["classes"]
    np.testing.assert_array_equal(a["y_pred"], y_pred)
    m = report["metrics"]
    assert m["n"] == 300 and m["positive_class"] == "malignant"
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    k = _pos_index(report)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y_true == "malignant", proba[:, k]))
    assert m["log_loss"] == pytest.approx(log_loss(y_true, np.clip(proba, 1e-15, 1), labels=classes))
    per_class = {c["class"]: c for c in m["per_class"]}
    assert sum(c["support"] for c in per_class.values()) == 300
    cm = report["confusion-matrix"]
    assert cm["labels"] == list(classes)
    assert cm["matrix"] == confusion_matrix(y_true, y_pred, labels=classes).tolist()
    for i, label in enumerate(cm["labels"]):
        assert per_class[label]["recall"] == pytest.approx(cm["matrix"][i][i] / sum(cm["matrix"][i]))


def test_calibration_matches_sklearn(bc) -> None:
    report, _ = bc
    a = report.artifacts
    k = _pos_index(report)
    cal = report["calibration"]
    prob_true, prob_pred = calibration_curve(a["y_true"] == "malignant", a["proba"][:, k], n_bins=10)
    curve = cal["curves"][0]
    np.testing.assert_allclose(curve["prob_true"], prob_true, atol=1e-5)
    np.testing.assert_allclose(curve["prob_pred"], prob_pred, atol=1e-5)
    assert sum(curve["counts"]) == 300 and len(curve["counts"]) == len(prob_true)
    gaps = np.abs(np.array(curve["prob_true"]) - np.array(curve["prob_pred"]))
    assert curve["ece"] == pytest.approx(float(np.sum(gaps * curve["counts"]) / 300), abs=1e-4)
    assert 0 <= cal["brier"] <= 1 and sum(cal["top_label"]["counts"]) == 300


def test_permutation_importance_and_partial_dependence(bc) -> None:
    report, dataset = bc
    perm = report["permutation-importance"]
    names = [f["feature"] for f in perm["features"]]
    assert sorted(names) == sorted(dataset.X.columns)  # original columns, not encoded ones
    means = [f["mean"] for f in perm["features"]]
    assert means == sorted(means, reverse=True) and all(len(f["repeats"]) == 3 for f in perm["features"])
    assert perm["n_rows"] == len(report.artifacts["X_sub"]) == 200 and perm["scoring"] == "balanced_accuracy"
    assert report.data["meta"]["sampling"]["explanation_rows"] == 200
    pdp = report["partial-dependence"]
    features = [f["feature"] for f in pdp["features"]]
    assert 1 <= len(features) <= 4 and all(f in dataset.numeric for f in features)
    assert features == [n for n in names if n in dataset.numeric][: len(features)]
    first = pdp["features"][0]
    grid, curve = np.array(first["grid"]), np.array(first["average"]["malignant"])
    assert np.all(np.diff(grid) > 0) and curve.shape == grid.shape
    # independent recomputation of one point: the mean probability with the column set to the grid value
    model, X_sub = report.artifacts["model"], report.artifacts["X_sub"].copy()
    X_sub[first["feature"]] = grid[-1]
    expected = model.predict_proba(X_sub)[:, list(model.classes_).index("malignant")].mean()
    assert curve[-1] == pytest.approx(expected, abs=1e-5)


def test_shap_values_are_additive_on_the_raw_columns(bc) -> None:
    report, dataset = bc
    shap = report["shap"]
    assert "error" not in shap and "skipped" not in shap
    values, base = np.array(shap["values"]), np.array(shap["base_values"])
    n = shap["n_rows"]
    assert values.shape == (n, dataset.n_features) and base.shape == (n,) and n >= 3
    assert shap["features"] == list(dataset.X.columns)
    model, X_sub = report.artifacts["model"], report.artifacts["X_sub"]
    direct = model.predict_proba(X_sub.iloc[shap["rows"]])[:, list(model.classes_).index("malignant")]
    np.testing.assert_allclose(base + values.sum(axis=1), direct, atol=1e-4)
    assert shap["additivity_max_error"] < 1e-6
    mean_abs = np.abs(report.artifacts["shap_values"]).mean(axis=0)
    top = shap["global"][0]
    assert top["mean_abs"] == pytest.approx(mean_abs.max()) and shap["features"][mean_abs.argmax()] == top["feature"]
    assert len(shap["local"]) == 3
    for pos, local in enumerate(shap["local"]):
        assert local["row"] == shap["rows"][pos]
        assert local["output"] == pytest.approx(direct[pos], abs=1e-4)
        for c in local["contributions"]:
            assert c["shap"] == pytest.approx(values[pos][shap["features"].index(c["feature"])], abs=1e-5)
    lime = report["lime"]
    assert lime["used"] and len(lime["local"]) == 3 and all(item["weights"] for item in lime["local"])


def test_surrogate_fidelity_recomputed(bc) -> None:
    report, _ = bc
    a = report.artifacts
    sur = report["surrogate"]
    tree, X = a["surrogate"], a["surrogate_X"]
    model_pred = a["model"].predict(X)
    tree_pred = tree.predict(a["surrogate_encoder"](X))
    hold = a["surrogate_holdout"]
    assert sur["fidelity_holdout"] == pytest.approx(np.mean(model_pred[hold] == tree_pred[hold]))
    assert sur["fidelity_all"] == pytest.approx(np.mean(model_pred == tree_pred))
    assert sur["n_holdout"] == hold.sum() and sur["n_rows"] == 300
    assert tree.get_depth() <= 4 and len(sur["tree"]) == tree.tree_.node_count
    assert any(name.startswith("texture_band=") for name in sur["features"]) and "|---" in sur["rules"]
    assert sur["fidelity_holdout"] > 0.8


def test_fairness_differences_match_direct_group_computation(bc) -> None:
    report, dataset = bc
    a = report.artifacts
    fair = report["fairness"]
    attr = fair["attributes"][0]
    assert attr["attribute"] == "texture_band"
    frame = pd.DataFrame({"group": dataset.X["texture_band"], "y": a["y_true"], "p": a["y_pred"]})
    rates = frame.groupby("group").apply(lambda g: pd.Series({
        "n": len(g), "sel": (g.p == "malignant").mean(),
        "tpr": (g.p[g.y == "malignant"] == "malignant").mean(), "fpr": (g.p[g.y != "malignant"] == "malignant").mean(),
        "acc": (g.p == g.y).mean()}), include_groups=False)
    dpd = rates["sel"].max() - rates["sel"].min()
    eod = max(rates["tpr"].max() - rates["tpr"].min(), rates["fpr"].max() - rates["fpr"].min())
    assert attr["demographic_parity_difference"] == pytest.approx(dpd)
    assert attr["equalized_odds_difference"] == pytest.approx(eod)
    groups = {g["group"]: g for g in attr["groups"]}
    assert set(groups) == set(rates.index)
    for name, row in rates.iterrows():
        assert groups[name]["count"] == row["n"]
        assert groups[name]["accuracy"] == pytest.approx(row["acc"])
        assert groups[name]["selection_rate"] == pytest.approx(row["sel"])
    assert attr["warning"] == (dpd > 0.1 or eod > 0.1)
    assert attr["warning"] == any("texture_band" in w for w in report.warnings)


def test_json_round_trip_and_html_sections(bc, tmp_path: Path) -> None:
    report, _ = bc
    text = render_report(report, "json")
    data = json.loads(text)  # strict JSON: no NaN
    assert data == json.loads(json.dumps(report.data))
    assert data["meta"]["format"] == "metalearn-report/1"
    page = render_report(data, "html")  # re-rendered from the JSON data alone
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    assert "Could not render" not in page and "Not computed" not in page
    assert "http://" not in page and "https://" not in page  # self-contained
    path = report.save(tmp_path / "r.json")
    assert json.loads(path.read_text()) == data


def test_lime_stands_in_when_shap_does_not_fit_the_budget() -> None:
    dataset = _bc_dataset()
    report = build_report(default_configuration("logistic_regression"), dataset, shap_seconds=1e-4, sample_size=60,
                          permutation_repeats=1, lime_samples=200, pdp_features=1)
    assert "too slow" in report["shap"]["skipped"]
    lime = report["lime"]
    assert lime["used"] and "time budget" in lime["reason"] and len(lime["local"]) == 3
    model = report.artifacts["model"]
    for item in lime["local"]:  # each explains the final model's own prediction for that row
        proba = model.predict_proba(report.artifacts["X_sub"].iloc[[item["row"]]])[0]
        assert item["probability"] == pytest.approx(proba.max()) and item["weights"]
    assert "<section id=\"lime\">" in report.to_html()


@pytest.fixture(scope="module")
def iris_search(tmp_path_factory: pytest.TempPathFactory):
    """A small recorded search on a messy multiclass table, with a held-out test split and a saved model."""
    root = tmp_path_factory.mktemp("report-search")
    frame = messy_iris_frame()
    frame["site"] = np.where(np.arange(len(frame)) % 3 == 0, "A", "B")
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = frame.iloc[:105].reset_index(drop=True), frame.iloc[105:].reset_index(drop=True)
    kb = KnowledgeBase(str(root / "kb.sqlite"))
    dataset = from_frame(train, "target", "iris-train")
    settings = SearchSettings(strategy="cold", n_trials=3, folds=3, max_rows=300)
    result = WarmStartSearch(kb, settings).run(dataset)
    save_search_model(result, dataset, root / "model.joblib", kb)
    train.to_csv(root / "train.csv", index=False)
    yield {"root": root, "kb": kb, "result": result, "dataset": dataset,
           "test": from_frame(test, "target", "iris-test")}
    kb.dispose()


def test_search_result_report_multiclass_with_test_split(iris_search) -> None:
    result, dataset, test = iris_search["result"], iris_search["dataset"], iris_search["test"]
    report = report_for_result(result, dataset, test=test, sensitive="site", shap_rows=15, shap_seconds=5.0,
                               sample_size=60, permutation_repeats=2)
    ev = report.data["meta"]["evaluation"]
    assert ev["method"] == "test split" and ev["n_rows"] == len(test.X) == report["metrics"]["n"]
    a = report.artifacts
    np.testing.assert_allclose(a["proba"], result.model.predict_proba(test.X))
    assert report["confusion-matrix"]["matrix"] == confusion_matrix(test.y, a["y_pred"], labels=a["classes"]).tolist()
    cal = report["calibration"]
    assert len(cal["curves"]) == 3 and cal["top_label"]["name"] == "top-label"
    fair = report["fairness"]["attributes"][0]
    assert len(fair["per_class"]) == 3
    assert fair["demographic_parity_difference"] == pytest.approx(
        max(c["demographic_parity_difference"] for c in fair["per_class"]))
    for c in fair["per_class"]:  # one-vs-rest, recomputed by hand
        sel = pd.Series(a["y_pred"] == c["class"]).groupby(test.X["site"].to_numpy()).mean()
        assert c["demographic_parity_difference"] == pytest.approx(sel.max() - sel.min())
    shap = report["shap"]
    values = np.array(shap["values"])
    assert values.shape == (shap["n_rows"], dataset.n_features, 3)
    direct = result.model.predict_proba(a["X_sub"].iloc[shap["rows"]])
    np.testing.assert_allclose(np.array(shap["base_values"]) + values.sum(axis=1), direct, atol=1e-4)
    search = report["search"]
    assert search["source"] == "search result" and search["n_trials"] == 3
    assert search["origins"] == {t.origin: sum(1 for u in result.trials if u.origin == t.origin)
                                 for t in result.trials}
    assert [t["best_so_far"] for t in search["trajectory"]] == list(result.trajectory["best_so_far"])
    assert search["best"]["trial"] == result.best.number
    assert report.data["meta"]["model"]["configuration"] == json.loads(json.dumps(result.best_config))


def test_cli_report_from_model_file_and_search_id(iris_search) -> None:
    root, kb, result = iris_search["root"], iris_search["kb"], iris_search["result"]
    runner = CliRunner()
    fast = ["--sample-size", "40", "--shap-seconds", "1"]
    out = root / "model-report.html"
    res = runner.invoke(app, ["report", str(root / "model.joblib"), "--data", str(root / "train.csv"),
                              "--sensitive", "site,colour", "--output", str(out), "--db", kb.url, *fast])
    assert res.exit_code == 0, res.output
    page = out.read_text()
    for sid in ("metrics", "confusion-matrix", "shap", "surrogate", "fairness", "search"):
        assert f'<section id="{sid}">' in page
    res = runner.invoke(app, ["report", str(result.search_id), "--data", str(root / "train.csv"), "--json",
                              "--db", kb.url, "--sensitive", "site", *fast])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout[res.stdout.index("{"):])
    assert data["meta"]["search_id"] == result.search_id
    assert data["meta"]["model"]["configuration"] == json.loads(json.dumps(result.best_config))
    search = data["sections"]["search"]
    assert search["source"] == "knowledge base" and search["n_trials"] == 3
    assert [t["origin"] for t in search["trials"]] == [t.origin for t in result.trials]
    assert data["sections"]["metrics"]["n"] == iris_search["dataset"].n_rows
    res = runner.invoke(app, ["report", "nonsense", "--data", str(root / "train.csv")])
    assert res.exit_code == 2 and "neither a model file nor a search id" in res.output
    res = runner.invoke(app, ["report", str(root / "model.joblib")])
    assert res.exit_code == 2 and "--data" in res.output


@needs_chromium
def test_html_renders_every_section_in_headless_chromium(bc, tmp_path: Path) -> None:
    report, _ = bc
    dom, sections = rendered_sections(report, tmp_path, SECTIONS)
    for sid, section in sections.items():
        if sid != "search":  # no search information for this report: the section says so, without a plot
            assert PLOT.search(section), sid
    assert "no search information" in dom
