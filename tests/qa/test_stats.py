"""Distributions, outliers and drift: each computed here a second way, and each able to flag."""

from __future__ import annotations

import numpy as np

from deepcac2.pipeline.risk_categories import category
from deepcac2.qa.result import Severity
from deepcac2.qa.stats import DRIFT_SHARE, distributions, drift, outliers


def _rows(scores: list[float], **extra) -> list[dict]:
    rows = []
    for i, s in enumerate(scores):
        row = {
            "SeriesInstanceUID": f"1.2.{i}",
            "agatston_deepcac": s,
            "study_year": i % 3,
            "scanner_manufacturer": "GE",
        }
        row |= {f"risk_{scheme}_deepcac": category(scheme, s) for scheme in ("deepcac", "classic", "cac_drs")}
        rows.append(row | extra)
    return rows


def test_distributions_report_zero_fraction_and_group_medians() -> None:
    scores = [0, 0, 10, 50, 100, 400, 0, 30, 900]
    got = {(r.check, r.subject): r for r in distributions(_rows(scores), "deepcac")}
    assert got[("stats.zero_fraction", "all")].value == 3 / 9
    for year in range(3):
        expected = float(np.median([s for i, s in enumerate(scores) if i % 3 == year]))
        assert got[("stats.by_study_year", str(year))].value == expected
    assert all(r.severity is Severity.INFO for r in got.values())


def test_outlier_is_flagged_and_ordinary_scores_are_not() -> None:
    rng = np.random.default_rng(0)
    scores = list(rng.uniform(0, 200, 50)) + [25000.0]
    flagged = outliers(_rows(scores), "deepcac")
    assert [r.subject for r in flagged] == ["1.2.50"]
    assert flagged[0].severity is Severity.WARNING and not flagged[0].passed
    assert outliers(_rows(scores[:50]), "deepcac") == []


def test_drift_flags_a_shifted_release_and_passes_an_identical_one() -> None:
    rng = np.random.default_rng(1)
    before = list(rng.gamma(0.5, 150, 300))
    same = drift(_rows(before), _rows(before), "deepcac")
    assert same and all(r.passed for r in same)
    after = [s * 3 + 50 for s in before]  # every score moves up: more "high", fewer "very low"
    moved = {r.check + "/" + r.subject: r for r in drift(_rows(after), _rows(before), "deepcac")}
    assert not moved["stats.drift.scores/deepcac"].passed
    share_high_before = np.mean([category("deepcac", s) == "high" for s in before])
    share_high_after = np.mean([category("deepcac", s) == "high" for s in after])
    assert share_high_after - share_high_before > DRIFT_SHARE  # the test's own premise
    assert not moved["stats.drift.categories/deepcac"].passed
