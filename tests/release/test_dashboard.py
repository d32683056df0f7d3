"""The static dashboard in real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from deepcac2.release.build import build_release
from deepcac2.release.dashboard.write_dashboard import sample_patients
from tests.release.runfactory import make_run

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
N = 12


def test_sample_is_seeded_and_sized() -> None:
    ids = pd.Series([f"p{i:03d}" for i in range(50)])
    a, b = sample_patients(ids, 10, seed=1), sample_patients(ids, 10, seed=1)
    assert a == b and len(set(a)) == 10 and set(a) <= set(ids)
    assert sample_patients(ids, 10, seed=2) != a
    assert sample_patients(ids, 500, seed=1) == sorted(ids)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dash")
    rel = build_release(
        make_run(tmp / "run", n_patients=30), "1.0.0", tmp / "rel", dashboard_patients=N, dashboard_seed=7
    )
    return rel / "dashboard" / "index.html"


@pytest.mark.slow
def test_dashboard_in_chromium(dashboard: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    series = pd.read_parquet(dashboard.parents[1] / "tables" / "cac_series.parquet")
    expected_patients = sample_patients(series["PatientID"], N, seed=7)
    expected_rows = series[series["PatientID"].isin(expected_patients)]

    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
        page.goto(dashboard.as_uri())
        page.wait_for_selector("#rows tr")

        assert page.inner_text("#n-patients") == str(N)
        shown = page.eval_on_selector_all("#rows tr", "rows => rows.map(r => r.dataset.patient)")
        assert sorted(set(shown)) == expected_patients
        assert len(shown) == len(expected_rows)
        assert page.locator("#rows img.thumb").count() == len(expected_rows)  # every series has its overlay
        # the pictures are the release's qa/images (no second copy)
        sources = page.eval_on_selector_all("#rows img.thumb", "im => im.map(i => i.getAttribute('src'))")
        assert all(s.startswith("../qa/images/") and (dashboard.parent / s).is_file() for s in sources)
        links = page.eval_on_selector_all("#rows a.viewer", "as => as.map(a => a.href)")
        v3 = "https://viewer.imaging.datacommons.cancer.gov/v3/viewer/?StudyInstanceUIDs={}&initialSeriesInstanceUID={}"
        want = [v3.format(r.StudyInstanceUID, r.seg_series_uid) for r in expected_rows.itertuples()]
        want += [v3.format(r.StudyInstanceUID, r.sr_series_uid) for r in expected_rows.itertuples()]
        assert sorted(links) == sorted(want)  # IDC's v3 viewer on our SEG and on our SR, per series
        assert page.inner_text("#convention") == "deepcac"
        # each patient's rows in study-year order; QA flags shown
        years = page.eval_on_selector_all(
            "#rows tr", "rows => rows.map(r => [r.dataset.patient, r.children[1].textContent])"
        )
        for patient in expected_patients:
            mine = [y for p, y in years if p == patient]
            assert mine == sorted(mine), patient
        assert page.locator("#rows span.flag", has_text="cac_outside_heart").count() == int(
            expected_rows["qa_flags"].map(lambda f: "cac_outside_heart" in list(f)).sum()
        )

        # filter: DeepCAC "high" keeps exactly the sampled series scored > 300 (rounded)
        page.select_option("#filter-category", "high")
        n_high = int((expected_rows["agatston_deepcac"].round() > 300).sum())
        assert 0 < n_high < len(expected_rows)
        assert page.locator("#rows tr").count() == n_high
        assert page.inner_text("#row-count") == str(n_high)
        page.select_option("#filter-category", "")

        # sort by Agatston, descending on the second click
        page.click("th[data-key=agatston]")
        page.click("th[data-key=agatston]")
        top = page.inner_text("#rows tr:first-child td:nth-child(3)")
        assert float(top) == pytest.approx(expected_rows["agatston_deepcac"].max(), abs=0.05)

        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    assert errors == []
