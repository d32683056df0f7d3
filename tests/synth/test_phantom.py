"""The in-memory phantom: labels match HU, plaques stay apart, truth matches a second scorer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.pipeline.stage_values import VESSEL_NAMES
from deepcac2.pipeline.synth.labels import Distractor, Tissue, hu_lut
from deepcac2.pipeline.synth.phantom import ChestSpec, PlaqueSpec, build_chest, random_plaques
from deepcac2.pipeline.synth.truth import phantom_expected

from .mini_scorer import score
from .phantoms import SMALL_PLAQUES, small_spec

NEIGHBOURS_26 = ndimage.generate_binary_structure(3, 3)


def test_every_plaque_is_placed_with_its_hu_and_vessel(small_chest):
    ph = small_chest
    assert len(ph.truth) == len(SMALL_PLAQUES)
    union = np.zeros(ph.hu.shape, dtype=bool)
    for les, spec in zip(ph.truth, SMALL_PLAQUES, strict=True):
        k0, k1, j0, j1, i0, i1 = les.box
        box = (slice(k0, k1), slice(j0, j1), slice(i0, i1))
        assert les.vessel == spec.vessel and les.hu == spec.hu
        assert np.all(ph.hu[box] == spec.hu)
        assert np.all(ph.cac_vessels[box] == VESSEL_NAMES[spec.vessel])
        # the box is the spec's size rounded to whole voxels
        size = np.broadcast_to(np.asarray(spec.size_mm, float), (3,))
        want = np.maximum(1, np.rint(size / np.asarray(ph.geometry.spacing)))
        assert (i1 - i0, j1 - j0, k1 - k0) == tuple(want.astype(int))
        assert les.n_voxels == (k1 - k0) * (j1 - j0) * (i1 - i0)
        union[box] = True
    # nothing else carries a vessel label
    assert np.array_equal(union, ph.cac_vessels > 0)
    assert np.array_equal(ph.cac, union)


def test_plaques_are_separate_and_clear_of_everything_dense(small_chest):
    ph = small_chest
    _, n = ndimage.label(ph.cac, NEIGHBOURS_26)
    assert n == len(ph.truth)
    # one voxel round every plaque (26-neighbourhood): nothing that any threshold (>= 119 HU) could join
    ring = ndimage.binary_dilation(ph.cac, NEIGHBOURS_26) & ~ph.cac
    assert ph.hu[ring].max() < 119
    assert not (ph.cac & (ph.distractors > 0)).any()


def test_labels_hold_the_documented_hu(small_chest):
    ph = small_chest
    lut = hu_lut()
    own_hu = np.isin(ph.anatomy, [Tissue.CAC, Tissue.DISTRACTOR_CALCIUM])
    assert np.array_equal(ph.hu[~own_hu], lut[ph.anatomy[~own_hu]])
    assert (ph.hu[ph.anatomy == Tissue.LUNG] == -850).all()
    # every distractor is dense enough to be mistaken for calcium, and each kind is there
    assert ph.hu[ph.distractors > 0].min() >= 130
    for kind in (
        Distractor.AORTIC_WALL,
        Distractor.AORTIC_VALVE,
        Distractor.MITRAL_ANNULUS,
        Distractor.BONE_NEAR_HEART,
    ):
        assert (ph.distractors == kind).any(), kind.name


def test_cac_lies_in_the_heart_and_the_heart_in_the_chest(small_chest):
    ph = small_chest
    assert not (ph.cac & ~ph.heart).any()
    assert ph.heart.sum() > 0.02 * ph.heart.size
    assert set(ph.vessel_paths) == set(VESSEL_NAMES)
    coronary = ph.anatomy == Tissue.CORONARY
    assert coronary.sum() > 0 and (ph.heart[coronary]).mean() > 0.95


def _variants():
    conv = dict(CONVENTIONS)
    conv["literature_exclusive"] = CONVENTIONS["literature"].with_options(inclusive=False)
    conv["canon_kvp"] = CONVENTIONS["canon"].with_options(kvp_adjusted=True)
    conv["lessmann_big"] = CONVENTIONS["lessmann3d"].with_options(min_volume_mm3=20.0)
    return conv


@pytest.mark.parametrize(
    "changes",
    [
        {},
        # sub-mm pixels: a 1-pixel cross section is under 1 mm2; 140 kVp takes the 135 kV row
        {"rows": 384, "cols": 384, "pixel_spacing_mm": 0.85, "n_slices": 48, "kvp": 140, "slice_thickness_mm": 2.5},
    ],
    ids=["coarse", "fine-140kV"],
)
def test_expected_scores_match_a_second_scorer(changes):
    ph = build_chest(small_spec(**changes))
    conventions = _variants()
    expected = phantom_expected(ph, conventions)
    seen_counts = set()
    for name, conv in conventions.items():
        e = expected[name]
        assert e.exact and e.reason is None
        got = score(ph.hu, ph.cac, ph.geometry.spacing, ph.slice_thickness_mm, ph.kvp, ph.mass_factor, conv)
        assert e.agatston == pytest.approx(got["agatston"], rel=1e-9, abs=1e-9), name
        assert e.volume_mm3 == pytest.approx(got["volume_mm3"], rel=1e-9), name
        assert e.mass_mg == pytest.approx(got["mass_mg"], rel=1e-9), name
        assert e.lesion_count == got["lesion_count"], name
        seen_counts.add(e.lesion_count)
    # the rules really differ on these plaques, so the comparison tests something
    assert len(seen_counts) >= 3


def test_per_vessel_sums_to_total(small_chest):
    for e in phantom_expected(small_chest).values():
        assert sum(v.agatston for v in e.per_vessel.values()) == pytest.approx(e.agatston)
        assert sum(v.lesion_count for v in e.per_vessel.values()) == e.lesion_count


def test_same_seed_same_phantom_other_seed_other_phantom():
    spec = small_spec(rows=96, cols=96, pixel_spacing_mm=3.4, n_slices=24, plaques=SMALL_PLAQUES[:2])
    a, b = build_chest(spec), build_chest(spec)
    c = build_chest(small_spec(seed=4, rows=96, cols=96, pixel_spacing_mm=3.4, n_slices=24, plaques=SMALL_PLAQUES[:2]))
    for field in ("hu", "heart", "cac_vessels", "distractors", "anatomy"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.truth == b.truth
    assert not np.array_equal(a.hu, c.hu)


def test_noise_has_the_requested_sd_and_marks_truth_nominal():
    spec = small_spec(rows=128, cols=128, pixel_spacing_mm=2.6, n_slices=24, plaques=())
    clean = build_chest(spec)
    noisy = build_chest(ChestSpec(**{**spec.__dict__, "noise_sd_hu": 30.0}))
    assert clean.exact and not noisy.exact
    inside = clean.hu > -900  # air is clipped at -1024, so measure inside the body
    sd = float((noisy.hu[inside].astype(float) - clean.hu[inside]).std())
    assert sd == pytest.approx(30.0, rel=0.1)
    assert all(not e.exact for e in phantom_expected(noisy).values())


@pytest.mark.parametrize(
    "make",
    [
        lambda: PlaqueSpec("XYZ"),
        lambda: PlaqueSpec("LAD", size_mm=0.0),
        lambda: PlaqueSpec("LAD", position=1.5),
        lambda: PlaqueSpec("LAD", hu=130.5),
        lambda: ChestSpec(rows=8),
        lambda: ChestSpec(kvp=20),
        lambda: ChestSpec(slice_increment_mm=0.0),
        lambda: build_chest(small_spec(rows=96, cols=96, pixel_spacing_mm=3.4, plaques=[PlaqueSpec("LAD", 200.0)])),
    ],
)
def test_bad_specs_raise_a_synth_spec_error(make):
    with pytest.raises(DeepCACError) as info:
        make()
    assert info.value.code == ErrorCode.E_SYNTH_SPEC


def test_random_plaques_are_deterministic_and_valid():
    a = random_plaques(np.random.default_rng(5), 6)
    assert a == random_plaques(np.random.default_rng(5), 6)
    assert all(p.vessel in VESSEL_NAMES and 130 <= p.hu <= 900 for p in a)


def test_the_scoring_engine_agrees_with_the_truth(small_chest):
    """Integration: the project's scorer, given the truth mask, reproduces every expected number."""
    engine = pytest.importorskip("deepcac2.pipeline.scoring.engine")
    ph = small_chest
    for name, e in phantom_expected(ph).items():
        s = engine.score_series(
            ph.hu, ph.geometry, ph.cac, convention=name, kvp=ph.kvp, slice_thickness=ph.slice_thickness_mm,
            vessels=ph.cac_vessels, mass_factor=ph.mass_factor,
        )  # fmt: skip
        assert (s.agatston, s.volume_mm3, s.mass_mg) == pytest.approx((e.agatston, e.volume_mm3, e.mass_mg)), name
        assert s.lesion_count == e.lesion_count, name
        assert s.categories == e.categories, name
