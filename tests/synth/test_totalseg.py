"""synth's TotalSegmentator label map: the phantom's tissues as TotalSegmentator v1 classes, with seeded boundary errors."""

from __future__ import annotations

import numpy as np
import pytest

from deepcac2.pipeline.synth.labels import Distractor, Tissue
from deepcac2.pipeline.synth.phantom import ChestSpec, build_chest
from deepcac2.pipeline.synth.totalseg_writer import CALCIUM_CLASSES, TISSUE_CLASSES, label_map, with_boundary_errors
from deepcac2.pipeline.totalseg.codes import classes


def _id(name: str) -> int:
    return classes()[name][0]


@pytest.fixture(scope="module")
def chest():
    spec = ChestSpec(seed=5, rows=96, cols=96, pixel_spacing_mm=3.6, n_slices=88, great_vessels=True, z_center_mm=25.0)
    ph = build_chest(spec)
    return ph, label_map(ph)


def test_tissues_map_to_their_classes(chest):
    ph, labels = chest
    for tissue, name in TISSUE_CLASSES.items():
        where = ph.anatomy == tissue
        assert where.any(), tissue
        np.testing.assert_array_equal(labels[where], _id(name), err_msg=name)
    for kind, name in CALCIUM_CLASSES.items():
        where = (ph.anatomy == Tissue.DISTRACTOR_CALCIUM) & (ph.distractors == kind)
        assert (labels[where] == _id(name)).all(), kind
    # no TotalSegmentator v1 class: coronaries, plaques, pericardial fat, nodes, cartilage, SVC, arch branches
    for tissue in (Tissue.CORONARY, Tissue.CAC, Tissue.PERICARDIAL_FAT, Tissue.LYMPH_NODE, Tissue.COSTAL_CARTILAGE,
                   Tissue.SUPERIOR_VENA_CAVA, Tissue.ARCH_BRANCH):  # fmt: skip
        assert not labels[ph.anatomy == tissue].any(), tissue
    assert not labels[
        (ph.anatomy == Tissue.DISTRACTOR_CALCIUM) & (ph.distractors == Distractor.LYMPH_NODE_CALCIUM)
    ].any()


def test_lungs_are_five_lobes_and_bones_are_vertebrae_and_ribs_by_side(chest):
    ph, labels = chest
    lung = np.isin(ph.anatomy, (Tissue.LUNG, Tissue.LUNG_VESSEL))
    lobes = [v for k, (v, _) in classes().items() if k.startswith("lung_")]
    assert set(np.unique(labels[lung])) == set(lobes)
    x = np.arange(labels.shape[2])[None, None, :]
    left = {v for k, (v, _) in classes().items() if k.endswith("_left")}
    mid = labels.shape[2] / 2
    assert np.isin(labels[lung & (x > mid + 10)], sorted(left)).all()  # the patient's left is +x (LPS)
    bone = np.isin(ph.anatomy, (Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE))
    names = {v: k for k, (v, _) in classes().items()}
    found = {names[int(v)].split("_")[0] for v in np.unique(labels[bone]) if v}
    assert found == {"vertebrae", "rib"}
    assert (labels[bone] == 0).mean() < 0.2  # the sternum (no v1 class) is the unlabelled rest
    ribs = [names[int(v)] for v in np.unique(labels[bone]) if v and names[int(v)].startswith("rib_")]
    assert {r.split("_")[1] for r in ribs} == {"left", "right"}


def test_boundary_errors_are_seeded_small_and_keep_every_class(chest):
    ph, labels = chest
    a = with_boundary_errors(labels, ph.geometry.spacing, 1)
    np.testing.assert_array_equal(a, with_boundary_errors(labels, ph.geometry.spacing, 1))
    b = with_boundary_errors(labels, ph.geometry.spacing, 2)
    assert not np.array_equal(a, b)
    changed = (a != labels)[labels > 0].mean()
    assert 0.005 < changed < 0.15, changed
    assert set(np.unique(a)) == set(np.unique(labels))
    heart = np.isin(labels, [_id(n) for n in ("heart_myocardium", "heart_atrium_left", "heart_ventricle_left")])
    moved = np.isin(a, [_id(n) for n in ("heart_myocardium", "heart_atrium_left", "heart_ventricle_left")])
    dice = 2 * (heart & moved).sum() / (heart.sum() + moved.sum())
    assert 0.85 < dice < 0.995, dice


def test_no_totalseg_writes_no_seg(tmp_path):
    from deepcac2.pipeline.synth.named_cohorts import write_cohort

    write_cohort("chest", tmp_path, seed=1, rows=64, pixel_spacing_mm=5.4, slices=24, plaques=1, totalseg=False)
    assert not list(tmp_path.rglob("seg.dcm"))
