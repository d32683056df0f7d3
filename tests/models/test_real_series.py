"""The classical chain (classical anatomy, classical CAC) on the real series, against the reader's notes."""

from __future__ import annotations

import numpy as np
import pytest
from reader_notes import box_mask, notes_for

from deepcac2.pipeline.models.classical.model import ClassicalModel
from deepcac2.pipeline.scoring.engine import score_series

SERIES = ["A0001-B", "A0001-L", "A0002-B40f", "A0002-B70f"]


@pytest.fixture(scope="module")
def results(real_ct):
    cache = {}

    def get(name):
        if name not in cache:
            ct = real_ct(name)
            cache[name] = (ct, ClassicalModel().analyse(ct))
        return cache[name]

    return get


def _heart_is_plausible(ct, heart: np.ndarray) -> None:
    volume_ml = heart.sum() * ct.geometry.voxel_volume_mm3 / 1000
    assert 400 <= volume_ml <= 1100, volume_ml
    hu = ct.hu[heart]
    assert (hu < -400).mean() < 0.01  # no lung or air
    assert ((hu > -250) & (hu < 250)).mean() > 0.97
    body = ct.hu > -500
    cols = np.flatnonzero(body.any(axis=(0, 1)))
    assert abs(np.nonzero(heart)[2].mean() - (cols[0] + cols[-1]) / 2) * ct.geometry.spacing[0] < 60
    rows = np.flatnonzero(body.any(axis=(0, 2)))
    assert np.nonzero(heart)[1].mean() < (rows[0] + rows[-1]) / 2 + 20


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", SERIES)
def test_real_series_calcium_by_site_matches_the_readers_note(results, name):
    ct, r = results(name)
    pred, note = r.prediction, notes_for(name)["expected"]
    _heart_is_plausible(ct, pred.heart)
    assert (ct.hu[pred.cac] >= 130).all() and (ct.hu[pred.aortic] >= 130).all()
    # nothing the reader calls aortic or hilar is counted as coronary; aortic calcium is reported
    boxes = box_mask(ct.shape, note["aortic_boxes"] + note["hilar_boxes"])
    assert int((pred.cac & boxes).sum()) == note["coronary_voxels_in_aortic_or_hilar_boxes"]
    assert int((pred.aortic & box_mask(ct.shape, note["aortic_boxes"])).sum()) >= note["aortic_voxels_min"]
    assert not (pred.cac & pred.anatomy.aorta).any()
    if note["coronary_agatston_max"] is not None:
        s = score_series(ct.hu, ct.geometry, pred.cac, convention="literature", kvp=120)
        assert s.agatston <= note["coronary_agatston_max"], s.agatston
    assert pred.rejected["aortic"] == int(pred.aortic.sum())


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["A0001-B", "A0002-B40f"])
def test_real_chest_great_vessels_are_tracked_and_kept_out_of_the_heart(real_ct, name):
    """The descending aorta is followed over the thorax, the arch lies above the heart, and the heart
    ends below it (the landmarks are the reader's, ``tests/models/real_series_notes.json``)."""
    from deepcac2.pipeline.anatomy.classical.segment import classical_anatomy

    ct = real_ct(name)
    note = notes_for(name)
    found = classical_anatomy(ct.hu, ct.geometry)
    desc = {s.z for s in found.aorta_track.descending}
    # axial series, head first: canonical slice index = array slice index
    lo, hi = note["landmarks"]["descending_aorta_slices"]
    assert len(desc & set(range(lo, hi + 1))) >= 0.9 * (hi - lo + 1), sorted(desc)
    arch_lo, arch_hi = note["landmarks"]["arch_slices"]
    assert set(found.aorta_track.arch_slices) & set(range(arch_lo, arch_hi + 1))
    heart_top = int(np.flatnonzero(found.heart.any(axis=(1, 2)))[-1])
    assert heart_top < arch_lo, (heart_top, arch_lo)
    assert heart_top <= note["landmarks"]["heart_top_max_slice"], heart_top
    # no descending aorta inside the heart: the tracked discs and the heart never share a voxel
    assert not (found.heart & found.aorta).any()
    volume_ml = found.heart.sum() * ct.geometry.voxel_volume_mm3 / 1000
    assert 400 <= volume_ml <= 1100, volume_ml
