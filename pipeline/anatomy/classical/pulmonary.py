"""The pulmonary trunk and its bifurcation on non-contrast CT.

The trunk leaves the right ventricle in front of and left of the aortic root, runs up
and back, and divides under the arch: the left pulmonary artery hooks over the left main
bronchus, the right one runs behind the ascending aorta. On the slices below the arch,
round sections (radius 11-20 mm) left of the ascending aorta (8-70 mm to its left, 40 mm
in front to 25 mm behind it) that do not overlap it are chained over slices; the best
chain is the trunk, and its top slice the bifurcation. The branches are the
blood-density pixels of the mediastinum connected to the trunk's top section on the
bifurcation slices (from it to ``branch_mm`` above it, within ``reach_mm`` of the trunk),
outside the aorta.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .aorta import AortaTrack, cut_branches
from .morphology import dilate_mm
from .sections import Section, best_chain, candidates, paint_sections
from .thorax import Thorax

#: the trunk is 25-35 mm across; the branches (narrower) end its chain
PA_RADII_MM = (11.0, 20.0)


@dataclass
class PulmonaryTrack:
    trunk: list[Section] = field(default_factory=list)
    mask: np.ndarray | None = None

    @property
    def bifurcation(self) -> int | None:
        """Slice of the bifurcation (the trunk's top), or None when no trunk was found."""
        return self.trunk[-1].z if self.trunk else None


def find_trunk(
    th: Thorax, blood: np.ndarray, bone: np.ndarray, aorta: AortaTrack, below_mm: float = 70.0
) -> list[Section]:
    """The pulmonary trunk: the best chain of round sections left of the ascending aorta."""
    if not aorta.ascending:
        return []
    sp = th.spacing
    asc = {s.z: s for s in aorta.ascending}
    hi = min(min(aorta.arch_slices, default=aorta.top + 1) - 1, aorta.ascending[-1].z)
    lo = max(hi - int(round(below_mm / sp[0])), 0)
    radii = np.arange(PA_RADII_MM[0], PA_RADII_MM[1] + 0.01, 1.0)
    per: dict[int, list[Section]] = {}
    for z in range(lo, hi + 1):
        a = asc.get(z)
        if a is None:
            continue
        win = (
            slice(int(a.row - 40.0 / sp[1]), int(a.row + 25.0 / sp[1])),
            slice(int(a.col + 8.0 / sp[2]), int(a.col + 70.0 / sp[2])),
        )
        found = candidates(blood[z], z, win, radii, sp[1:], bone2d=bone[z])
        # not the aorta itself: centres farther from the aortic centre than the two radii's mean
        per[z] = [
            s
            for s in found
            if np.hypot((s.row - a.row) * sp[1], (s.col - a.col) * sp[2]) > 0.5 * (s.radius_mm + a.radius_mm)
            and th.mediastinum[z, int(s.row), int(s.col)]
        ]
    chain = cut_branches(best_chain(per, sp, max_shift_mm=max(8.0, 1.2 * sp[0])))
    return chain if len(chain) >= 2 else []


def paint_pulmonary(
    th: Thorax,
    blood: np.ndarray,
    trunk: list[Section],
    aorta_mask: np.ndarray,
    branch_mm: float = 10.0,
    reach_mm: float = 60.0,
) -> np.ndarray:
    """Low-resolution pulmonary artery mask: the trunk's disks and the branches at the bifurcation."""
    sp = th.spacing
    mask = paint_sections(th.hu.shape, trunk, sp, 1.0)
    if not trunk:
        return mask
    top = trunk[-1]
    n = max(int(round(branch_mm / sp[0])), 1)
    free = blood & th.mediastinum & ~dilate_mm(aorta_mask, 2.0, sp)
    rr = (np.arange(th.hu.shape[1])[:, None] - top.row) * sp[1]
    cc = (np.arange(th.hu.shape[2])[None, :] - top.col) * sp[2]
    near = np.hypot(rr, cc) <= reach_mm
    for z in range(top.z, min(top.z + n, th.hu.shape[0] - 1) + 1):
        lab, _ = ndi.label(ndi.binary_opening(free[z]) & near)
        seed = lab[int(round(top.row)), int(round(top.col))]
        if seed:
            mask[z] |= lab == seed
    return mask & ~aorta_mask
