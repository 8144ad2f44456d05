"""The web studio in a real browser: Debian's Chromium driven by Playwright against a real ``metalearn serve``.

One walk through the whole loop, as a person would do it (sign in, knowledge base and its map, a bad upload, the
bundled example uploaded, its neighbours on the map, a small search watched live, the report, the model, a
prediction file), with axe-core (vendored, injected by the test only) checking accessibility on every page.
Screenshots of each step land in a temporary folder, or in ``docs/studio/`` (the README's pictures) when
``METALEARN_STUDIO_SCREENSHOTS=docs/studio`` is set, so a test run does not rewrite tracked files.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pandas as pd
import pytest
from servers import running_server

import metalearn

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra has it)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (.ci/run installs Debian's chromium)")

REPO = Path(__file__).resolve().parents[2]
SHOTS = (REPO / os.environ["METALEARN_STUDIO_SCREENSHOTS"] if os.environ.get("METALEARN_STUDIO_SCREENSHOTS")
         else Path(tempfile.mkdtemp(prefix="studio-shots-")))
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
EXAMPLE = Path(metalearn.__file__).resolve().parent / "examples" / "breast_cancer.csv"
ADMIN_KEY = "studio-admin-key"
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("studio")
    env = {"METALEARN_DB": str(root / "kb.sqlite"), "METALEARN_DATA_DIR": str(root / "data"),
           "METALEARN_API_ADMIN_KEYS": f"analyst:{ADMIN_KEY}",  # the session's cache: the seed is copied
           "METALEARN_API_KEYS": "", "METALEARN_API_SEARCH_WORKERS": "1", "METALEARN_API_TRIAL_TIME_LIMIT": "30",
           "METALEARN_API_WORKER_NICE": "0", "METALEARN_API_REPORT_SHAP": "0",  # the report: in seconds, not ten
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with running_server(root, env) as running:
        running.root = root
        yield running


@pytest.fixture(scope="module")
def page(server: SimpleNamespace) -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        yield page
        browser.close()


def shot(page: sync_api.Page, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def no_serious_violations(page: sync_api.Page, where: str) -> None:
    """axe-core on the current page: no violation of impact serious or critical."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, f"accessibility violations on {where}: {serious}"


def map_datasets(page: sync_api.Page, canvas: str) -> list[dict]:
    return page.evaluate("(sel) => Chart.getChart(document.querySelector(sel)).data.datasets"
                         ".map(d => ({label: d.label, n: d.data.length, neighbor: !!d.neighbor}))", canvas)


def test_studio_whole_loop(server: SimpleNamespace, page: sync_api.Page, tmp_path: Path) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)
    # 1. sign in: a wrong key is refused next to the form, the right one opens the knowledge base
    page.goto(f"{server.url}/")
    key = page.get_by_label("API key")
    key.fill("not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid API key")
    assert "key" not in page.url
    no_serious_violations(page, "sign-in")
    page.get_by_label("API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()

    # 2. knowledge base: counts, the map (every dataset a point), the searchable table
    expect(page.get_by_role("heading", name="Knowledge base", level=1)).to_be_visible()
    expect(page.get_by_text("datasets (classification)")).to_be_visible()
    stats = httpx.get(f"{server.url}/v1/knowledge-base/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    points = sum(d["n"] for d in map_datasets(page, "canvas"))  # the map shows one task: classification
    assert points == stats["by_task"]["classification"]["datasets"] > 50
    page.get_by_label("Search datasets").fill("wdbc")
    expect(page.get_by_role("link", name="wdbc", exact=True)).to_be_visible()
    expect(page.get_by_text(f"1 of {stats['datasets']} datasets")).to_be_visible()
    page.get_by_label("Search datasets").fill("")
    shot(page, "01-knowledge-base")
    no_serious_violations(page, "knowledge base")

    # 3. a bad upload (one class only) shows the API's message next to the upload, and registers nothing
    bad = tmp_path / "one_class.csv"
    bad.write_text("a,b,label\n" + "".join(f"{i},{i % 3},yes\n" for i in range(30)))
    page.get_by_role("link", name="Upload a dataset").first.click()
    page.get_by_label("Table file").set_input_files(str(bad))
    expect(page.get_by_label("Target column")).to_have_value("label")
    page.get_by_role("button", name="Upload and analyse").click()
    alert = page.locator("#upload-message [role=alert]")
    expect(alert).to_contain_text("one_class.csv was refused")
    expect(alert).to_contain_text("class")
    shot(page, "02-bad-upload")
    after = httpx.get(f"{server.url}/v1/knowledge-base/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert after["datasets"] == stats["datasets"]

    # 4. the bundled example: columns read in the browser, the target suggested, then uploaded
    page.get_by_label("Table file").set_input_files(str(EXAMPLE))
    expect(page.get_by_label("Target column")).to_have_value("diagnosis")
    expect(page.get_by_text("Suggested: diagnosis")).to_be_visible()
    shot(page, "03-upload")
    no_serious_violations(page, "upload")
    page.get_by_role("button", name="Upload and analyse").click()

    # 5. its page: checks, recommendations with evidence, and the dataset on the map with lines to its neighbours
    expect(page.get_by_role("heading", name="Recommended pipelines")).to_be_visible()
    dataset_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("heading", name="breast_cancer", level=1)).to_be_visible()
    neighbours = page.locator("table:has(caption:text('Nearest datasets')) tbody tr")
    expect(neighbours).to_have_count(5)
    expect(page.get_by_text("This dataset on the map")).to_be_visible()
    page.wait_for_function("Chart.getChart(document.querySelector('#main canvas'))?.data.datasets"
                           ".some(d => d.neighbor)")
    drawn = map_datasets(page, "#main canvas")
    assert sum(d["neighbor"] for d in drawn) == 5
    assert any(d["label"] == "breast_cancer (this dataset)" for d in drawn)
    page.get_by_role("heading", name="Recommended pipelines").scroll_into_view_if_needed()
    shot(page, "04-recommendations")
    page.locator("#main .chart-box").scroll_into_view_if_needed()
    shot(page, "05-map-neighbours")
    no_serious_violations(page, "dataset")

    # 6. a small search, watched live: at least two trials arrive in the table and the chart
    page.get_by_label("Strategy").select_option("random")
    page.get_by_label("Trials").fill("4")
    page.get_by_text("More settings").click()
    page.get_by_label("Ensemble size").fill("0")  # a single pipeline: its report is the quickest to build
    page.get_by_label("Cross-validation folds").fill("3")
    page.get_by_role("button", name="Start the search").click()
    expect(page.get_by_role("heading", name="Search", level=1)).to_be_visible()
    search_id = int(page.url.rsplit("/", 1)[1])
    trial_rows = page.locator("table:has(caption:text('Trials, newest first')) tbody tr")
    page.wait_for_function("Chart.getChart(document.querySelector('#main canvas'))?.data.datasets[1].data.length >= 2")
    assert trial_rows.count() >= 2
    shot(page, "06-search-live")
    expect(page.locator("#main .badge.succeeded")).to_be_visible()
    expect(trial_rows).to_have_count(4)
    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
    shot(page, "07-results")
    no_serious_violations(page, "search results")

    # 7. download the model: a signed model file
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the model").click()
    model = tmp_path / "model.joblib"
    download.value.save_as(model)
    assert download.value.suggested_filename == f"metalearn-search-{search_id}.joblib"
    assert model.read_bytes()[:200].startswith(b"{") and b"metalearn-model" in model.read_bytes()[:200]

    # 8. predict on a file (no target column) and download the predictions CSV
    rows = pd.read_csv(EXAMPLE).drop(columns=["diagnosis"]).head(40)
    to_predict = tmp_path / "new_patients.csv"
    rows.to_csv(to_predict, index=False)
    page.get_by_label("Table to predict").set_input_files(str(to_predict))
    with page.expect_download() as download:
        page.get_by_role("button", name="Predict and download CSV").click()
    assert download.value.suggested_filename == "new_patients-predictions.csv"
    text = Path(download.value.path()).read_text()
    predicted = list(csv.DictReader(io.StringIO(text)))
    assert len(predicted) == 40
    assert {r["prediction"] for r in predicted} <= set(pd.read_csv(EXAMPLE)["diagnosis"].astype(str))
    assert any(name.startswith("probability_") for name in predicted[0])
    expect(page.get_by_text("Predicted 40 rows")).to_be_visible()
    shot(page, "08-predictions")

    # 9. the model report, embedded
    page.get_by_role("button", name="Open the model report").click()
    frame = page.frame_locator("iframe.report")
    expect(frame.locator("body")).to_contain_text("onfusion", timeout=TIMEOUT_MS)
    page.locator("iframe.report").scroll_into_view_if_needed()
    shot(page, "09-report")

    # 10. every page is a URL: reloading the search shows it again; a phone-sized screen does not scroll sideways
    page.reload()
    expect(page.get_by_role("heading", name=f"Search {search_id}")).to_be_visible()
    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/#/datasets/{dataset_id}")
    expect(page.get_by_role("heading", name="Recommended pipelines")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    shot(page, "10-phone")
    assert not page.errors, page.errors
