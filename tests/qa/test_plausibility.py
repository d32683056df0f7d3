"""QA plausibility warnings: each fires on an implausible result and stays quiet on a plausible one."""

from __future__ import annotations

import pytest

from deepcac2.qa.plausibility import (
    category_disagreement,
    check_plausibility,
    heart_volume,
    kernel_sharpness,
    sharp_kernel_excess,
)
from deepcac2.qa.result import Severity


def row(series: str, study: str, agatston: float, *, kernel: str = "B30f", heart_ml: float | None = 700.0) -> dict:
    from deepcac2.pipeline.risk_categories import category

    return {
        "SeriesInstanceUID": series, "StudyInstanceUID": study, "kernel": kernel, "heart_volume_ml": heart_ml,
        "agatston_deepcac": agatston, "risk_deepcac_deepcac": category("deepcac", agatston),
    }  # fmt: skip


def failed(results, check):
    return [r for r in results if r.check == check and not r.passed]


def test_categories_two_bands_apart_warn_and_one_band_does_not():
    rows = [row("1", "A", 0.0), row("2", "A", 150.0), row("3", "B", 0.0), row("4", "B", 50.0)]
    results = category_disagreement(rows, "deepcac")
    bad = failed(results, "study.category_disagreement")
    assert [r.subject for r in bad] == ["A"] and bad[0].severity is Severity.WARNING and bad[0].value == 2.0
    assert {r.subject for r in results} == {"A", "B"}  # study B checked, quiet


def test_single_reconstruction_is_not_compared():
    assert category_disagreement([row("1", "A", 0.0), row("2", "B", 900.0)], "deepcac") == []


@pytest.mark.parametrize(("ml", "ok"), [(360.0, False), (1700.0, False), (650.0, True), (1400.0, True)])
def test_heart_volume_outside_the_adult_range_warns(ml, ok):
    (result,) = heart_volume([row("1", "A", 0.0, heart_ml=ml)])
    assert result.passed is ok and result.severity is Severity.WARNING


@pytest.mark.parametrize(
    ("provider", "ml", "ok"),
    [
        ("classical", 360.0, False),  # the sac without its front half (issue 21, LUNG1-001)
        ("idc-totalsegmentator", 360.0, True),  # chambers and myocardium of a small heart: no fat
        ("idc-totalsegmentator", 200.0, False),
        ("platipy-task400", 1400.0, False),
        ("classical", 1400.0, True),
    ],
)
def test_heart_volume_range_follows_what_the_providers_heart_holds(provider, ml, ok):
    (result,) = heart_volume([dict(row("1", "A", 0.0, heart_ml=ml), anatomy_provider=provider)])
    assert result.passed is ok, result.message
    assert provider in result.message


def test_no_heart_is_left_to_the_heart_empty_flag():
    assert heart_volume([row("1", "A", 0.0, heart_ml=0.0), row("2", "A", 0.0, heart_ml=None)]) == []


def test_sharp_kernel_far_above_soft_warns():
    rows = [row("1", "A", 40.0, kernel="B30f"), row("2", "A", 400.0, kernel="B70f")]
    bad = failed(sharp_kernel_excess(rows, "deepcac"), "study.sharp_kernel_excess")
    assert [r.subject for r in bad] == ["A"] and "B70f" in bad[0].message


def test_sharp_kernel_close_to_soft_is_quiet():
    rows = [row("1", "A", 300.0, kernel="FC10"), row("2", "A", 380.0, kernel="FC51")]
    (result,) = sharp_kernel_excess(rows, "deepcac")
    assert result.passed
    assert (
        sharp_kernel_excess([row("1", "A", 0.0, kernel="B70f"), row("2", "B", 500.0, kernel="B70f")], "deepcac") == []
    )


def test_kernel_classes():
    assert [kernel_sharpness(k) for k in ("B30f", "B70f", "FC51", "FC10", "STANDARD", "LUNG", "B45f", None)] == [
        "soft", "sharp", "sharp", "soft", "soft", "sharp", None, None,
    ]  # fmt: skip


def test_plausible_cohort_raises_no_warning():
    rows = [row("1", "A", 120.0), row("2", "A", 180.0, kernel="B70f"), row("3", "B", 0.0, heart_ml=900.0)]
    assert not [r for r in check_plausibility(rows, "deepcac") if not r.passed]
