"""The classical model on real chest CT (plausible heart) and on synthetic chests (exact calcium)."""

from __future__ import annotations

import numpy as np
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import types
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.anatomy.classical.provider import classical_anatomy
from deepcac2.pipeline.models.classical.model import ClassicalModel
from deepcac2.pipeline.models.classical.orient import orientation_of

synth = pytest.importorskip("deepcac2.pipeline.synth.phantom")


def _predict(ct: types.CTVolume, model: ClassicalModel | None = None) -> types.Prediction:
    """The classical model around the classical anatomy (the chain ``--anatomy classical`` runs)."""
    return (model or ClassicalModel()).predict(ct, classical_anatomy(ct))


def _given(heart: np.ndarray) -> Anatomy:
    empty = np.zeros_like(heart, dtype=bool)
    return Anatomy(heart=heart, aorta=empty, pulmonary_artery=empty, provenance=AnatomyProvenance("given", "0"))


def _heart_is_plausible(ct: types.CTVolume, heart: np.ndarray) -> None:
    volume_ml = heart.sum() * ct.geometry.voxel_volume_mm3 / 1000
    assert 300 <= volume_ml <= 1200, volume_ml
    hu = ct.hu[heart]
    # inside the mediastinum: (almost) no lung or air in it, mostly soft tissue and fat
    assert (hu < -400).mean() < 0.01
    assert ((hu > -250) & (hu < 250)).mean() > 0.97
    # centred left-right within the body, in front of the spine (rows grow posterior here)
    body = ct.hu > -500
    cols = np.flatnonzero(body.any(axis=(0, 1)))
    centre_col = np.nonzero(heart)[2].mean()
    assert abs(centre_col - (cols[0] + cols[-1]) / 2) * ct.geometry.spacing[0] < 60
    rows = np.flatnonzero(body.any(axis=(0, 2)))
    assert np.nonzero(heart)[1].mean() < (rows[0] + rows[-1]) / 2 + 20


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["A0001-B", "A0001-L", "A0002-B40f", "A0002-B70f"])
def test_real_chest_ct_heart_is_plausible(real_ct, name):
    ct = real_ct(name)
    pred = _predict(ct)
    assert pred.heart.shape == ct.shape and pred.cac.shape == ct.shape
    assert pred.heart.dtype == bool and pred.cac.dtype == bool
    _heart_is_plausible(ct, pred.heart)
    # calcium is only ever inside (a margin around) the heart, and at or above 130 HU
    assert (ct.hu[pred.cac] >= 130).all()


def _phantom(seed: int, **kw):
    from deepcac2.pipeline.models.classical.evaluate import plaques_for

    return synth.build_chest(synth.ChestSpec(seed=seed, plaques=plaques_for(seed), **kw))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])
def test_noise_free_synthetic_finds_exactly_the_planted_calcium(seed):
    ph = _phantom(seed)
    ct = types.CTVolume(hu=ph.hu, geometry=ph.geometry, series_uid="s")
    result = ClassicalModel().analyse(ct, classical_anatomy(ct))
    truth = (ph.cac_vessels > 0) & (ph.hu >= 130)
    assert truth.any()
    np.testing.assert_array_equal(result.prediction.cac, truth)
    # every distractor kind is seen (>= 130 HU) and none of it is counted
    for kind in (1, 2, 3, 4):
        dense = (ph.distractors == kind) & (ph.hu >= 130)
        assert dense.any(), kind
        assert not (result.prediction.cac & dense).any(), kind
    assert {a.kind for a in result.aortas} == {"ascending", "descending"}


@pytest.mark.slow
def test_noisy_synthetic_agatston_close_to_truth():
    from deepcac2.pipeline.models.classical.evaluate import check_series

    c = check_series(0, noise_sd=20.0)
    assert abs(c.agatston_error) <= 0.05, c
    assert all(counted == 0 for _, counted in c.distractors.values()), c.distractors


@pytest.mark.slow
def test_feet_first_series_gives_the_same_masks_flipped():
    """Reversing the slice order (direction k = -z) must not change what is found."""
    ph = _phantom(0, rows=256, cols=256, pixel_spacing_mm=1.4, n_slices=48, slice_increment_mm=3.0)
    g = ph.geometry
    flipped_geom = types.Geometry(
        origin=(g.origin[0], g.origin[1], g.origin[2] + (ph.hu.shape[0] - 1) * g.spacing[2]),
        spacing=g.spacing,
        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
    )
    model = ClassicalModel()
    a = _predict(types.CTVolume(hu=ph.hu, geometry=g, series_uid="a"), model)
    b = _predict(types.CTVolume(hu=np.ascontiguousarray(ph.hu[::-1]), geometry=flipped_geom, series_uid="b"), model)
    np.testing.assert_array_equal(b.heart[::-1], a.heart)
    np.testing.assert_array_equal(b.cac[::-1], a.cac)
    assert a.heart.any()


def test_orientation_view_round_trips():
    g = types.Geometry((0, 0, 0), (0.7, 0.8, 2.5), (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    o = orientation_of(g)
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    np.testing.assert_array_equal(o.from_canonical(o.to_canonical(a)), a)
    # index axis i runs along -y (anterior): the canonical posterior axis is the flipped x array axis
    assert o.axes == (0, 2, 1) and o.flips == (False, True, False)
    assert o.spacing == (2.5, 0.7, 0.8)


def test_bad_inputs_are_typed_errors():
    oblique = types.Geometry((0, 0, 0), (1, 1, 1), (0.8, 0.6, 0.0, -0.6, 0.8, 0.0, 0.0, 0.0, 1.0))
    ct = types.CTVolume(hu=np.zeros((8, 16, 16), np.int16), geometry=oblique, series_uid="x")
    with pytest.raises(DeepCACError) as err:
        _predict(ct)
    assert err.value.code is ErrorCode.E_GEOMETRY_ORIENTATION
    water = types.CTVolume(
        hu=np.zeros((8, 32, 32), np.int16), geometry=types.Geometry((0, 0, 0), (2, 2, 5)), series_uid="w"
    )
    with pytest.raises(DeepCACError) as err:
        _predict(water)
    assert err.value.code is ErrorCode.E_NO_HEART
    with pytest.raises(DeepCACError) as err:  # the model with an anatomy whose heart is empty
        ClassicalModel().predict(water, _given(np.zeros(water.shape, bool)))
    assert err.value.code is ErrorCode.E_NO_HEART
    with pytest.raises(DeepCACError) as err:  # an anatomy off the CT grid
        ClassicalModel().predict(water, _given(np.ones((8, 32, 31), bool)))
    assert err.value.code is ErrorCode.E_MASK_GEOMETRY
    nan = types.CTVolume(
        hu=np.full((8, 32, 32), np.nan, np.float32), geometry=types.Geometry((0, 0, 0), (2, 2, 5)), series_uid="n"
    )
    with pytest.raises(DeepCACError) as err:
        ClassicalModel().predict(nan, _given(np.ones(nan.shape, bool)))
    assert err.value.code is ErrorCode.E_INFERENCE


def test_noise_sd_estimate_matches_the_generating_sd():
    from deepcac2.pipeline.models.classical.cac import noise_sd

    rng = np.random.default_rng(5)
    hu = (40 + rng.normal(0, 30, size=(20, 60, 60))).astype(np.float32)
    hu[:, :10] = -100  # fat outside the band is ignored
    heart = np.ones(hu.shape, dtype=bool)
    hu[5, 30, 30] = 900  # a calcification does not move a robust estimate
    assert noise_sd(hu, heart) == pytest.approx(30, rel=0.08)
    assert noise_sd(np.full(hu.shape, 38.0), heart) == 1.0  # noise-free: the floor


@pytest.mark.slow
def test_cac_search_follows_the_given_heart():
    """The model takes the anatomy's heart: the phantom's true heart finds the plaques; a heart elsewhere does not."""
    ph = _phantom(0)
    ct = types.CTVolume(hu=ph.hu, geometry=ph.geometry, series_uid="s")
    truth = (ph.cac_vessels > 0) & (ph.hu >= 130)
    given = _given(ph.heart.astype(bool))
    pred = ClassicalModel().predict(ct, given)
    assert pred.heart is given.heart and pred.anatomy is given
    assert (pred.cac & truth).sum() >= 0.9 * truth.sum()
    # the same heart cut 25 mm below the lowest plaque: the search (heart + margins) no longer reaches any
    lowest = int(np.flatnonzero(truth.any(axis=(1, 2))).min())
    cut = given.heart.copy()
    cut[max(lowest - int(round(25.0 / ph.geometry.spacing[2])), 0) :] = False
    assert cut.any()
    pred = ClassicalModel().predict(ct, _given(cut))
    assert not (pred.cac & truth).any()
