"""The analytic truth on hand-made lesions, against numbers worked out by hand here."""

from __future__ import annotations

import pytest

from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.pipeline.synth.phantom import LesionTruth
from deepcac2.pipeline.synth.truth import bands, categories, expected_scores

SPACING = (0.5, 0.5, 2.5)  # pixel area 0.25 mm2, voxel 0.625 mm3
THICKNESS = 3.0


def box(lesion_id, hu, nx, ny, nz, vessel="LAD"):
    return LesionTruth.from_box(
        lesion_id, vessel, hu, (10, 10 + nz, 20, 20 + ny, 30 + 10 * lesion_id, 30 + 10 * lesion_id + nx)
    )


def test_one_box_under_each_named_convention():
    # 3 x 2 pixels on 2 slices at 250 HU: area 1.5 mm2 per slice, weight 2, 12 voxels
    got = expected_scores([box(1, 250, 3, 2, 2)], SPACING, THICKNESS, 120, 2.0, CONVENTIONS)
    # increment 2.5 -> factor 2.5/3: 2 slices x 1.5 mm2 x 2 x 2.5/3 = 5.0
    assert got["literature"].agatston == pytest.approx(5.0)
    assert got["lessmann3d"].agatston == pytest.approx(5.0)
    # canon uses SliceThickness 3.0 -> factor 1: 2 x 1.5 x 2 = 6.0
    assert got["canon"].agatston == pytest.approx(6.0)
    for name in ("literature", "canon", "lessmann3d"):
        assert got[name].volume_mm3 == pytest.approx(7.5)  # 12 x 0.625
        assert got[name].mass_mg == pytest.approx(2.0 * 7.5 * 250 / 1000)  # 3.75 mg
        assert got[name].lesion_count == 1
        assert got[name].exact and got[name].reason is None
    deepcac = CONVENTIONS["deepcac"]
    if getattr(deepcac, "round_decimals", None) == 3:
        # per pixel round(0.25 x 2.5/3, 3) = 0.208; per slice round(6 x 0.208 x 2, 3) = 2.496
        assert got["deepcac"].agatston == pytest.approx(2 * 2.496)


def test_small_lesions_fall_under_each_minimum():
    # one pixel on one slice: 0.25 mm2 (not > 1), 1 pixel (< 3, < 4), 0.625 mm3 (< 1.5)
    got = expected_scores([box(1, 500, 1, 1, 1)], SPACING, THICKNESS, 120, None, CONVENTIONS)
    for e in got.values():
        assert (e.agatston, e.volume_mm3, e.lesion_count, e.mass_mg) == (0.0, 0.0, 0, None)
    # 2 x 2 pixels = 1.0 mm2: not > 1 (literature), but 4 pixels >= 3 (canon) and >= 4 (deepcac)
    got = expected_scores([box(1, 500, 2, 2, 1)], SPACING, THICKNESS, 120, None, CONVENTIONS)
    assert got["literature"].lesion_count == 0
    assert got["canon"].lesion_count == 1 and got["canon"].agatston == pytest.approx(1.0 * 4 * 1.0)
    assert got["deepcac"].lesion_count == 1


def test_threshold_direction_and_unthresholded_masks():
    lesions = [box(1, 130, 4, 4, 1), box(2, 120, 4, 4, 1)]  # 4 mm2 each
    inclusive = CONVENTIONS["literature"]
    exclusive = inclusive.with_options(inclusive=False)
    got = expected_scores(lesions, SPACING, THICKNESS, 120, None, {"in": inclusive, "ex": exclusive})
    assert got["in"].lesion_count == 1 and got["in"].agatston == pytest.approx(4.0 * 1 * 2.5 / 3)
    assert got["ex"].lesion_count == 0
    if not getattr(CONVENTIONS["deepcac"], "mask_threshold", True):
        # the DeepCAC rule scores the mask as given: both count, weight 1
        got = expected_scores(lesions, SPACING, THICKNESS, 120, None, {"deepcac": CONVENTIONS["deepcac"]})
        assert got["deepcac"].lesion_count == 2


@pytest.mark.parametrize(
    ("hu", "weight"), [(130, 1), (199, 1), (200, 2), (299, 2), (300, 3), (399, 3), (400, 4), (1500, 4)]
)
def test_weight_bands(hu, weight):
    got = expected_scores([box(1, hu, 4, 4, 1)], SPACING, 3.0, 120, None, {"c": CONVENTIONS["canon"]})
    assert got["c"].agatston == pytest.approx(4.0 * weight)  # 16 px x 0.25 mm2 x w x 3/3


def test_kvp_adjusted_bands_follow_the_grani_table():
    assert bands(120, adjusted=True) == (130, 200, 300, 400)
    assert bands(140, adjusted=True) == (119, 183, 274, 364)  # nearest row: 135 kV
    assert bands(100, adjusted=True) == (145, 222, 334, 446)
    assert bands(140, adjusted=False) == (130, 200, 300, 400)
    conv = {"k": CONVENTIONS["canon"].with_options(kvp_adjusted=True)}
    # 125 HU: under 130, over 119 -> detected at 140 kV only; 190 HU: weight 2 at 140 kV (>= 183)
    lesions = [box(1, 125, 4, 4, 1), box(2, 190, 4, 4, 1)]
    assert expected_scores(lesions, SPACING, 3.0, 120, None, conv)["k"].agatston == pytest.approx(4.0 * 1)
    assert expected_scores(lesions, SPACING, 3.0, 140, None, conv)["k"].agatston == pytest.approx(4.0 * 1 + 4.0 * 2)


def test_resampling_conventions_are_null_with_a_reason_unless_spacing_matches():
    conv = {"r": CONVENTIONS["literature"].with_options(resample_z_mm=2.0)}
    e = expected_scores([box(1, 400, 4, 4, 2)], SPACING, 2.5, 120, None, conv)["r"]
    assert e.agatston is None and e.volume_mm3 is None and e.lesion_count is None and "resample" in e.reason
    e = expected_scores([box(1, 400, 4, 4, 2)], (0.5, 0.5, 2.0), 2.5, 120, None, conv)["r"]
    assert e.agatston == pytest.approx(2 * 4.0 * 4 * 2.0 / 3)


def test_per_vessel_split_and_nominal_flag():
    lesions = [box(1, 400, 4, 4, 1, "LAD"), box(2, 250, 4, 4, 1, "RCA"), box(3, 250, 4, 4, 1, "RCA")]
    e = expected_scores(lesions, SPACING, 3.0, 120, None, {"c": CONVENTIONS["canon"]}, exact=False)["c"]
    assert not e.exact
    assert e.per_vessel["LAD"].agatston == pytest.approx(16.0) and e.per_vessel["RCA"].lesion_count == 2
    assert e.per_vessel["RCA"].agatston == pytest.approx(16.0)


@pytest.mark.parametrize(
    ("score", "deepcac", "classic", "drs"),
    [
        (0, "very low", "0", "0"),
        (0.4, "very low", "0", "0"),  # bands are integers: the score is rounded first
        (5, "low", "1-10", "1-99"),
        (10.4, "low", "1-10", "1-99"),
        (50, "low", "11-100", "1-99"),
        (99.6, "low", "11-100", "100-299"),
        (100.4, "low", "11-100", "100-299"),
        (100.6, "moderate", "101-400", "100-299"),
        (300, "moderate", "101-400", ">=300"),
        (350, "high", "101-400", ">=300"),
        (401, "high", ">400", ">=300"),
    ],
)
def test_risk_categories(score, deepcac, classic, drs):
    assert categories(score) == {"deepcac": deepcac, "classic": classic, "cac_drs": drs}
