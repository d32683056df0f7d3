"""The classical heart on every real chest in ../shared/data: the whole pericardial sac, from the front
chest wall (where the heart touches it, no lung between) back to the descending aorta, and nothing else.

Landmarks (read by looking) are in ``real_series_notes.json`` under ``heart_front``.
"""

from __future__ import annotations

import numpy as np
import pytest
from reader_notes import notes_for

from deepcac2.pipeline.anatomy.classical.segment import classical_anatomy

#: an adult heart (chambers and myocardium) is 500-900 mL on CT, its epicardial and pericardial fat
#: 50-250 mL more: below 400 mL the mask lost part of the heart (LUNG1-001 gave 360 mL when its front
#: was dropped), above 1100 mL it took liver, chest wall or hila
VOLUME_ML = (400.0, 1100.0)
#: every real chest in ../shared/data (``conftest.REAL_SERIES``)
CHESTS = ["A0001-B", "A0001-L", "A0002-B40f", "A0002-B70f", "LUNG1-001"]


@pytest.fixture(scope="module")
def hearts(real_ct):
    cache = {}

    def get(name):
        if name not in cache:
            ct = real_ct(name)
            cache[name] = (ct, classical_anatomy(ct.hu, ct.geometry))
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", CHESTS)
def test_real_heart_reaches_the_front_wall_and_holds_no_lung(hearts, name):
    ct, found = hearts(name)
    heart, aorta = found.heart, found.aorta
    sy = ct.geometry.spacing[1]
    volume_ml = heart.sum() * ct.geometry.voxel_volume_mm3 / 1000
    assert VOLUME_ML[0] <= volume_ml <= VOLUME_ML[1], volume_ml
    hu = ct.hu[heart]
    assert (hu < -400).mean() < 0.01, "lung or air inside the heart"  # the 2 mm mask's border: partial volume
    # front: where the heart touches the chest wall, the mask reaches the wall's back surface
    front = notes_for("heart_front")
    for mark in front[name]:
        z, col, wall = mark["slice"], mark["column"], mark["wall_back_row"]
        rows = np.flatnonzero(heart[z, :, col - 1 : col + 2].any(axis=1))
        assert rows.size, (mark, "no heart in the landmark's column")
        gap_mm = (rows[0] - wall) * sy
        assert -2.0 <= gap_mm <= front["max_gap_mm"], (mark, rows[0], gap_mm)
    # back: the heart reaches the descending aorta (within 10 mm) on the slices through its middle,
    # and never holds it
    assert not (heart & aorta).any()
    ks = np.flatnonzero(heart.any(axis=(1, 2)))
    mid = ks[len(ks) // 3 : 2 * len(ks) // 3 + 1]
    near = 0
    for z in mid:
        if not aorta[z].any():
            continue
        back = np.flatnonzero(heart[z].any(axis=1))[-1]
        near += (np.flatnonzero(aorta[z].any(axis=1))[0] - back) * sy <= 10.0
    assert near >= 0.8 * len(mid), (near, len(mid))
    # not the sternum, ribs or calcified cartilage (bone density inside the heart is calcium only)
    assert (hu >= 300).mean() < 0.002
