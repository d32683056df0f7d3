"""The heart on non-contrast CT, bounded above by the great vessels.

The soft tissue and fat (-250..250 HU) of the chest cavity (``Thorax.cavity``: bounded by
the lungs, the thoracic cage and the chest wall's inner surface, so it holds the heart's
front also where the heart touches the front chest wall), without the aorta and the
pulmonary artery (each grown by a few millimetres), below the pulmonary bifurcation (or,
when no pulmonary trunk was found, below the arch's bottom; a bound lower than 25 mm
above the heart's widest slice is not believed, and the heart then ends where its eroded
core's area falls under 40% of its peak), is eroded by a ball of ``erode_radius_mm`` (cuts
the hila, the esophagus, the liver dome and the spine off); the largest component on the
slices whose lung area is at least ``lung_fraction`` of the largest (below the heart the
liver dome pushes the lungs away) is the heart's core. It is grown back inside the soft
tissue by the erosion radius, then further up to the bound inside the grown heart's
footprint (the atria and the outflow tracts, thin between the aortic root and the
pulmonary trunk, have no core), and below the core only under its lowest slice (the liver
dome spreads wider); then closed and its holes filled. The mask holds the heart and its
pericardial fat (where the coronaries run)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from deepcac2.errors import DeepCACError, ErrorCode

from .morphology import ball, dilate_mm, erode_mm, fill_slices, largest
from .thorax import Thorax

SOFT_HU = (-250.0, 250.0)


def heart_core(th: Thorax, soft: np.ndarray, erode_radius_mm: float, lung_fraction: float) -> np.ndarray:
    """The eroded soft tissue's largest component on the slices with big lungs."""
    core = erode_mm(soft, erode_radius_mm, th.spacing)
    lung_area = th.lungs.sum(axis=(1, 2)).astype(float)
    core[lung_area < lung_fraction * lung_area.max()] = False
    core = largest(core)
    if not core.any():
        raise DeepCACError(ErrorCode.E_NO_HEART, "no mediastinal soft tissue large enough to be a heart")
    return core


def area_top(core: np.ndarray, area_fraction: float = 0.4) -> tuple[int, int]:
    """(peak slice, top slice) of the core's run of slices with at least ``area_fraction`` of its peak area."""
    area = core.sum(axis=(1, 2)).astype(float)
    peak = int(np.argmax(area))
    hi = peak
    while hi < len(area) - 1 and area[hi + 1] >= area_fraction * area[peak]:
        hi += 1
    return peak, hi


def find_heart(
    th: Thorax,
    vessels: np.ndarray,
    top: int | None,
    *,
    erode_radius_mm: float = 12.0,
    lung_fraction: float = 0.8,
    vessel_margin_mm: float = 3.0,
    min_height_mm: float = 25.0,
) -> tuple[np.ndarray, int, str]:
    """Low-resolution heart mask below slice ``top`` without ``vessels``; its top slice and what bounded it.

    ``top`` (from the great vessels) is used when it lies at least ``min_height_mm`` above
    the slice where the heart's core is widest; otherwise (or when None) the heart ends
    where the core's area falls under 40% of its peak, as the great vessels above it are
    narrower than the heart.
    """
    sp = th.spacing
    soft = th.cavity & (th.hu >= SOFT_HU[0]) & (th.hu <= SOFT_HU[1])
    soft &= ~dilate_mm(vessels, vessel_margin_mm, sp)
    core = heart_core(th, soft, erode_radius_mm, lung_fraction)
    peak, by_area = area_top(core)
    if top is not None and top >= peak + int(round(min_height_mm / sp[0])):
        bound, why = top, "great vessels"
    else:
        bound, why = by_area, "area"
    core[bound + 1 :] = False
    # regrown inside the soft tissue by the erosion radius, and further up to the bound (the atria
    # and the outflow tracts between the root and the trunk are too thin for the core) within the
    # grown heart's footprint (the hila lie beside it); below the core only under the core's
    # lowest slice's footprint (the liver dome spreads wider than the heart's bottom)
    grown = largest(dilate_mm(core, erode_radius_mm, sp) & soft)
    zs = np.flatnonzero(core.any(axis=(1, 2)))
    above = soft & grown.any(axis=0)[None]
    above[: zs[0]] = False
    above[bound + 1 :] = False
    heart = ndi.binary_propagation(grown, mask=grown | above)
    heart[: zs[0]] &= dilate_mm(core[zs[0]][None], erode_radius_mm / 2, (1.0, *sp[1:]))[0][None]
    heart = ndi.binary_closing(heart, structure=ball(tuple(4.0 / s for s in sp)))
    return fill_slices(heart) & ~vessels, bound, why
