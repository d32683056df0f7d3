"""Preprocessing rules of the published chain, checked one by one without TorchIO (the oracle tests use it)."""

from __future__ import annotations

import numpy as np
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.models.unet import preprocess as pp
from deepcac2.pipeline.stage_values import Geometry


def test_grid_uses_ceil_and_keeps_the_first_voxel_corner():
    g = Geometry((-228.0, -93.0, -439.0), (0.841796875, 0.841796875, 5.0))
    grid, shape = pp.resampled_grid(g, (64, 512, 512), (0.7, 0.7, 2.5))
    # ceil(512 * 0.8418 / 0.7) = ceil(615.7) = 616; 64 * 5 / 2.5 = 128 exactly
    assert shape == (128, 616, 616)
    # the corner of the first old voxel is the corner of the first new voxel
    old_corner = np.array(g.origin) - np.array(g.spacing) / 2
    new_corner = np.array(grid.origin) - np.array([0.7, 0.7, 2.5]) / 2
    np.testing.assert_allclose(new_corner, old_corner, atol=1e-9)
    assert grid.spacing == (0.7, 0.7, 2.5)


def test_grid_corner_rule_follows_the_direction():
    """Feet-first (z axis pointing down): the origin moves against LPS z, along the index axis."""
    g = Geometry((10.0, 20.0, 300.0), (0.6, 0.8, 5.0), (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    grid, shape = pp.resampled_grid(g, (10, 50, 40), (0.7, 0.7, 2.5))
    assert shape == (20, 58, 35)  # ceil(40*0.6/0.7)=35, ceil(50*0.8/0.7)=58, 10*5/2.5=20
    first_new = np.array(grid.origin)
    expected = np.array(g.origin) + g.direction_matrix @ (0.5 * (np.array([0.7, 0.7, 2.5]) - np.array(g.spacing)))
    np.testing.assert_allclose(first_new, expected, atol=1e-9)


def test_float_geometry_is_what_a_nifti_header_holds():
    g = Geometry((-178.85, -178.85, -73.75), (0.7, 0.7, 2.5))
    n = pp.nifti_geometry(g)
    assert n.spacing[0] == float(np.float32(0.7)) != 0.7
    assert n.origin[0] == float(np.float32(-178.85))
    assert n.spacing[2] == 2.5 and n.direction == g.direction


def test_affine_round_trip_is_torchio_s():
    g = Geometry((-100.0, 50.0, 30.0), (0.83, 0.9, 3.1), (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    a = pp.ras_affine(g)
    # RAS: x and y flipped against LPS
    np.testing.assert_array_equal(a[:3, 3], [100.0, -50.0, 30.0])
    np.testing.assert_array_equal(np.diag(a[:3, :3]), [0.83, -0.9, -3.1])
    assert pp.geometry_of_affine(a) == g


def test_integer_image_is_resampled_as_integers_truncated_toward_zero():
    g = Geometry((0.0, 0.0, 0.0), (2.0, 2.0, 2.0))
    rng = np.random.default_rng(0)
    hu = rng.integers(-300, 300, size=(4, 6, 7)).astype(np.int16)
    grid, shape = pp.resampled_grid(g, hu.shape, (0.7, 0.7, 0.7))
    as_int = pp.resample_to(hu, g, grid, shape, label=False)
    # ITK interpolates in double precision and casts the double to the output type
    as_double = pp.resample_to(hu.astype(np.float64), g, grid, shape, label=False)
    assert as_int.dtype == np.int16 and as_double.dtype == np.float64
    np.testing.assert_array_equal(as_int, np.trunc(as_double).astype(np.int16))
    assert (as_int != np.floor(as_double)).any()  # negative fractions go up, not down
    assert (as_int != np.round(as_double)).any()


def test_ct_pixel_type_for_resampling():
    assert pp.ct_for_resampling(np.zeros(3, np.int16), "int16").dtype == np.int16
    assert pp.ct_for_resampling(np.array([1.0, -5.0]), "int16").dtype == np.int16
    # values no int16 file could hold are read as floats
    assert pp.ct_for_resampling(np.array([1.5, 2.0]), "int16").dtype == np.float32
    assert pp.ct_for_resampling(np.array([40000], np.int32), "int16").dtype == np.float32
    assert pp.ct_for_resampling(np.zeros(3, np.int16), "float32").dtype == np.float32
    with pytest.raises(DeepCACError):
        pp.ct_for_resampling(np.zeros(3, np.int16), "float64")


@pytest.mark.parametrize(
    ("lo", "hi", "target", "size", "padding", "cropping"),
    [
        (10, 19, 58, 300, (14, 0), (0, 300 - 44)),  # bbox [10, 20): centre 15, even target -> begin -14
        (10, 20, 58, 300, (14, 0), (0, 300 - 44)),  # centre 15.5, not on an index, even target -> 15
        (100, 199, 256, 300, (0, 0), (22, 300 - 278)),  # centre 150 -> [22, 278)
        (100, 200, 256, 300, (0, 0), (22, 300 - 278)),  # centre 150.5 -> 150
        (10, 19, 5, 300, (0, 0), (12, 300 - 17)),  # odd target, centre 15 on an index -> 14.5 -> [12, 17)
        (280, 290, 58, 300, (0, 14), (256, 0)),  # centre 285.5 -> 285 -> [256, 314): pad the far end
    ],
)
def test_crop_or_pad_bounds_follow_torchio(lo, hi, target, size, padding, cropping):
    mask = np.zeros((size, 3, 3), dtype=bool)
    mask[lo : hi + 1, 1, 1] = True
    pad, crop = pp.crop_or_pad_bounds(mask, (target, 3, 3))
    assert pad[:2] == padding and crop[:2] == cropping
    assert size + sum(pad[:2]) - sum(crop[:2]) == target


def test_crop_or_pad_pads_with_zero_then_crops():
    a = np.arange(1, 1 + 4 * 5 * 6).reshape(4, 5, 6)
    out = pp.crop_or_pad(a, (2, 0, 0, 0, 0, 1), (0, 0, 1, 1, 3, 0))
    assert out.shape == (6, 3, 4)
    assert (out[:2] == 0).all()
    np.testing.assert_array_equal(out[2:6, :, :3], a[0:4, 1:4, 3:6])
    assert (out[2:, :, 3] == 0).all()


def test_empty_heart_is_no_heart_error():
    with pytest.raises(DeepCACError) as err:
        pp.crop_or_pad_bounds(np.zeros((5, 5, 5), dtype=bool), (4, 4, 4))
    assert err.value.code is ErrorCode.E_NO_HEART


def test_normalise_is_clamp_then_min_max():
    rng = np.random.default_rng(0)
    hu = rng.integers(-1000, 1500, size=(6, 7, 8)).astype(np.int16)
    out = pp.normalise(hu)
    clamped = np.clip(hu.astype(float), -135, 500)
    np.testing.assert_allclose(out, (clamped - clamped.min()) / (clamped.max() - clamped.min()), atol=1e-6)
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 1


def test_constant_crop_is_an_inference_error():
    with pytest.raises(DeepCACError) as err:
        pp.normalise(np.full((4, 4, 4), 900, np.int16))
    assert err.value.code is ErrorCode.E_INFERENCE


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
    out[inside] = code[idx[inside, 2], idx[inside, 1], idx[inside, 0]]
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
    """Index-code the crop, map back, and check every CT voxel got the code of its nearest crop voxel."""
    ct_geom = Geometry((-100.0, -80.0, 30.0), (0.83, 0.83, 3.1), direction)
    ct_shape = (20, 90, 100)
    heart = np.zeros(ct_shape, dtype=bool)
    heart[6:14, 30:60, 40:70] = True
    hu = np.zeros(ct_shape, dtype=np.int16) + np.arange(ct_shape[2], dtype=np.int16)
    pre = pp.preprocess(hu, ct_geom, heart, (0.7, 0.7, 2.5), (64, 64, 16))
    crop_shape = pre.image.shape
    assert crop_shape == (16, 64, 64)
    code = np.arange(1, 1 + np.prod(crop_shape), dtype=np.int32).reshape(crop_shape)
    back = pp.to_ct_grid(code, pre)
    expected = _nearest_expected(code, pre.geometry, pp.nifti_geometry(ct_geom), ct_shape)
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
    pre = pp.preprocess(hu, ct_geom, heart, (0.7, 0.7, 2.5), (64, 64, 16), resample_dtype="float32")
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
