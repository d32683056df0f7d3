"""Threshold edges (129/130/199/200 HU), threshold direction, the Gräni kVp table and z resampling."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.conventions import CONVENTIONS, get_convention, kvp_bands
from deepcac2.pipeline.scoring.engine import score_series
from deepcac2.pipeline.stage_values import Geometry

GEO = Geometry(origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 3.0))  # 1 mm2 pixels, factor 1
#: a thresholded 2-D convention without size rules, so a 3x3 square always counts
PLAIN = dataclasses.replace(CONVENTIONS["canon"], name="plain", min_pixels=None, slice_factor="increment")


def square(value: float, dtype=np.int16) -> tuple[np.ndarray, np.ndarray]:
    hu = np.zeros((3, 7, 7), dtype=dtype)
    hu[1, 2:5, 2:5] = value
    return hu, np.ones(hu.shape, dtype=bool)


def expected_classic(value: float, inclusive: bool = True) -> float:
    """9 mm2 x the weight the classic table gives, written out band by band."""
    detected = value >= 130 if inclusive else value > 130
    if not detected:
        return 0.0
    if value < 200:
        return 9.0
    if value < 300:
        return 18.0
    if value < 400:
        return 27.0
    return 36.0


@pytest.mark.parametrize("value", [129, 130, 131, 199, 200, 299, 300, 399, 400])
def test_classic_edges_inclusive(value):
    hu, mask = square(value)
    assert score_series(hu, GEO, mask, convention=PLAIN).agatston == expected_classic(value)


@pytest.mark.parametrize("value", [129, 130, 131, 199, 200])
def test_classic_edges_exclusive(value):
    conv = dataclasses.replace(PLAIN, inclusive=False)
    hu, mask = square(value)
    assert score_series(hu, GEO, mask, convention=conv).agatston == expected_classic(value, inclusive=False)


@settings(max_examples=60, deadline=None)
@given(value=st.floats(min_value=-1000, max_value=3000, allow_nan=False))
def test_any_value_gets_the_classic_weight(value):
    hu, mask = square(value, dtype=np.float32)
    v = float(np.float32(value))
    assert score_series(hu, GEO, mask, convention=PLAIN).agatston == expected_classic(v)


@pytest.mark.parametrize(
    ("kvp", "row"),
    [
        (70, (207, 318, 477, 636)),
        (74.9, (207, 318, 477, 636)),
        (75, (207, 318, 477, 636)),  # halfway: the lower kVp row
        (75.1, (177, 271, 408, 544)),
        (90, (177, 271, 408, 544)),
        (90.1, (145, 222, 334, 446)),
        (110, (145, 222, 334, 446)),
        (110.1, (130, 200, 300, 400)),
        (127.5, (130, 200, 300, 400)),
        (127.6, (119, 183, 274, 364)),
        (140, (119, 183, 274, 364)),  # NLST 140 kVp takes the 135 kV row
    ],
)
def test_kvp_table_rows_and_edges(kvp, row):
    assert kvp_bands(kvp, adjusted=True) == row
    assert kvp_bands(kvp, adjusted=False) == (130, 200, 300, 400)


@pytest.mark.parametrize(("value", "weight"), [(176, 0), (177, 1), (270, 1), (271, 2), (407, 2), (408, 3), (544, 4)])
def test_kvp_adjusted_scoring_at_80_kv(value, weight):
    conv = dataclasses.replace(PLAIN, kvp_adjusted=True)
    hu, mask = square(value)
    s = score_series(hu, GEO, mask, convention=conv, kvp=80)
    assert s.agatston == 9.0 * weight
    assert s.convention_params["applied"]["thresholds_hu"] == [177, 271, 408, 544]


def test_kvp_missing_falls_back_to_classic_and_says_so():
    conv = dataclasses.replace(PLAIN, kvp_adjusted=True)
    hu, mask = square(140)
    s = score_series(hu, GEO, mask, convention=conv, kvp=None)
    assert s.agatston == 9.0 and s.convention_params["applied"]["kvp"] is None


def test_resampling_to_3mm_of_a_1mm_series():
    # 9 slices 1 mm apart -> new slices at 0, 3, 6 mm = old slices 0, 3, 6 exactly.
    # A column of calcium through old slices 2..6 (5 mm) at 250 HU, 2 x 2 pixels of 1 mm2.
    hu = np.zeros((9, 6, 6), dtype=np.int16)
    hu[2:7, 1:3, 1:3] = 250
    mask = hu > 0
    geo = Geometry(origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 1.0))
    conv = dataclasses.replace(PLAIN, resample_z_mm=3.0)
    s = score_series(hu, geo, mask, convention=conv)
    # new slice at 3 mm and at 6 mm hit calcium: 2 slices x 4 mm2 x weight 2 x (3/3)
    assert s.agatston == pytest.approx(2 * 4 * 2 * 1.0)
    assert s.volume_mm3 == pytest.approx(2 * 4 * 3.0)
    # without resampling: 5 slices x 4 mm2 x 2 x (1/3)
    assert score_series(hu, geo, mask, convention=PLAIN).agatston == pytest.approx(5 * 4 * 2 / 3)


def test_resampling_interpolates_hu_linearly():
    # slices at 0, 1, 2 mm; resampled at 0 and 1.5 mm: slice 1.5 is halfway between 100 and 300 -> 200 HU.
    hu = np.zeros((3, 4, 4), dtype=np.int16)
    hu[1, 1:3, 1:3] = 100
    hu[2, 1:3, 1:3] = 300
    mask = np.ones(hu.shape, dtype=bool)
    geo = Geometry(origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 1.0))
    s = score_series(hu, geo, mask, convention=dataclasses.replace(PLAIN, resample_z_mm=1.5))
    (les,) = s.lesions
    assert les.peak_hu == pytest.approx(200.0)
    assert s.agatston == pytest.approx(4 * 2 * 1.5 / 3)


def test_thickness_convention_needs_thickness():
    hu, mask = square(300)
    with pytest.raises(DeepCACError) as e:
        score_series(hu, GEO, mask, convention="canon", slice_thickness=None)
    assert e.value.code is ErrorCode.E_SCORING


def test_bad_inputs_have_codes():
    hu, mask = square(300)
    with pytest.raises(DeepCACError) as e:
        score_series(hu, GEO, mask[:, :, :3])
    assert e.value.code is ErrorCode.E_MASK_GEOMETRY
    with pytest.raises(DeepCACError) as e:
        score_series(hu, GEO, mask, mass_factor=-1.0)
    assert e.value.code is ErrorCode.E_SCORING
    with pytest.raises(DeepCACError) as e:
        score_series(hu, GEO, mask, vessels=np.full(hu.shape, 9, dtype=np.uint8))
    assert e.value.code is ErrorCode.E_SCORING
    with pytest.raises(DeepCACError) as e:
        score_series(hu, GEO, mask, kvp=float("nan"))
    assert e.value.code is ErrorCode.E_SCORING
    with pytest.raises(DeepCACError) as e:
        get_convention("nope")
    assert e.value.code is ErrorCode.E_CONVENTION_UNKNOWN
    nan = hu.astype(np.float32)
    nan[1, 3, 3] = np.nan
    for name in ("deepcac", "literature"):  # also where a threshold would silently drop the NaN
        with pytest.raises(DeepCACError) as e:
            score_series(nan, GEO, mask, convention=name)
        assert e.value.code is ErrorCode.E_SCORING
