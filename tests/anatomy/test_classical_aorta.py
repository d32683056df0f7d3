"""The classical anatomy's descending-aorta chain: the aorta beside the spine, not the esophagus in front of it."""

from __future__ import annotations

import numpy as np
import pytest

from deepcac2.pipeline.anatomy.classical.aorta import find_descending
from deepcac2.pipeline.anatomy.classical.sections import blood_map
from deepcac2.pipeline.anatomy.classical.thorax import BONE_HU, Thorax

SPACING = (2.5, 2.0, 2.0)  # canonical low-resolution view: slices, rows (posterior), columns (left)
SHAPE = (60, 100, 120)
SPINE_FRONT, SPINE_COL = 70, 60  # pixels
AORTA_TOP = 40  # the aorta turns into the arch here; the esophagus runs on up the neck


def _chest(aorta_radius_mm: float | None, aorta_left_mm: float, esophagus_radius_mm: float | None = 7.5) -> Thorax:
    """Fat between two lungs, a vertebral body, an esophagus (soft tissue, directly in front of the spine,
    the whole scan) and a descending aorta (blood, left-anterior of the vertebral body, up to AORTA_TOP)."""
    hu = np.full(SHAPE, -100.0, dtype=np.float32)
    rr, cc = np.mgrid[: SHAPE[1], : SHAPE[2]]
    mm_r, mm_c = rr * SPACING[1], cc * SPACING[2]
    lungs = np.zeros(SHAPE, dtype=bool)
    lungs[:, 20:90, 5:35] = lungs[:, 20:90, 85:115] = True
    hu[lungs] = -800.0
    spine = np.hypot(mm_r - (SPINE_FRONT * 2.0 + 16.0), mm_c - SPINE_COL * 2.0) <= 16.0
    hu[:, spine] = 400.0
    if esophagus_radius_mm:
        r = esophagus_radius_mm
        hu[:, np.hypot(mm_r - (SPINE_FRONT * 2.0 - r - 2.0), mm_c - SPINE_COL * 2.0) <= r] = 40.0
    if aorta_radius_mm:
        r = aorta_radius_mm
        hu[:AORTA_TOP, np.hypot(mm_r - (SPINE_FRONT * 2.0 - 4.0), mm_c - (SPINE_COL * 2.0 + aorta_left_mm)) <= r] = 40.0
    return Thorax(
        hu=hu,
        spacing=SPACING,
        factor=(1, 1),
        body=np.ones(SHAPE, dtype=bool),
        lungs=lungs,
        mediastinum=np.zeros(SHAPE, dtype=bool),
        spine_front=np.full(SHAPE[0], float(SPINE_FRONT)),
        spine_col=np.full(SHAPE[0], float(SPINE_COL)),
    )


def _chain_centre_mm(th: Thorax) -> tuple[float, float, list]:
    """Median offset left of the spine's centre and median radius of the chain's sections below AORTA_TOP."""
    found = find_descending(th, blood_map(th.hu), th.hu >= BONE_HU, skip_esophagus=True)
    chain = [s for s in found if s.z < AORTA_TOP]
    left = float(np.median([(s.col - SPINE_COL) * SPACING[2] for s in chain]))
    radius = float(np.median([s.radius_mm for s in chain]))
    return left, radius, chain


def test_the_descending_chain_is_the_aorta_not_the_longer_esophagus_in_front_of_the_spine():
    """The esophagus (15 mm across, in front of the spine, over the whole scan) makes the longest chain of
    round sections; the aorta (24 mm across, 28 mm left of the spine's centre) stops at the arch. The old
    rule (the best chain, still the default) takes the esophagus."""
    left, radius, chain = _chain_centre_mm(_chest(aorta_radius_mm=12.0, aorta_left_mm=28.0))
    assert abs(left - 28.0) <= 4.0, (left, radius)
    assert radius >= 10.0
    assert len(chain) >= 0.9 * AORTA_TOP


def test_a_small_aorta_left_of_the_spine_is_still_the_aorta():
    """A chain of the smallest sections is dropped only where it runs in front of the spine: a narrow aorta
    (17 mm across) left of the spine, with no esophagus beside it, is kept."""
    left, _, _ = _chain_centre_mm(_chest(aorta_radius_mm=8.5, aorta_left_mm=26.0, esophagus_radius_mm=None))
    assert abs(left - 26.0) <= 4.0, left


def test_the_descending_chain_is_cut_where_a_branch_stays_narrow_not_where_a_bronchus_presses_it():
    """Three narrow sections (the aorta pressed where the left main bronchus crosses) do not end the chain,
    so its top (and the arch and the heart's top bound found from it) stays in the arch; a narrow stretch
    of four or more (a branch) does."""
    from deepcac2.pipeline.anatomy.classical.aorta import cut_branches, cut_descending
    from deepcac2.pipeline.anatomy.classical.sections import Section

    radii = [12.0] * 20 + [8.0] * 3 + [12.0] * 8 + [7.0] * 5
    chain = [Section(z, 50.0, 70.0, r, 0.9) for z, r in enumerate(radii)]
    assert len(cut_descending(chain)) == 31  # up to the branch
    assert len(cut_branches(chain)) == 20  # the rule the ascending aorta keeps: the first narrow section


def test_both_chains_are_kept_the_best_one_and_the_aorta():
    """``descending_chains`` gives the best chain beside the spine (here the esophagus, which runs the whole
    scan: the arch and the heart's top are found from it, as before) and the aorta's own chain (the mask)."""
    from deepcac2.pipeline.anatomy.classical.aorta import descending_chains

    th = _chest(aorta_radius_mm=12.0, aorta_left_mm=28.0)
    best, aorta = descending_chains(th, blood_map(th.hu), th.hu >= BONE_HU)
    assert max(s.z for s in best) == SHAPE[0] - 1
    assert abs(float(np.median([(s.col - SPINE_COL) * SPACING[2] for s in best]))) <= 4.0
    below = [s for s in aorta if s.z < AORTA_TOP]
    assert len(below) >= 0.9 * AORTA_TOP
    assert abs(float(np.median([(s.col - SPINE_COL) * SPACING[2] for s in below])) - 28.0) <= 4.0


@pytest.mark.slow
def test_skipping_the_esophagus_keeps_the_heart_top_on_a_great_vessel_phantom(monkeypatch):
    """Chest 3001 (great vessels, 35 HU): with the esophagus skipped the descending aorta mask lies on the
    aorta, and the heart's top stays where the old rule put it (slice 62, the phantom's heart ends at 62),
    so all 776 voxels of its coronary calcium stay in the heart. When the arch hung on the aorta's chain
    (ends lower, radius 12 mm, arch 2 x radius + 10 mm deep) the top fell to 57 and 197 voxels were lost."""
    from deepcac2.pipeline.anatomy.classical import aorta
    from deepcac2.pipeline.anatomy.classical.orient import orientation_of
    from deepcac2.pipeline.anatomy.classical.segment import classical_anatomy
    from deepcac2.pipeline.dev.classical_evaluate import chest_spec
    from deepcac2.pipeline.synth.phantom import build_chest

    ph = build_chest(chest_spec(3001, 35.0))
    truth = (ph.cac_vessels > 0) & (ph.hu >= 130)
    monkeypatch.setattr(aorta, "SKIP_ESOPHAGUS", False)
    old = classical_anatomy(ph.hu, ph.geometry)
    monkeypatch.setattr(aorta, "SKIP_ESOPHAGUS", True)
    new = classical_anatomy(ph.hu, ph.geometry)
    heart_top = int(np.flatnonzero(orientation_of(ph.geometry).to_canonical(ph.heart).any(axis=(1, 2)))[-1])
    assert new.heart_top == old.heart_top >= heart_top - 1, (new.heart_top, old.heart_top, heart_top)
    assert (truth & new.heart).sum() == truth.sum() == 776
    th = new.thorax
    left = np.median([(s.col - th.spine_col[s.z]) * th.spacing[2] for s in new.aorta_track.descending])
    assert left > 15.0, left  # the aorta, left of the spine; the old chain (the esophagus) runs in front of it
    assert np.median([(s.col - th.spine_col[s.z]) * th.spacing[2] for s in old.aorta_track.descending]) < 10.0
