"""The ``valve`` rule at an aortic root the anatomy tracked a few millimetres off the valve's centre (issue 21).

The classical anatomy leaves the root out of its aorta under the heart's top and gives the root's disk
(``Anatomy.structures["aortic_root"]``) instead; the rule reads a cusp in the root's blood as the valve
wherever the disk runs, and keeps an ostial plaque, in fat at the root's wall, coronary.
"""

from __future__ import annotations

import numpy as np

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance
from deepcac2.pipeline.models.classical.candidate_rules import RULES, apply_rules
from deepcac2.pipeline.models.classical.model import ClassicalModel

SPACING = (1.0, 1.0, 2.0)  # (x, y, z) mm


def _root_chest():
    """Fat, a heart (cylinder r 18 mm, z < 30) and the aortic root over its front (blood, r 12 mm) in the fat;
    two calcified cusps in the root's blood (7 mm = 0.6 x its radius from its axis, 5 mm from the fat), a
    left-main plaque in the fat against its left wall, and the root's disk tracked 6 mm left of its axis."""
    shape = (40, 80, 80)
    hu = np.full(shape, -100.0, np.float32)
    zz, yy, xx = np.indices(shape)
    heart = ((xx - 40) ** 2 + (yy - 40) ** 2 <= 18**2) & (zz >= 5) & (zz < 30)
    root = ((xx - 40) ** 2 + (yy - 20) ** 2 <= 12**2) & (zz >= 26)
    hu[heart | root] = 40.0
    cusps = [(slice(32, 34), slice(19, 22), slice(46, 49)), (slice(32, 34), slice(19, 22), slice(32, 35))]
    for c in cusps:
        hu[c] = 500.0
    plaque = (slice(32, 34), slice(19, 22), slice(52, 55))  # x 52-54: the root's wall ends at x 52
    hu[plaque] = 400.0
    disk = ((xx - 46) ** 2 + (yy - 20) ** 2 <= 14.5**2) & (zz >= 26) & (zz < 36)
    return hu, heart, disk, cusps, plaque


def test_cusps_in_an_off_centre_root_disk_are_valve_and_the_ostial_plaque_stays_coronary():
    hu, heart, disk, cusps, plaque = _root_chest()
    empty = np.zeros_like(heart)
    old = apply_rules(hu, SPACING, heart, empty, empty)  # no root given: the cusps pass as coronary
    assert all(old.cac[c].all() for c in cusps) and old.cac[plaque].all()
    r = apply_rules(hu, SPACING, heart, empty, empty, root_disk=disk)
    for c in cusps:
        assert disk[c].any()
        assert not r.cac[c].any() and int(r.rule_map[c].max()) == 2 + RULES.index("valve")
        assert r.aortic_valve[c].all() and not r.mitral_annular[c].any()
    assert disk[plaque].all(), "the plaque lies in the off-centre disk: the fat must keep it coronary"
    assert r.cac[plaque].all(), r.rejected


def test_the_model_passes_the_anatomys_root_disk_to_the_rules():
    hu, heart, disk, cusps, plaque = _root_chest()
    empty = np.zeros_like(heart)
    ct = stage_values.CTVolume(hu=hu, geometry=stage_values.Geometry((0.0, 0.0, 0.0), SPACING), series_uid="s")
    given = Anatomy(heart, empty, empty, AnatomyProvenance("given", "0"), structures={"aortic_root": disk})
    pred = ClassicalModel().predict(ct, given)
    assert not any(pred.cac[c].any() for c in cusps) and pred.cac[plaque].all()
    assert pred.aortic_valve[cusps[0]].all()
