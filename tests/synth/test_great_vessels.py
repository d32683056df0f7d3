"""The great-vessel chest: the structures lie where anatomy puts them, every calcium voxel is
labelled by structure, none of it touches a coronary plaque, and the scores stay exact."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from deepcac2.pipeline.conventions import CONVENTIONS
from deepcac2.pipeline.synth.labels import DISTRACTOR_GROUP, Distractor, Tissue, hu_lut
from deepcac2.pipeline.synth.phantom import build_chest
from deepcac2.pipeline.synth.truth import phantom_expected

from .mini_scorer import score
from .phantoms import great_spec

NEIGHBOURS_26 = ndimage.generate_binary_structure(3, 3)
GREAT = (Tissue.AORTA, Tissue.PULMONARY_ARTERY, Tissue.SUPERIOR_VENA_CAVA, Tissue.ARCH_BRANCH)
AORTIC = (Distractor.AORTIC_WALL, Distractor.ASCENDING_AORTA_WALL, Distractor.AORTIC_ARCH_WALL)


@pytest.fixture(scope="module")
def great():
    return build_chest(great_spec())


def _z(ph) -> np.ndarray:
    return ph.geometry.origin[2] + ph.geometry.spacing[2] * np.arange(ph.hu.shape[0])


def _centroid(ph, mask: np.ndarray) -> np.ndarray:
    k, j, i = np.nonzero(mask)
    g = ph.geometry
    return np.array([g.origin[0] + g.spacing[0] * i.mean(), g.origin[1] + g.spacing[1] * j.mean(), _z(ph)[k].mean()])


def test_every_new_structure_is_there(great):
    for tissue in (*GREAT, Tissue.ESOPHAGUS, Tissue.LYMPH_NODE, Tissue.COSTAL_CARTILAGE, Tissue.LEFT_ATRIUM):
        assert (great.anatomy == tissue).sum() > 20, tissue.name
    assert great.great_vessels and set(great.landmarks) >= {"arch_top", "pulmonary_bifurcation", "body", "carina"}


def test_the_arch_lies_above_the_heart_and_runs_back_and_left(great):
    z = _z(great)
    heart_top = z[np.nonzero(great.heart.any(axis=(1, 2)))[0].max()]
    aorta = great.anatomy == Tissue.AORTA
    above = aorta & (z > heart_top + 10.0)[:, None, None]
    assert above.sum() > 100, "the arch must be in the scan, above the heart"
    top = np.asarray(great.landmarks["arch_top"])
    assert top[2] > heart_top + 20.0
    # the descending aorta (below the arch, behind the heart) lies left of and behind the arch's top
    desc = aorta & (np.abs(z - (heart_top - 30.0)) < 8.0)[:, None, None]
    desc &= (np.arange(aorta.shape[1]) * great.geometry.spacing[1] + great.geometry.origin[1] > 20.0)[None, :, None]
    c = _centroid(great, desc)
    assert c[0] > 5.0 and c[0] > top[0] and c[1] > top[1] + 15.0


def test_the_descending_aorta_presses_on_the_left_atrium(great):
    """The failure seen on real CT: the descending aorta touches the heart (at the left atrium)."""
    z = _z(great)
    la = great.anatomy == Tissue.LEFT_ATRIUM
    la_z = z[np.nonzero(la.any(axis=(1, 2)))[0]]
    y = great.geometry.origin[1] + great.geometry.spacing[1] * np.arange(la.shape[1])
    # the aorta behind the atrium's centre: the descending aorta (the root touches the heart in front)
    behind = (great.anatomy == Tissue.AORTA) & (y > _centroid(great, la)[1])[None, :, None]
    touching = ndimage.binary_dilation(great.heart, NEIGHBOURS_26) & behind
    tz = z[np.nonzero(touching.any(axis=(1, 2)))[0]]
    # it touches over at least 1.5 cm of z within the atrium's height
    at_la = tz[(tz >= la_z.min()) & (tz <= la_z.max())]
    assert len(at_la) and at_la.max() - at_la.min() >= 15.0
    aorta = behind
    # only the atrium's wall and a thin layer of fat lie between them
    sp = np.asarray(great.geometry.spacing)[::-1]
    gap = ndimage.distance_transform_edt(~la, sampling=sp)[aorta].min()
    assert gap <= 5.0 + max(sp)


def test_the_pulmonary_bifurcation_is_below_the_arch_and_its_branches_reach_the_hila(great):
    bif = np.asarray(great.landmarks["pulmonary_bifurcation"])
    top = np.asarray(great.landmarks["arch_top"])
    body = great.landmarks["body"]
    assert bif[2] + body["pulmonary_radius"] <= top[2] - 0.5 * body["descending_radius"]
    pa = great.anatomy == Tissue.PULMONARY_ARTERY
    x = great.geometry.origin[0] + great.geometry.spacing[0] * np.nonzero(pa)[2]
    assert x.min() < -30.0 and x.max() > 30.0  # right and left pulmonary arteries
    # the trunk lies to the left of the ascending aorta's root
    assert bif[0] > np.asarray(great.landmarks["aortic_root"])[0]


def test_great_vessels_are_not_heart_and_cut_no_bone_or_airway(great):
    assert not (great.heart & np.isin(great.anatomy, GREAT)).any()
    assert not (great.heart & np.isin(great.anatomy, [Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE])).any()
    # the heart mask holds the chambers and myocardium
    for tissue in (Tissue.LEFT_VENTRICLE, Tissue.RIGHT_VENTRICLE, Tissue.LEFT_ATRIUM, Tissue.RIGHT_ATRIUM):
        assert great.heart[great.anatomy == tissue].all(), tissue.name


def test_every_calcium_voxel_is_labelled_by_structure(great):
    ph = great
    calcium = ph.anatomy == Tissue.DISTRACTOR_CALCIUM
    assert np.array_equal(calcium, np.isin(ph.distractors, [d for d in Distractor if d != Distractor.BONE_NEAR_HEART]))
    assert not (ph.cac & (ph.distractors > 0)).any()
    assert np.array_equal(ph.cac, ph.cac_vessels > 0)
    groups = {DISTRACTOR_GROUP[Distractor(c.label)] for c in ph.calcium}
    assert groups == {"aortic", "valvular", "nodal", "bone"}
    assert {Distractor(c.label) for c in ph.calcium} >= set(AORTIC)
    # the summary is the label map
    for c in ph.calcium:
        sel = ph.distractors == c.label
        assert c.n_voxels == sel.sum() and c.hu_max == ph.hu[sel].max() and c.n_voxels_130 == (ph.hu[sel] >= 130).sum()
    # HU: labelled tissues hold their documented HU, calcium its own (>= 130)
    own = np.isin(ph.anatomy, [Tissue.CAC, Tissue.DISTRACTOR_CALCIUM])
    assert np.array_equal(ph.hu[~own], hu_lut()[ph.anatomy[~own]])
    assert ph.hu[calcium].min() >= 130


def test_aortic_calcium_lies_in_the_aortic_wall_by_segment(great):
    ph = great
    aorta = ph.anatomy == Tissue.AORTA
    near_aorta = ndimage.binary_dilation(aorta, NEIGHBOURS_26)
    z = _z(ph)
    top = np.asarray(ph.landmarks["arch_top"])
    for kind in AORTIC:
        sel = ph.distractors == kind
        if not sel.any():
            continue
        assert near_aorta[sel].all(), kind.name
    arch = ph.distractors == Distractor.AORTIC_ARCH_WALL
    if arch.any():
        assert z[np.nonzero(arch)[0]].min() > top[2] - 60.0
    # nodal calcium inside a node (landmarks say where), cartilage calcium inside cartilage
    k, j, i = np.nonzero(ph.distractors == Distractor.LYMPH_NODE_CALCIUM)
    g = ph.geometry
    pts = np.stack([g.origin[0] + g.spacing[0] * i, g.origin[1] + g.spacing[1] * j, z[k]], axis=1)
    inside = np.zeros(len(pts), dtype=bool)
    for node in ph.landmarks["nodes"]:
        inside |= (((pts - node["center"]) / node["radii"]) ** 2).sum(axis=1) <= 1.0 + 1e-6
    assert len(pts) and inside.all()
    sel = ph.distractors == Distractor.COSTAL_CARTILAGE_CALCIUM
    assert ndimage.binary_dilation(ph.anatomy == Tissue.COSTAL_CARTILAGE, NEIGHBOURS_26)[sel].mean() > 0.5


def test_plaques_keep_clear_of_all_of_it_and_scores_stay_exact(great):
    ph = great
    _, n = ndimage.label(ph.cac, NEIGHBOURS_26)
    assert n == len(ph.truth)
    ring = ndimage.binary_dilation(ph.cac, NEIGHBOURS_26) & ~ph.cac
    assert ph.hu[ring].max() < 119
    expected = phantom_expected(ph)
    for name, conv in CONVENTIONS.items():
        e = expected[name]
        if e.reason:
            continue
        got = score(ph.hu, ph.cac, ph.geometry.spacing, ph.slice_thickness_mm, ph.kvp, ph.mass_factor, conv)
        assert e.agatston == pytest.approx(got["agatston"], rel=1e-9, abs=1e-9), name
        assert e.lesion_count == got["lesion_count"], name


CHAMBER_BLOOD = (Tissue.LEFT_ATRIUM, Tissue.LEFT_VENTRICLE, Tissue.RIGHT_ATRIUM, Tissue.RIGHT_VENTRICLE)


def _chamber_blood_by_coronaries(ph) -> int:
    """Chamber blood voxels sharing a face with a coronary lumen or plaque (a coronary runs in fat, a
    chamber wall between them and the blood; a diagonal neighbour on a 2.2 mm grid is 4 mm off)."""
    coronary = np.isin(ph.anatomy, (Tissue.CORONARY, Tissue.CAC))
    ring = ndimage.binary_dilation(coronary) & ~coronary
    return int(np.isin(ph.anatomy[ring], CHAMBER_BLOOD).sum())


def test_coronaries_run_over_the_bulging_atrium_not_through_it(great):
    """The larger left atrium reaches out through the surface the coronaries are traced on; the
    circumflex runs in the groove at its ventricular edge, never through its blood."""
    assert _chamber_blood_by_coronaries(great) == 0
    assert (great.anatomy == Tissue.CORONARY).any() and (great.anatomy == Tissue.LEFT_ATRIUM).any()


def test_same_seed_same_patient_other_seed_other_anatomy(great):
    again = build_chest(great_spec())
    for field in ("hu", "anatomy", "distractors", "heart", "cac_vessels"):
        assert np.array_equal(getattr(great, field), getattr(again, field)), field
    other = build_chest(great_spec(seed=12))
    assert other.landmarks["body"] != great.landmarks["body"]
    assert other.landmarks["arch_top"] != great.landmarks["arch_top"]
    assert (other.anatomy == Tissue.AORTA).sum() != (great.anatomy == Tissue.AORTA).sum()


def _touch_span_mm(ph) -> float:
    """z extent (mm) over which the aorta behind the left atrium's centre touches the heart mask."""
    z = _z(ph)
    la = ph.anatomy == Tissue.LEFT_ATRIUM
    y = ph.geometry.origin[1] + ph.geometry.spacing[1] * np.arange(la.shape[1])
    behind = (ph.anatomy == Tissue.AORTA) & (y > _centroid(ph, la)[1])[None, :, None]
    touching = ndimage.binary_dilation(ph.heart, NEIGHBOURS_26) & behind
    tz = z[np.nonzero(touching.any(axis=(1, 2)))[0]]
    return float(tz.max() - tz.min()) if len(tz) else 0.0


@pytest.mark.slow
def test_patients_vary_and_every_one_keeps_the_anatomy():
    """Twelve patients: different geometry, yet each has the arch above the heart, the aorta on the
    atrium, the bifurcation under the arch; most have aortic calcium; all plaques placed."""
    bodies, tops, with_aortic, on_atrium, pressed = [], [], 0, 0, 0
    for seed in range(100, 112):
        ph = build_chest(great_spec(seed=seed))
        b, top = ph.landmarks["body"], np.asarray(ph.landmarks["arch_top"])
        bodies.append(b)
        tops.append(top)
        if b["indent"] >= 0.5:
            assert _touch_span_mm(ph) >= 15.0, seed
            pressed += 1
            la = ph.anatomy == Tissue.LEFT_ATRIUM
            sp = np.asarray(ph.geometry.spacing)[::-1]
            on_atrium += ndimage.distance_transform_edt(~la, sampling=sp)[ph.anatomy == Tissue.AORTA].min() <= 5.0 + 2.5
        assert np.asarray(ph.landmarks["pulmonary_bifurcation"])[2] + b["pulmonary_radius"] < top[2], seed
        heart_top = _z(ph)[np.nonzero(ph.heart.any(axis=(1, 2)))[0].max()]
        assert top[2] > heart_top + 15.0, seed
        assert not (ph.heart & np.isin(ph.anatomy, [Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE, *GREAT])).any()
        assert len(ph.truth) == len(great_spec().plaques) and not (ph.cac & (ph.distractors > 0)).any()
        assert _chamber_blood_by_coronaries(ph) == 0, seed
        with_aortic += any(DISTRACTOR_GROUP[Distractor(c.label)] == "aortic" for c in ph.calcium)
    for name, spread in (("descending_radius", 1.5), ("ascending_radius", 2.0), ("aorta_angle", 0.2), ("indent", 1.0)):
        values = [b[name] for b in bodies]
        assert max(values) - min(values) > spread, name
    assert np.ptp([t[2] for t in tops]) > 8.0
    assert with_aortic >= 7
    assert on_atrium >= 0.75 * pressed  # mostly the atrium; else the back of the ventricles
    assert min(b["indent"] for b in bodies) < 0 < max(b["indent"] for b in bodies)  # some with fat between


def test_pictures_of_a_phantom_are_written(great, tmp_path):
    from deepcac2.pipeline.synth.phantom_figures import comparison_figure, overlay_figure

    a = overlay_figure(great, tmp_path / "overlay.png", title="seed 6")
    b = comparison_figure([("seed 6", great)], tmp_path / "compare.png", real_dir=None)
    import matplotlib.image

    for path in (a, b):
        img = matplotlib.image.imread(path)
        assert img.shape[0] > 100 and img.std() > 0.1  # a picture, not a blank page


def test_esophagus_runs_between_the_atrium_and_the_spine_right_of_the_aorta(great):
    z = _z(great)
    la = great.anatomy == Tissue.LEFT_ATRIUM
    k_mid = int(np.median(np.nonzero(la)[0]))
    band = np.zeros(len(z), dtype=bool)
    band[max(0, k_mid - 2) : k_mid + 3] = True
    eso = _centroid(great, (great.anatomy == Tissue.ESOPHAGUS) & band[:, None, None])
    y = great.geometry.origin[1] + great.geometry.spacing[1] * np.arange(la.shape[1])
    x = great.geometry.origin[0] + great.geometry.spacing[0] * np.arange(la.shape[2])
    vertebra = (great.anatomy == Tissue.CANCELLOUS_BONE) & (np.abs(x) < 15.0)[None, None, :] & (y > 0)[None, :, None]
    spine = _centroid(great, vertebra & band[:, None, None])
    behind = (great.anatomy == Tissue.AORTA) & (y > _centroid(great, la)[1])[None, :, None] & band[:, None, None]
    assert _centroid(great, la & band[:, None, None])[1] < eso[1] < spine[1]
    assert eso[0] < _centroid(great, behind)[0]
    # costal cartilage: in front, between the ribs' ends and the sternum's edge, both sides
    x = great.geometry.origin[0] + great.geometry.spacing[0] * np.nonzero(great.anatomy == Tissue.COSTAL_CARTILAGE)[2]
    assert (x < -10).any() and (x > 10).any() and np.abs(x).max() < 40.0


def test_no_distractors_means_no_non_coronary_calcium_but_the_same_anatomy(great):
    bare = build_chest(great_spec(distractors=False))
    assert {c.structure for c in bare.calcium} == {"bone_near_heart"}
    assert not (bare.anatomy == Tissue.DISTRACTOR_CALCIUM).any()
    assert bare.landmarks == great.landmarks
