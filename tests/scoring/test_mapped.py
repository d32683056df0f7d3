"""The 'mapped' variant (deepcac_mapped): per-slice components of HU >= 130 that touch the prediction."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from deepcac2.pipeline.conventions import CONVENTIONS, Convention
from deepcac2.pipeline.scoring.engine import score_series
from deepcac2.pipeline.scoring.mapping import mapped
from deepcac2.pipeline.stage_values import Geometry

GEOM = Geometry((0.0, 0.0, 0.0), (0.5, 0.5, 2.5))


def reference_mapping(img_xyz: np.ndarray, cac_xyz: np.ndarray) -> np.ndarray:
    """The published rule, slice by slice and component by component, on (x, y, z) arrays."""
    out = np.zeros(cac_xyz.shape)
    for z in range(cac_xyz.shape[2]):
        objects, n = ndimage.label(img_xyz[:, :, z] >= 130, structure=np.ones((3, 3)))
        for k in range(1, n + 1):
            component = (objects == k).astype(int)
            if component[cac_xyz[:, :, z] > 0].sum() > 0:
                out[:, :, z] += component
    assert out.max() <= 1
    return out


def test_whole_components_that_touch_the_prediction_in_their_slice():
    hu = np.zeros((2, 12, 12), dtype=np.int16)
    hu[0, 2:5, 2:6] = 300  # blob A
    hu[0, 5, 6] = 140  # diagonal neighbour of A: 8-connected, so part of A
    hu[0, 8:10, 8:10] = 500  # blob B, untouched
    hu[0, 2, 8] = 129  # under the threshold
    hu[1, 2:5, 2:6] = 300  # A again in the next slice, not predicted there
    pred = np.zeros(hu.shape, dtype=bool)
    pred[0, 3, 3] = True
    pred[0, 2, 7:9] = True  # touches only the 129 HU pixel and background
    out = mapped(hu, pred, 130, True, 8)
    expected = np.zeros(hu.shape, dtype=bool)
    expected[0, 2:5, 2:6] = True
    expected[0, 5, 6] = True
    np.testing.assert_array_equal(out, expected)
    # 4-connectivity leaves the diagonal pixel out
    assert not mapped(hu, pred, 130, True, 4)[0, 5, 6]


@pytest.mark.parametrize("seed", range(5))
def test_mapping_equals_the_published_loop_on_random_volumes(seed):
    rng = np.random.default_rng(seed)
    hu = rng.normal(60, 90, size=(6, 40, 48)).astype(np.int16)
    pred = rng.random(hu.shape) < 0.01
    ours = mapped(hu, pred, 130, True, 8)
    theirs = reference_mapping(hu.transpose(2, 1, 0), pred.transpose(2, 1, 0)).transpose(2, 1, 0) > 0
    np.testing.assert_array_equal(ours, theirs)
    assert ours.sum() > pred.sum()


def test_deepcac_mapped_scores_the_mapped_mask_as_deepcac_does():
    rng = np.random.default_rng(7)
    hu = rng.normal(40, 120, size=(5, 30, 30)).astype(np.int16)
    pred = np.zeros(hu.shape, dtype=bool)
    pred[1:4, 10:14, 10:14] = True
    a = score_series(hu, GEOM, pred, convention="deepcac_mapped")
    b = score_series(hu, GEOM, mapped(hu, pred, 130, True, 8), convention="deepcac")
    assert a.agatston == b.agatston > 0 and a.volume_mm3 == b.volume_mm3 and a.lesion_count == b.lesion_count
    assert a.convention == "deepcac_mapped" and a.convention_params["mapped_mask"] is True
    plain = score_series(hu, GEOM, pred, convention="deepcac")
    assert plain.agatston != a.agatston


def test_mapped_convention_is_named_and_needs_2d():
    c = CONVENTIONS["deepcac_mapped"]
    assert c.params() == {**CONVENTIONS["deepcac"].params(), "name": "deepcac_mapped", "mapped_mask": True}
    with pytest.raises(ValueError):
        Convention(name="x", description="", dims=3, connectivity=26, mapped_mask=True)
