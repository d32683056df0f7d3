"""The dashboard and the QA report of a release, rendered in headless Chromium and checked:
the links a reviewer follows are there (overlay, dashboard row, IDC's v3 viewer on our SEG and SR),
and the scoring convention is named. The screenshots are kept under $DEEPCAC2_SCREENSHOTS when set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from deepcac2.release.build import build_release
from tests.release.runfactory import make_run

from .test_dashboard import ARGS, CHROMIUM

pytestmark = pytest.mark.slow
V3 = "https://viewer.imaging.datacommons.cancer.gov/v3/viewer/?StudyInstanceUIDs="


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("shots")
    return build_release(make_run(tmp / "run", n_patients=8), "1.0.0", tmp / "rel", dashboard_patients=5)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _shot(page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("DEEPCAC2_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def test_qa_report_links_each_item_and_names_the_convention(release: Path, browser, tmp_path: Path) -> None:
    series = pd.read_parquet(release / "tables" / "cac_series.parquet").set_index("SeriesInstanceUID")
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((release / "qa" / "report.html").as_uri())
    assert "scoring convention deepcac" in page.inner_text("p.convention")
    flagged = series[series["qa_flags"].map(lambda f: bool(set(f) - {"mass_unknown"}))]  # routine flags not listed
    rows = page.locator("tr:has(a.overlay)")
    assert rows.count() >= len(flagged) > 0
    for uid, row in flagged.iterrows():
        item = page.locator("tr", has_text=uid).first
        overlay = item.locator("a.overlay").get_attribute("href")
        assert overlay == f"images/{uid}.png" and (release / "qa" / overlay).is_file()
        assert item.locator("a.dashboard").get_attribute("href") == f"../dashboard/index.html#series-{uid}"
        viewers = item.locator("a.viewer").evaluate_all("as => as.map(a => a.href)")
        assert viewers == [
            f"{V3}{row.StudyInstanceUID}&initialSeriesInstanceUID={row.seg_series_uid}",
            f"{V3}{row.StudyInstanceUID}&initialSeriesInstanceUID={row.sr_series_uid}",
        ]
    assert _shot(page, tmp_path / "qa_report.png").stat().st_size > 10_000
    # a report link lands on the dashboard row of that series, or says it is not in the sample
    uid = flagged.index[0]
    page.goto((release / "dashboard" / "index.html").as_uri() + f"#series-{uid}")
    page.wait_for_selector("#rows tr")
    in_sample = page.locator(f"tr[id='series-{uid}']").count() == 1
    if in_sample:
        assert "linked" in page.get_attribute(f"tr[id='series-{uid}']", "class")
    else:
        assert uid in page.inner_text("#linked")
    assert errors == []


def test_dashboard_screenshot_shows_links_and_convention(release: Path, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto((release / "dashboard" / "index.html").as_uri())
    page.wait_for_selector("#rows tr")
    assert page.inner_text("#convention") == "deepcac"
    assert "scoring convention deepcac" in page.inner_text("header")
    n = page.locator("#rows tr").count()
    assert page.locator("#rows a.viewer", has_text="SEG").count() == n
    assert page.locator("#rows a.viewer", has_text="SR").count() == n
    assert all(h.startswith(V3) for h in page.locator("#rows a.viewer").evaluate_all("as => as.map(a => a.href)"))
    assert page.locator("#rows img.thumb").evaluate_all("im => im.every(i => i.naturalWidth > 0)")
    assert failed == []
    assert _shot(page, tmp_path / "dashboard.png").stat().st_size > 10_000
