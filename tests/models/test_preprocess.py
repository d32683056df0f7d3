"""Preprocessing follows the TorchIO chain; the way back to the CT grid is exact nearest neighbour."""

from __future__ import annotations

import numpy as np
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.models.unet import preprocess as pp
from deepcac2.pipeline.types import Geometry


def test_resampled_grid_keeps_centre_and_floors_extent():
    g = Geometry((-228.0, -93.0, -439.0), (0.841796875, 0.841796875, 5.0))
    grid, shape = pp.resampled_grid(g, (64, 512, 512), (0.7, 0.7, 2.5))
    # floor(512 * 0.8418 / 0.7) = floor(615.7) = 615; floor(64 * 5 / 2.5) = 128
    assert shape == (128, 615, 615)
    centre_old = np.array(g.origin) + (np.array([511, 511, 63]) / 2) * np.array(g.spacing)
    centre_new = np.array(grid.origin) + (np.array([614, 614, 127]) / 2) * np.array([0.7, 0.7, 2.5])
    np.testing.assert_allclose(centre_new, centre_old, atol=1e-9)


@pytest.mark.parametrize(
    ("lo", "hi", "target", "expected"),
    [
        (10, 19, 58, -14),  # bbox [10, 20): centre 15, even target -> start 15 - 29
        (10, 20, 58, -14),  # centre 15.5 not on an index, even target -> centre moves to 15
        (100, 199, 256, 22),  # centre 150 -> 150 - 128
        (100, 200, 256, 22),  # centre 150.5 -> 150 -> 22
        (10, 19, 5, 12),  # odd target, centre 15 on an index -> moves to 14.5 -> 14.5 - 2.5
    ],
)
def test_crop_start_follows_torchio_rule(lo, hi, target, expected):
    mask = np.zeros((300, 3, 3), dtype=bool)
    mask[lo : hi + 1, 1, 1] = True
    start = pp.crop_or_pad_start(mask, (target, 3, 3))
    assert start[0] == expected


def test_crop_or_pad_cuts_and_pads_with_zero():
    a = np.arange(1, 1 + 4 * 5 * 6).reshape(4, 5, 6)
    out = pp.crop_or_pad(a, (-2, 1, 3), (6, 3, 4))
    assert out.shape == (6, 3, 4)
    assert (out[:2] == 0).all()
    np.testing.assert_array_equal(out[2:6, :, :3], a[0:4, 1:4, 3:6])
    assert (out[2:, :, 3] == 0).all()


def test_empty_heart_is_no_heart_error():
    with pytest.raises(DeepCACError) as err:
        pp.crop_or_pad_start(np.zeros((5, 5, 5), dtype=bool), (4, 4, 4))
    assert err.value.code is ErrorCode.E_NO_HEART


def test_normalise_matches_the_chain():
    rng = np.random.default_rng(0)
    hu = rng.integers(-1000, 1500, size=(6, 7, 8)).astype(np.int16)
    out = pp.normalise(hu)
    clamped = np.clip(hu.astype(float), -135, 500)
    z = (clamped - clamped.mean()) / clamped.std()
    expected = (z - z.min()) / (z.max() - z.min())
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.min() == 0 and out.max() == 1


def _nearest_expected(code, code_geom, geom, shape):
    """Independent nearest-neighbour lookup through the affines; -1 marks near-ties to skip."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    ijk = np.stack([i, j, k], axis=-1).reshape(-1, 3)
    cont = code_geom.lps_to_index(geom.index_to_lps(ijk))
    frac = np.abs(cont - np.floor(cont) - 0.5)
    near_tie = (frac < 1e-6).any(axis=1)
    idx = np.floor(cont + 0.5).astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(code.shape[::-1])), axis=1)
    out = np.zeros(len(ijk), dtype=code.dtype)
    ok = inside
    out[ok] = code[idx[ok, 2], idx[ok, 1], idx[ok, 0]]
    out[near_tie] = -1
    return out.reshape(shape)


@pytest.mark.parametrize(
    "direction",
    [
        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0),  # feet-first, flipped rows
    ],
)
def test_mapping_back_is_exact_nearest_neighbour(direction):
    """Index-code the crop grid, map back, and check every CT voxel got the code of its nearest crop voxel."""
    ct_geom = Geometry((-100.0, -80.0, 30.0), (0.83, 0.83, 3.1), direction)
    ct_shape = (20, 90, 100)
    heart = np.zeros(ct_shape, dtype=bool)
    heart[6:14, 30:60, 40:70] = True
    hu = np.zeros(ct_shape, dtype=np.int16)
    pre = pp.preprocess(hu + np.arange(ct_shape[2], dtype=np.int16), ct_geom, heart, (0.7, 0.7, 2.5), (64, 64, 16))
    crop_shape = pre.image.shape
    assert crop_shape == (16, 64, 64)
    code = np.arange(1, 1 + np.prod(crop_shape), dtype=np.int32).reshape(crop_shape)
    back = pp.to_original_grid(code, pre.geometry, ct_geom, ct_shape)
    expected = _nearest_expected(code, pre.geometry, ct_geom, ct_shape)
    check = expected >= 0
    assert check.mean() > 0.95
    np.testing.assert_array_equal(back[check], expected[check])
    # the crop covers the heart's centre, so codes come back there
    assert (back[10, 45, 55] > 0) and (back[0, 0, 0] == 0)


def test_crop_geometry_is_the_resampled_grid_shifted():
    """Linear interpolation keeps a linear ramp exact, so the crop's values must be an affine
    function of the LPS x of the crop voxels, as the crop geometry places them."""
    ct_geom = Geometry((-20.0, 5.0, 0.0), (1.4, 1.4, 5.0))
    ct_shape = (12, 60, 60)
    heart = np.zeros(ct_shape, dtype=bool)
    heart[3:9, 20:40, 10:30] = True
    x_mm = ct_geom.origin[0] + np.arange(ct_shape[2]) * ct_geom.spacing[0]
    hu = np.broadcast_to(2.0 * x_mm + 100.0, ct_shape).astype(np.float32)
    pre = pp.preprocess(hu, ct_geom, heart, (0.7, 0.7, 2.5), (64, 64, 16))
    k, j, i = np.meshgrid(*[np.arange(n) for n in pre.image.shape], indexing="ij")
    lps = pre.geometry.index_to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3))
    lo = np.array(ct_geom.origin)
    hi = lo + (np.array(ct_shape[::-1]) - 1) * np.array(ct_geom.spacing)
    inside = np.all((lps >= lo + 1e-6) & (lps <= hi - 1e-6), axis=1)
    assert inside.mean() > 0.5
    values = pre.image.reshape(-1)[inside]
    slope, intercept = np.polyfit(lps[inside, 0], values, 1)
    np.testing.assert_allclose(values, slope * lps[inside, 0] + intercept, atol=1e-5)
    assert slope > 0
