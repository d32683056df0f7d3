"""``cac_outside_heart``: coronary calcium beyond the pericardial shell, not merely outside the heart mask."""

from __future__ import annotations

import numpy as np
import pytest

from deepcac2.pipeline.convert.table_rows import PERICARDIAL_SHELL_MM, coronary_calcium_beyond_the_shell, qa_flags
from deepcac2.pipeline.stage_values import CTVolume, Geometry, Prediction
from tests.convert.synthetic import CARD

SPACING = (0.5, 0.5, 2.0)  # x, y, z in mm


def _case(offset_mm: float, axis: str) -> tuple[CTVolume, Prediction]:
    """A 20 mm heart cube and one calcium voxel ``offset_mm`` beyond its face along ``axis``."""
    shape = (40, 120, 120)
    heart = np.zeros(shape, bool)
    heart[15:25, 40:80, 40:80] = True  # z 20 mm, y and x 20 mm
    cac = np.zeros(shape, bool)
    if axis == "x":
        cac[20, 60, 79 + round(offset_mm / SPACING[0])] = True
    else:
        cac[24 + round(offset_mm / SPACING[2]), 60, 60] = True
    hu = np.where(cac, 400, 40).astype(np.int16)
    ct = CTVolume(hu=hu, geometry=Geometry(origin=(0.0, 0.0, 0.0), spacing=SPACING), series_uid="1.2.3")
    return ct, Prediction(heart=heart, cac=cac, card=CARD)


@pytest.mark.parametrize("axis", ["x", "z"])
def test_calcium_on_the_heart_surface_is_not_flagged_but_calcium_beyond_the_shell_is(axis):
    for offset, flagged in ((0.0, False), (4.0, False), (PERICARDIAL_SHELL_MM - 2.0, False), (16.0, True)):
        ct, pred = _case(offset, axis)
        assert coronary_calcium_beyond_the_shell(ct, pred) is flagged, (axis, offset)
        assert ("cac_outside_heart" in qa_flags(ct, pred, {})) is flagged, (axis, offset)


def test_calcium_with_no_heart_near_it_is_flagged():
    ct, pred = _case(4.0, "x")
    heart = np.zeros_like(pred.heart)
    heart[0:2, 0:5, 0:5] = True  # a heart far away: nothing of it inside the calcium's box
    pred = Prediction(heart=heart, cac=pred.cac, card=CARD)
    assert coronary_calcium_beyond_the_shell(ct, pred)
