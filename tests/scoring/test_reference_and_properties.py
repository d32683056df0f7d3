"""The engine against a loop-based second implementation, and invariances (hypothesis)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepcac2.pipeline.conventions import CONVENTIONS, Convention
from deepcac2.pipeline.scoring.engine import score_series
from deepcac2.pipeline.stage_values import Geometry

from .reference_impl import reference_score

SHAPE = (6, 12, 12)
GEO = Geometry(origin=(3.0, -7.0, 40.0), spacing=(0.6, 0.8, 1.5))
#: every shipped convention, without the DeepCAC rounding (the reference does not round)
UNROUNDED = {n: dataclasses.replace(c, round_decimals=None) for n, c in CONVENTIONS.items()}
VARIANTS = {
    **UNROUNDED,
    "literature8": dataclasses.replace(CONVENTIONS["literature"], name="l8", connectivity=8),
    "canon_exclusive": dataclasses.replace(CONVENTIONS["canon"], name="ce", inclusive=False, connectivity=4),
    "3d6": dataclasses.replace(CONVENTIONS["lessmann3d"], name="3d6", connectivity=6),
    "3d18": dataclasses.replace(CONVENTIONS["lessmann3d"], name="3d18", connectivity=18),
}


def random_case(seed: int, density: float = 0.35):
    rng = np.random.default_rng(seed)
    hu = rng.choice([0, 100, 129, 130, 131, 199, 200, 250, 299, 300, 399, 400, 700], size=SHAPE).astype(np.int16)
    mask = rng.random(SHAPE) < density
    return hu, mask


@pytest.mark.parametrize("density", [0.35, 0.04])  # dense: one block; sparse: many runs and islands
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", list(VARIANTS))
def test_engine_agrees_with_loop_reference(seed, name, density):
    conv = VARIANTS[name]
    hu, mask = random_case(seed, density)
    s = score_series(hu, GEO, mask, convention=conv, slice_thickness=2.0)
    agatston, volume, count = reference_score(hu.tolist(), mask.tolist(), GEO.spacing, conv, slice_thickness=2.0)
    assert s.agatston == pytest.approx(agatston, rel=1e-12, abs=1e-9)
    assert s.volume_mm3 == pytest.approx(volume, rel=1e-12)
    assert s.lesion_count == count


# -- invariances ---------------------------------------------------------------------------------

volumes = st.integers(min_value=0, max_value=10_000)
SHIPPED = list(CONVENTIONS)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _summary(s):
    return (round(s.agatston, 6), round(s.volume_mm3, 6), s.lesion_count)


def _reversed_geometry(geo: Geometry, nz: int) -> Geometry:
    """The geometry of the same voxels with the slice order reversed."""
    d = geo.direction_matrix.copy()
    last = geo.index_to_lps(np.array([0.0, 0.0, nz - 1.0]))
    d[:, 2] *= -1
    return Geometry(tuple(last), geo.spacing, tuple(d.ravel()))


@FAST
@given(seed=volumes, name=st.sampled_from(SHIPPED))
def test_slice_order_reversal(seed, name):
    hu, mask = random_case(seed)
    a = score_series(hu, GEO, mask, convention=name, slice_thickness=2.0)
    b = score_series(hu[::-1], _reversed_geometry(GEO, SHAPE[0]), mask[::-1], convention=name, slice_thickness=2.0)
    assert _summary(a) == _summary(b)
    # same lesions in the same places
    ca = sorted(tuple(np.round(les.centroid_lps, 6)) for les in a.lesions)
    cb = sorted(tuple(np.round(les.centroid_lps, 6)) for les in b.lesions)
    assert ca == cb


@FAST
@given(seed=volumes, name=st.sampled_from(SHIPPED), axis=st.sampled_from([1, 2]))
def test_in_plane_flip(seed, name, axis):
    hu, mask = random_case(seed)
    a = score_series(hu, GEO, mask, convention=name, slice_thickness=2.0)
    b = score_series(np.flip(hu, axis), GEO, np.flip(mask, axis), convention=name, slice_thickness=2.0)
    assert _summary(a) == _summary(b)


@FAST
@given(seed=volumes, name=st.sampled_from(SHIPPED), dy=st.integers(0, 5), dx=st.integers(0, 5))
def test_in_plane_translation(seed, name, dy, dx):
    hu, mask = random_case(seed)
    big_hu = np.zeros((SHAPE[0], SHAPE[1] + 5, SHAPE[2] + 5), dtype=hu.dtype)
    big_mask = np.zeros(big_hu.shape, dtype=bool)
    big_hu[:, dy : dy + SHAPE[1], dx : dx + SHAPE[2]] = hu
    big_mask[:, dy : dy + SHAPE[1], dx : dx + SHAPE[2]] = mask
    a = score_series(hu, GEO, mask, convention=name, slice_thickness=2.0)
    b = score_series(big_hu, GEO, big_mask, convention=name, slice_thickness=2.0)
    assert _summary(a) == _summary(b)


@FAST
@given(
    seed=volumes,
    name=st.sampled_from(SHIPPED),
    voxel=st.tuples(st.integers(0, SHAPE[0] - 1), st.integers(0, SHAPE[1] - 1), st.integers(0, SHAPE[2] - 1)),
    value=st.integers(130, 1000),
)
def test_adding_calcium_never_lowers_a_score(seed, name, voxel, value):
    hu, mask = random_case(seed, density=0.25)
    before = score_series(hu, GEO, mask, convention=name, slice_thickness=2.0)
    hu2, mask2 = hu.copy(), mask.copy()
    hu2[voxel] = max(int(hu2[voxel]), value)
    mask2[voxel] = True
    after = score_series(hu2, GEO, mask2, convention=name, slice_thickness=2.0)
    # the DeepCAC rounding to 3 decimals may move a sum by float noise only
    assert after.agatston >= before.agatston - 1e-6
    assert after.volume_mm3 >= before.volume_mm3 - 1e-9


def test_lesion_ids_are_dense_and_start_at_one():
    hu, mask = random_case(3)
    s = score_series(hu, GEO, mask, convention="canon", slice_thickness=2.0)
    assert [les.lesion_id for les in s.lesions] == list(range(1, s.lesion_count + 1))


def test_convention_object_accepted():
    conv = Convention(name="mine", description="test", dims=3, connectivity=6)
    hu, mask = random_case(4)
    s = score_series(hu, GEO, mask, convention=conv)
    assert s.convention == "mine" and s.convention_params["connectivity"] == 6
