"""The classical anatomy's ascending aorta (issue 21): the aorta, not the superior vena cava beside it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from deepcac2.pipeline.anatomy.classical.aorta import find_ascending
from deepcac2.pipeline.anatomy.classical.sections import Section, paint_sections

SPACING = (2.5, 2.0, 2.0)


def _disks(shape, centre, radius_mm, slices):
    return paint_sections(shape, [Section(z, *centre, radius_mm, 1.0) for z in slices], SPACING)


@pytest.mark.xfail(
    strict=True,
    reason="known defect (docs/models.md, 'root' paragraph of issue 21's aorta chain and aortic root): the chain "
    "with the highest total score is taken, so the longer vena cava wins; choosing the widest chain alone "
    "moved the trunk and heart bounds and made the phantoms worse",
)
def test_the_ascending_aorta_is_the_widest_chain_not_the_longer_vena_cava():
    # the superior vena cava (radius 9 mm) runs the whole scan, free in lung; the ascending aorta (15 mm)
    # only its upper half (on the phantoms seeds 2000, 2018, 6018, 6019 the chain takes the vena cava)
    shape = (40, 120, 120)
    desc = [Section(z, 100.0, 80.0, 12.0, 1.0) for z in range(40)]
    svc = _disks(shape, (50.0, 30.0), 9.0, range(40))
    aorta = _disks(shape, (50.0, 60.0), 15.0, range(20, 40))
    blood = svc | aorta | paint_sections(shape, desc, SPACING)
    th = SimpleNamespace(spacing=SPACING, mediastinum=np.ones(shape, dtype=bool))
    asc = find_ascending(th, blood, np.zeros(shape, dtype=bool), desc)
    assert asc, "no ascending aorta found"
    assert all(abs(s.col - 60.0) <= 2 and abs(s.row - 50.0) <= 2 for s in asc)
