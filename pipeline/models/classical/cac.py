"""Coronary calcium candidates inside the heart, and the rules that reject distractors.

Candidates are 3-D components (26-connected) of ``HU >= threshold``, computed over the
whole volume so that a component reaching out of the heart is seen whole. A component
that touches the search region (the heart dilated by ``margin_mm``) is kept unless:

* ``outside``: more than ``max_outside_fraction`` of its voxels lie outside the search
  region (bone next to the heart, a calcified aorta running out of it);
* ``large``: it is bigger than ``max_lesion_ml`` (sternum or spine pieces);
* ``noise``: nothing of it survives a 3x3 in-plane median filter (speckle of sharp
  kernels and low dose; a real calcification of 2 mm or more survives);
* ``aorta``: its centroid lies in the wall zone of an aortic cross-section found above
  the heart and followed down (``aorta.py``).

Kept components are cut to the search region. All rules are in the canonical view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .aorta import AortaCircle, aorta_wall_mask
from .heart import _ball


@dataclass(frozen=True)
class CACRules:
    threshold_hu: float = 130.0
    margin_mm: float = 3.0
    max_outside_fraction: float = 0.3
    max_lesion_ml: float = 5.0
    aorta_wall_mm: float = 4.0
    #: how far below the heart's top slice the ascending aorta's wall zone is followed
    aortic_root_mm: float = 30.0


@dataclass
class CACResult:
    cac: np.ndarray
    #: rule name -> number of voxels it removed (inside the search region)
    rejected: dict[str, int] = field(default_factory=dict)


def find_cac(
    hu: np.ndarray,
    heart: np.ndarray,
    spacing: tuple[float, float, float],
    aortas: list[AortaCircle],
    rules: CACRules = CACRules(),  # noqa: B008 - frozen dataclass, safe as a default
) -> CACResult:
    """CAC mask of a canonical-view CT (axis 0 superior, 1 posterior, 2 left)."""
    search = ndi.binary_dilation(heart, structure=_ball(tuple(rules.margin_mm / s for s in spacing)))
    bright = hu >= rules.threshold_hu
    labels, n = ndi.label(bright, structure=np.ones((3, 3, 3), dtype=bool))
    result = CACResult(cac=np.zeros(hu.shape, dtype=bool), rejected={"outside": 0, "large": 0, "noise": 0, "aorta": 0})
    if n == 0:
        return result
    total = np.bincount(labels.ravel(), minlength=n + 1)
    inside = np.bincount(labels[search].ravel(), minlength=n + 1)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    wall = aorta_wall_mask(hu.shape, heart, spacing, aortas, rules.aorta_wall_mm, rules.aortic_root_mm)
    centroids = ndi.center_of_mass(bright, labels, index=np.arange(1, n + 1))
    survives = _median_survivors(hu, search, labels, n, rules.threshold_hu)
    keep = np.zeros(n + 1, dtype=bool)
    for lab in np.flatnonzero(inside[1:]) + 1:
        outside_fraction = 1.0 - inside[lab] / total[lab]
        if outside_fraction > rules.max_outside_fraction:
            result.rejected["outside"] += int(inside[lab])
        elif total[lab] * voxel_ml > rules.max_lesion_ml:
            result.rejected["large"] += int(inside[lab])
        elif not survives[lab]:
            result.rejected["noise"] += int(inside[lab])
        elif wall[tuple(int(round(c)) for c in centroids[lab - 1])]:
            result.rejected["aorta"] += int(inside[lab])
        else:
            keep[lab] = True
    result.cac = keep[labels] & search
    return result


def _median_survivors(hu: np.ndarray, search: np.ndarray, labels: np.ndarray, n: int, threshold: float) -> np.ndarray:
    """Per label: does any of its voxels stay >= threshold after a 3x3 in-plane median?"""
    out = np.zeros(n + 1, dtype=bool)
    box = ndi.find_objects(search.astype(np.uint8))
    if not box or box[0] is None:
        return out
    sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box[0])
    med = ndi.median_filter(hu[sl], size=(1, 3, 3))
    lab = labels[sl]
    out[np.unique(lab[(med >= threshold) & (lab > 0)])] = True
    return out
