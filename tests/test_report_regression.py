"""Regression model report on real data (diabetes): every section's figures against independent computations,
the entry from a saved model bundle, and the page (also in Chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_report import PLOT, needs_chromium, rendered_sections
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    root_mean_squared_error,
)
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor
from typer.testing import CliRunner

from metalearn.cli import app
from metalearn.datasets import FeatureSchema, from_frame
from metalearn.errors import MetalearnError
from metalearn.knowledge_base import KnowledgeBase
from metalearn.model_io import ModelBundle
from metalearn.report import (
    REGRESSION_SECTIONS,
    SECTIONS,
    ModelReport,
    build_report,
    render_report,
    report_for_model,
    report_for_result,
    report_for_search,
)
from metalearn.report.regression import POINTS_LIMIT, regression_metrics_section, residuals_section
from metalearn.service import save_search_model
from metalearn.space import default_configuration
from metalearn.warmstart import SearchSettings, WarmStartSearch

pytest.importorskip("shap")
pytest.importorskip("lime")
pytest.importorskip("matplotlib")

FAST = {"shap_rows": 30, "shap_seconds": 15.0, "sample_size": 150, "permutation_repeats": 2, "lime_samples": 300}


def diabetes_frame() -> pd.DataFrame:
    """The diabetes table in its original units; ``sex`` as text (a real categorical column), a few ``bp``
    values masked (the pipeline imputes them)."""
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = frame["sex"].map({1.0: "F", 2.0: "M"})
    frame.loc[np.random.default_rng(0).choice(len(frame), 20, replace=False), "bp"] = np.nan
    return frame


def regressor(numeric: list[str], categorical: list[str]) -> Pipeline:
    pre = ColumnTransformer([("numeric", SimpleImputer(strategy="median"), numeric),
                             ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)])
    return Pipeline([("preprocess", pre),
                     ("regressor", HistGradientBoostingRegressor(max_iter=60, random_state=0))])


@pytest.fixture(scope="module")
def diabetes() -> tuple[ModelReport, object]:
    dataset = from_frame(diabetes_frame(), "target", "diabetes")
    assert dataset.task == "regression"
    model = regressor(dataset.numeric, dataset.categorical)
    report = build_report(model, dataset, sensitive=["sex", "age"], lime=True, **FAST)
    return report, dataset


def test_out_of_fold_metrics_match_sklearn(diabetes) -> None:
    report, dataset = diabetes
    a = report.artifacts
    meta = report.data["meta"]
    assert meta["task"] == "regression" and meta["metric"] == "r2" and meta["dataset"]["n_classes"] is None
    assert meta["evaluation"]["method"] == "cross-validated predictions" and meta["evaluation"]["folds"] == 5
    cv = KFold(5, shuffle=True, random_state=0)
    predicted = cross_val_predict(clone(a["model"]), dataset.X, dataset.y, cv=cv)
    np.testing.assert_allclose(a["y_pred"], predicted)
    y = dataset.y.to_numpy(dtype=float)
    m = report["metrics"]
    assert m["n"] == 442 and m["task"] == "regression"
    assert m["r2"] == pytest.approx(r2_score(y, predicted)) and 0.2 < m["r2"] <= 1.0
    assert m["rmse"] == pytest.approx(root_mean_squared_error(y, predicted))
    assert m["mae"] == pytest.approx(mean_absolute_error(y, predicted))
    assert m["mape"] == pytest.approx(mean_absolute_percentage_error(y, predicted))
    assert m["mean_residual"] == pytest.approx(np.mean(y - predicted))
    assert m["baseline_rmse"] == pytest.approx(y.std()) and m["rmse"] < m["baseline_rmse"]
    # the search's convention: higher is better, error metrics negated
    assert m["scores"] == pytest.approx({"r2": m["r2"], "rmse": -m["rmse"], "mae": -m["mae"], "mape": -m["mape"]})
    assert not {"roc_auc", "log_loss", "per_class", "roc_curves", "accuracy"} & set(m)


def test_classification_sections_are_noted_not_applicable(diabetes) -> None:
    report, _ = diabetes
    for sid in ("confusion-matrix", "calibration"):
        section = report[sid]
        assert section["not_applicable"] == "regression" and "not applicable to regression" in section["skipped"]
        assert "error" not in section
    assert not any("confusion" in w or "calibration" in w for w in report.warnings)
    assert set(report.sections) == set(REGRESSION_SECTIONS)


def test_residuals_section(diabetes) -> None:
    report, dataset = diabetes
    a = report.artifacts
    res = report["residuals"]
    residual = a["y_true"] - a["y_pred"]
    assert res["n"] == 442 and not res["thinned"] and res["n_points"] == 442
    assert res["summary"]["mean"] == pytest.approx(residual.mean())
    assert res["summary"]["median"] == pytest.approx(np.median(residual))
    assert res["summary"]["max_abs"] == pytest.approx(np.abs(residual).max())
    assert sum(res["histogram"]["counts"]) == 442 and sum(b["count"] for b in res["bins"]) == 442
    points = res["points"]
    rows = np.array(points["rows"])
    np.testing.assert_allclose(points["actual"], a["y_true"][rows], atol=1e-6)
    np.testing.assert_allclose(points["residual"], residual[rows], atol=1e-5)
    assert points["actual"] == sorted(points["actual"])
    # the mean residual of each prediction decile, recomputed
    first = res["bins"][0]
    low = a["y_pred"] <= first["predicted_to"]
    assert first["count"] == low.sum() and first["residual_mean"] == pytest.approx(residual[low].mean())


def test_residuals_are_thinned_and_mape_needs_nonzero_targets() -> None:
    y = np.tile(load_diabetes().target.astype(float), 3)
    pred = y + np.random.default_rng(1).normal(0, 30, len(y))
    res = residuals_section(y, pred)
    assert res["thinned"] and res["n_points"] <= POINTS_LIMIT and res["n"] == len(y)
    assert min(res["points"]["actual"]) == y.min() and max(res["points"]["actual"]) == y.max()
    assert len(json.dumps(res)) < 60_000
    shifted = y - y.min()  # the smallest target becomes zero
    m = regression_metrics_section(shifted, pred - y.min())
    assert m["mape"] is None and m["scores"]["mape"] is None and any("MAPE undefined" in n for n in m["notes"])
    assert m["r2"] == pytest.approx(r2_score(shifted, pred - y.min()))


def test_residuals_average_zero_on_the_training_rows() -> None:
    dataset = from_frame(diabetes_frame(), "target", "diabetes")
    model = regressor(dataset.numeric, dataset.categorical).fit(dataset.X, dataset.y)
    report = build_report(model, dataset, test=(dataset.X, dataset.y), shap=False, lime=False, sample_size=60,
                          permutation_repeats=1, pdp_features=1)
    assert report.data["meta"]["evaluation"]["method"] == "test split"
    res = report["residuals"]["summary"]
    assert abs(res["mean"]) < 0.01 * dataset.y.std()
    assert report["metrics"]["r2"] == pytest.approx(report["metrics"]["explained_variance"], abs=1e-6)  # unbiased
    np.testing.assert_allclose(report.artifacts["y_pred"], model.predict(dataset.X))


def test_permutation_importance_and_partial_dependence(diabetes) -> None:
    report, dataset = diabetes
    perm = report["permutation-importance"]
    assert perm["scoring"] == "r2" and sorted(f["feature"] for f in perm["features"]) == sorted(dataset.X.columns)
    assert perm["features"][0]["feature"] in {"s5", "bmi"}  # the two strong predictors of diabetes progression
    pdp = report["partial-dependence"]
    assert pdp["output"] == "predicted value" and 1 <= len(pdp["features"]) <= 4
    first = pdp["features"][0]
    grid, curve = np.array(first["grid"]), np.array(first["average"], dtype=float)
    assert isinstance(first["average"], list) and curve.shape == grid.shape and np.all(np.diff(grid) > 0)
    model, X_sub = report.artifacts["model"], report.artifacts["X_sub"].copy()
    X_sub[first["feature"]] = grid[-1]
    assert curve[-1] == pytest.approx(model.predict(X_sub).mean(), rel=1e-5)


def test_shap_explains_the_predicted_value_additively(diabetes) -> None:
    report, dataset = diabetes
    shap = report["shap"]
    assert "error" not in shap and "skipped" not in shap and shap["output"] == "predicted value"
    values, base = np.array(shap["values"]), np.array(shap["base_values"])
    assert values.shape == (shap["n_rows"], dataset.n_features) and base.shape == (shap["n_rows"],)
    model, X_sub = report.artifacts["model"], report.artifacts["X_sub"]
    direct = model.predict(X_sub.iloc[shap["rows"]])
    np.testing.assert_allclose(base + values.sum(axis=1), direct, atol=1e-3)
    assert shap["outputs"] == ["prediction"] and shap["global"][0]["per_class"] is None
    whys = [local["why"] for local in shap["local"]]
    assert whys[0] == "largest error" and len(whys) == 3
    y_sub = report.artifacts["y_sub"].to_numpy(dtype=float)
    errors = np.abs(y_sub - model.predict(X_sub))
    assert shap["local"][0]["row"] == int(np.argmax(errors))
    for local in shap["local"]:
        assert local["predicted"] == pytest.approx(local["output"], abs=1e-3)
        assert local["true"] == pytest.approx(y_sub[local["row"]])
    lime = report["lime"]
    assert lime["used"] and lime["output"] == "predicted value" and len(lime["local"]) == 3
    for item in lime["local"]:
        assert item["predicted"] == pytest.approx(model.predict(X_sub.iloc[[item["row"]]])[0])
        assert item["weights"] and np.isfinite(item["local_prediction"]) and item["r2"] <= 1


def test_surrogate_is_a_regression_tree_with_r2_fidelity(diabetes) -> None:
    report, _ = diabetes
    a = report.artifacts
    sur = report["surrogate"]
    tree, X, hold = a["surrogate"], a["surrogate_X"], a["surrogate_holdout"]
    assert isinstance(tree, DecisionTreeRegressor) and sur["fidelity_metric"] == "r2"
    model_pred = a["model"].predict(X)
    tree_pred = tree.predict(a["surrogate_encoder"](X))
    assert sur["fidelity_holdout"] == pytest.approx(r2_score(model_pred[hold], tree_pred[hold]))
    assert sur["fidelity_all"] == pytest.approx(r2_score(model_pred, tree_pred))
    assert -np.inf < sur["fidelity_holdout"] <= 1 and 0 < sur["fidelity_all"] <= 1
    assert sur["r2_vs_truth"] == pytest.approx(r2_score(a["y_true"], tree_pred))
    leaves = [n for n in sur["tree"] if n["leaf"]]
    assert len(sur["tree"]) == tree.tree_.node_count and len(leaves) == sur["n_leaves"]
    assert all("value" in n and "class" not in n for n in leaves) and "classes" not in sur
    assert any(name.startswith("sex=") for name in sur["features"]) and "|---" in sur["rules"]


def test_fairness_error_gaps_match_direct_group_computation(diabetes) -> None:
    report, dataset = diabetes
    a = report.artifacts
    fair = report["fairness"]
    assert fair["task"] == "regression"
    sex, age = fair["attributes"]
    frame = pd.DataFrame({"group": dataset.X["sex"], "r": a["y_true"] - a["y_pred"]})
    direct = frame.groupby("group")["r"].agg(mae=lambda r: r.abs().mean(), rmse=lambda r: np.sqrt((r ** 2).mean()),
                                             mean_residual="mean", count="size")
    groups = {g["group"]: g for g in sex["groups"]}
    assert set(groups) == {"F", "M"}
    for name, row in direct.iterrows():
        for key in ("mae", "rmse", "mean_residual", "count"):
            assert groups[name][key] == pytest.approx(row[key])
    for key in ("mae", "rmse", "mean_residual"):
        assert sex["gaps"][key] == pytest.approx(direct[key].max() - direct[key].min())
    overall_mae = np.abs(frame["r"]).mean()
    assert sex["relative_gaps"]["mae"] == pytest.approx(sex["gaps"]["mae"] / overall_mae)
    largest = sex["largest_gap"]
    assert largest["relative"] == pytest.approx(max(v for v in sex["relative_gaps"].values()))
    assert sex["warning"] == (largest["relative"] > fair["threshold"])
    assert sex["warning"] == any("'sex'" in w for w in report.warnings)
    assert age["binning"] == "numeric column cut into quartiles" and len(age["groups"]) == 4
    assert sum(g["count"] for g in age["groups"]) == 442


def test_json_round_trip_and_html(diabetes, tmp_path: Path) -> None:
    report, _ = diabetes
    data = json.loads(render_report(report, "json"))  # strict JSON: no NaN
    assert data == json.loads(json.dumps(report.data))
    page = render_report(data, "html")  # re-rendered from the JSON data alone
    for sid in REGRESSION_SECTIONS:
        assert f'<section id="{sid}">' in page
    assert "Could not render" not in page and "Not computed" not in page
    assert page.count("not applicable to regression") >= 2 and "regression, target target" in page
    assert 'alt="ROC curves"' not in page and 'alt="confusion matrix"' not in page
    assert 'alt="predicted vs actual and residuals"' in page and 'alt="surrogate regression tree"' in page
    assert set(SECTIONS) < set(REGRESSION_SECTIONS) and "residuals" not in SECTIONS
    path = report.save(tmp_path / "r.json")
    assert json.loads(path.read_text()) == data


def test_report_for_model_from_a_saved_bundle(tmp_path: Path) -> None:
    """The task comes from the model file: its metric (mae) makes a 9-level integer target a regression one."""
    frame = diabetes_frame()
    frame["target"] = (frame["target"] // 40).astype(int)  # 9 integer levels: detected as classification
    frame["site"] = np.where(frame["s6"] > frame["s6"].median(), "north", "south")  # not a feature
    assert from_frame(frame.drop(columns=["site"]), "target").task == "classification"
    dataset = from_frame(frame.drop(columns=["site"]), "target", "diabetes-levels", task="regression")
    model = regressor(dataset.numeric, dataset.categorical).fit(dataset.X, dataset.y)
    metadata = {"target": "target", "metric": "mae", **FeatureSchema.of(dataset).to_json()}
    path = ModelBundle(model, metadata).save(tmp_path / "model.joblib")
    bundle = ModelBundle.load(path)
    report = report_for_model(bundle.model, bundle.metadata, frame, sensitive="site", shap=False, lime=False,
                              sample_size=80, permutation_repeats=1, pdp_features=2)
    meta = report.data["meta"]
    assert meta["task"] == "regression" and meta["metric"] == "mae" and meta["dataset"]["n_classes"] is None
    assert report["permutation-importance"]["scoring"] == "neg_mean_absolute_error"
    assert report["metrics"]["n"] == 442 and -1 <= report["metrics"]["r2"] <= 1
    assert report["fairness"]["attributes"][0]["attribute"] == "site"
    assert report["shap"] == {"skipped": "disabled (shap=False)"} and "lime" not in report.sections
    assert "<section id=\"residuals\">" in report.to_html()
    # without task or metric in the metadata, the estimator's type decides
    plain = report_for_model(bundle.model, {k: v for k, v in metadata.items() if k != "metric"}, frame, shap=False,
                             lime=False, sample_size=60, permutation_repeats=1, pdp_features=1)
    assert plain.data["meta"]["task"] == "regression" and plain.data["meta"]["metric"] == "r2"


def test_task_mismatches_are_clear_errors() -> None:
    dataset = from_frame(diabetes_frame(), "target", "diabetes")
    classifier = Pipeline([("preprocess", regressor(dataset.numeric, dataset.categorical)[0]),
                           ("classifier", RandomForestClassifier(n_estimators=5))])
    with pytest.raises(MetalearnError, match="is a classifier but 'diabetes' is a regression dataset"):
        build_report(classifier, dataset)
    with pytest.raises(MetalearnError, match="not a regression metric"):
        build_report(regressor(dataset.numeric, dataset.categorical), dataset, metric="balanced_accuracy")


def test_configuration_of_the_regression_space() -> None:
    dataset = from_frame(diabetes_frame(), "target", "diabetes")
    try:
        config = default_configuration("random_forest", task="regression") | {"random_forest:n_estimators": 20}
    except TypeError:
        pytest.skip("the regression space is not available")
    report = build_report(config, dataset, shap=False, lime=False, sample_size=60, permutation_repeats=1,
                          pdp_features=1, folds=3)
    assert report.data["meta"]["model"]["algorithm"] == "random_forest"
    assert report.data["meta"]["model"]["configuration"]["regressor"] == "random_forest"
    assert 0 < report["metrics"]["r2"] <= 1 and report["surrogate"]["fidelity_metric"] == "r2"


@pytest.fixture(scope="module")
def diabetes_search(tmp_path_factory: pytest.TempPathFactory):
    """A small recorded regression search (metric RMSE) with its saved model and training table."""
    root = tmp_path_factory.mktemp("report-regression-search")
    frame = diabetes_frame()
    kb = KnowledgeBase(str(root / "kb.sqlite"))
    dataset = from_frame(frame, "target", "diabetes")
    settings = SearchSettings(strategy="cold", n_trials=3, folds=3, metric="rmse", ensemble_size=0)
    result = WarmStartSearch(kb, settings).run(dataset)
    save_search_model(result, dataset, root / "model.joblib", kb)
    frame.to_csv(root / "train.csv", index=False)
    yield {"root": root, "kb": kb, "result": result, "dataset": dataset, "frame": frame}
    kb.dispose()


def test_reports_of_a_regression_search(diabetes_search) -> None:
    kb, result, dataset = diabetes_search["kb"], diabetes_search["result"], diabetes_search["dataset"]
    fast = {"shap": False, "lime": False, "sample_size": 60, "permutation_repeats": 1, "pdp_features": 1}
    report = report_for_result(result, dataset, sensitive="sex", **fast)
    meta, search = report.data["meta"], report["search"]
    assert meta["task"] == "regression" and meta["metric"] == "rmse"
    assert report["permutation-importance"]["scoring"] == "neg_root_mean_squared_error"
    assert search["source"] == "search result" and search["n_trials"] == 3 and search["metric"] == "rmse"
    assert search["best"]["trial"] == result.best.number and search["best"]["score"] < 0  # RMSE stored negated
    np.testing.assert_allclose(report.artifacts["y_pred"], cross_val_predict(
        clone(result.model), dataset.X, dataset.y, cv=KFold(5, shuffle=True, random_state=0)))
    stored = report_for_search(kb, result.search_id, diabetes_search["frame"], **fast)
    assert stored.data["meta"]["task"] == "regression" and stored.data["meta"]["search_id"] == result.search_id
    assert stored["search"]["source"] == "knowledge base" and not stored.warnings
    assert stored.data["meta"]["model"]["configuration"] == json.loads(json.dumps(result.best_config))
    assert stored["metrics"]["rmse"] == pytest.approx(report["metrics"]["rmse"], rel=0.05)


def test_cli_report_of_a_regression_model_file(diabetes_search) -> None:
    root, kb = diabetes_search["root"], diabetes_search["kb"]
    res = CliRunner().invoke(app, ["report", str(root / "model.joblib"), "--data", str(root / "train.csv"), "--json",
                                   "--sensitive", "sex", "--db", kb.url, "--sample-size", "40", "--shap-seconds", "1"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout[res.stdout.index("{"):])
    assert data["meta"]["task"] == "regression" and data["meta"]["metric"] == "rmse"
    assert data["sections"]["search"]["source"] == "knowledge base" and data["sections"]["metrics"]["n"] == 442
    assert data["sections"]["fairness"]["task"] == "regression"


@needs_chromium
def test_regression_page_renders_in_headless_chromium(diabetes, tmp_path: Path) -> None:
    report, _ = diabetes
    _, sections = rendered_sections(report, tmp_path, REGRESSION_SECTIONS)
    for sid, section in sections.items():
        if sid in ("confusion-matrix", "calibration"):
            assert "not applicable to regression" in section
        elif sid not in ("search", "metrics"):  # the metrics are a table; their figures are under residuals
            assert PLOT.search(section), sid
