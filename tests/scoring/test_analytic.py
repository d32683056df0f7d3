"""Exact scores of noise-free boxes, for every convention, worked out by hand from the box sizes.

Phantom (spacing 0.5 x 0.5 mm, slices 2.0 mm apart, SliceThickness 3.0 mm; pixel area 0.25 mm2,
voxel 0.5 mm3). Background is 0 HU and outside the mask.

A  slices 2-4, 4 x 5 pixels at 250 HU (weight 2), plus a mask-only column of 4 x 1 pixels
   at 100 HU beside it in each slice (in the mask, under the threshold).
B  slice 6, 2 x 2 pixels at 450 HU (weight 4): 4 pixels, area exactly 1 mm2, volume 2 mm3.
C  slice 6, 1 x 3 pixels at 150 HU (weight 1): 3 pixels, 0.75 mm2, volume 1.5 mm3.
D  slice 9, two 3 x 3 squares touching only at a corner, 350 HU (weight 3) and 450 HU (4).
F  slices 12-13, 2 x 3 pixels, 210 HU in slice 12 (weight 2) and 410 HU in slice 13 (4).
G  slices 16-17, 1 x 2 pixels at 300 HU (weight 3) in each: 2 pixels per slice, volume 2 mm3.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepcac2.pipeline.scoring.engine import score_series
from deepcac2.pipeline.stage_values import Geometry

PX = 0.25
VOX = 0.5
INC = 2.0 / 3.0  # slice increment / 3
THK = 3.0 / 3.0  # slice thickness / 3


def phantom() -> tuple[np.ndarray, np.ndarray, Geometry]:
    hu = np.zeros((20, 40, 40), dtype=np.int16)
    mask = np.zeros(hu.shape, dtype=bool)

    def box(z, y, x, value, in_mask=True):
        hu[z, y, x] = value
        mask[z, y, x] = in_mask

    box(slice(2, 5), slice(2, 6), slice(2, 7), 250)  # A
    box(slice(2, 5), slice(2, 6), slice(7, 8), 100)  # A's sub-threshold column
    box(6, slice(20, 22), slice(20, 22), 450)  # B
    box(6, slice(30, 31), slice(2, 5), 150)  # C
    box(9, slice(10, 13), slice(10, 13), 350)  # D1
    box(9, slice(13, 16), slice(13, 16), 450)  # D2, corner to corner with D1
    box(12, slice(30, 32), slice(30, 33), 210)  # F, slice 12
    box(13, slice(30, 32), slice(30, 33), 410)  # F, slice 13
    box(slice(16, 18), slice(5, 6), slice(30, 32), 300)  # G
    return hu, mask, Geometry(origin=(-10.0, 5.0, 100.0), spacing=(0.5, 0.5, 2.0))


def _score(convention: str):
    hu, mask, geo = phantom()
    return score_series(hu, geo, mask, convention=convention, slice_thickness=3.0, kvp=120.0)


def test_deepcac_matches_published_rounding_and_unthresholded_mask():
    # DeepCAC code: mask as given (A has 24 pixels per slice, its 100 HU column included),
    # 8-connected, more than 3 pixels, round(px area x increment/3, 3), each component rounded to 3.
    pp = round(PX * 2.0 / 3.0, 3)  # 0.167
    a = 3 * round(24 * pp * 2, 3)
    b = round(4 * pp * 4, 3)
    d = round(18 * pp * 4, 3)  # one 8-connected component, peak 450
    f = round(6 * pp * 2, 3) + round(6 * pp * 4, 3)
    s = _score("deepcac")
    assert s.agatston == pytest.approx(a + b + d + f, abs=1e-9)
    assert s.volume_mm3 == pytest.approx((72 + 4 + 18 + 12) * VOX)
    assert s.lesion_count == 4  # A, B, D, F (C and G too small)
    assert s.mass_mg is None


def test_literature():
    # 4-connected, area > 1 mm2 (B with exactly 1 mm2 is out), thresholded, increment/3.
    a = 3 * 20 * PX * 2 * INC
    d = 9 * PX * 3 * INC + 9 * PX * 4 * INC  # two components
    f = 6 * PX * 2 * INC + 6 * PX * 4 * INC
    s = _score("literature")
    assert s.agatston == pytest.approx(a + d + f, abs=1e-9)
    assert s.volume_mm3 == pytest.approx((60 + 18 + 12) * VOX)
    assert s.lesion_count == 4  # A, D1, D2 (corner contact is not 6-connected), F


def test_canon():
    # 8-connected, at least 3 pixels, thickness/3.
    a = 3 * 20 * PX * 2 * THK
    b = 4 * PX * 4 * THK
    c = 3 * PX * 1 * THK
    d = 18 * PX * 4 * THK
    f = 6 * PX * 2 * THK + 6 * PX * 4 * THK
    s = _score("canon")
    assert s.agatston == pytest.approx(a + b + c + d + f, abs=1e-9)
    assert s.volume_mm3 == pytest.approx((60 + 4 + 3 + 18 + 12) * VOX)
    assert s.lesion_count == 5


def test_lessmann3d():
    # 3-D 26-connected lesions of >= 1.5 mm3 (C with exactly 1.5 is in), each slice weighted by its own peak.
    a = 3 * 20 * PX * 2 * INC
    b = 4 * PX * 4 * INC
    c = 3 * PX * 1 * INC
    d = 18 * PX * 4 * INC
    f = 6 * PX * 2 * INC + 6 * PX * 4 * INC  # not 6 * 2 * PX * 4: per-slice peaks
    g = 2 * (2 * PX * 3 * INC)
    s = _score("lessmann3d")
    assert s.agatston == pytest.approx(a + b + c + d + f + g, abs=1e-9)
    assert s.volume_mm3 == pytest.approx((60 + 4 + 3 + 18 + 12 + 4) * VOX)
    assert s.lesion_count == 6


def test_lesion_table_of_box_a():
    s = _score("literature")
    (a,) = [les for les in s.lesions if les.first_slice == 2]
    assert (a.first_slice, a.last_slice) == (2, 4)
    assert a.area_mm2 == pytest.approx(60 * PX)  # summed over its slices
    assert a.volume_mm3 == pytest.approx(60 * VOX)
    assert a.peak_hu == 250 and a.mean_hu == 250
    assert a.agatston == pytest.approx(3 * 20 * PX * 2 * INC)
    # centre of rows 2..5, columns 2..6, slices 2..4 -> index (4, 3.5, 3)
    assert a.centroid_lps == pytest.approx((-10.0 + 4 * 0.5, 5.0 + 3.5 * 0.5, 100.0 + 3 * 2.0))
    assert math.fsum(les.agatston for les in s.lesions) == pytest.approx(s.agatston)


def test_mass_uses_the_factor_and_is_none_without():
    hu, mask, geo = phantom()
    s = score_series(hu, geo, mask, convention="canon", slice_thickness=3.0, mass_factor=0.75)
    hu_volume = (60 * 250 + 4 * 450 + 3 * 150 + 9 * 350 + 9 * 450 + 6 * 210 + 6 * 410) * VOX  # HU x mm3
    assert s.mass_mg == pytest.approx(0.75 * hu_volume / 1000.0)


def test_per_vessel_totals_and_majority_label():
    hu, mask, geo = phantom()
    vessels = np.zeros(hu.shape, dtype=np.uint8)
    vessels[2:5, 2:6, 2:5] = 2  # 3 of A's 5 columns LAD
    vessels[2:5, 2:6, 5:7] = 4  # 2 columns RCA -> A is LAD by majority
    vessels[9, 10:16, 10:16] = 3  # D -> LCX
    s = score_series(hu, geo, mask, convention="literature", vessels=vessels)
    assert set(s.per_vessel) == {"LM", "LAD", "LCX", "RCA"}
    assert s.per_vessel["LAD"].agatston == pytest.approx(3 * 20 * PX * 2 * INC)
    assert s.per_vessel["LAD"].lesion_count == 1
    assert s.per_vessel["LCX"].agatston == pytest.approx(9 * PX * 3 * INC + 9 * PX * 4 * INC)
    assert s.per_vessel["LCX"].lesion_count == 2
    assert s.per_vessel["RCA"].lesion_count == 0 and s.per_vessel["LM"].agatston == 0
    assert [les.vessel for les in s.lesions if les.first_slice == 12] == [None]  # F has no label


@pytest.mark.parametrize("name", ["deepcac", "literature", "canon", "lessmann3d"])
def test_result_records_convention(name):
    s = _score(name)
    assert s.convention == name
    assert s.convention_params["dims"] in (2, 3)
    assert set(s.categories) == {"deepcac", "classic", "cac_drs"}


def test_empty_mask_scores_zero():
    hu, mask, geo = phantom()
    s = score_series(hu, geo, np.zeros_like(mask), convention="canon", slice_thickness=3.0, mass_factor=1.0)
    assert (s.agatston, s.volume_mm3, s.mass_mg, s.lesion_count) == (0, 0, 0, 0)
    assert s.categories["deepcac"] == "very low"
