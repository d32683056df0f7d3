"""Find the aorta above the heart and mark its wall zone inside the heart region.

On non-contrast CT the aortic blood looks like the heart, but above the heart the
ascending and the descending aorta are two round soft-tissue sections between the lungs.
Slices from the heart's top up to ``search_mm`` above it are eroded to split touching
vessels; round components of 18-45 mm diameter are aortic candidates. The one most
anterior is the ascending aorta, followed ``aortic_root_mm`` down into the heart (the
aortic root and valve); the most posterior one is the descending aorta, followed down
through the whole heart. Their wall zone (radius +- ``wall_mm``) rejects calcium there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .heart import SOFT_HU


@dataclass(frozen=True)
class AortaCircle:
    """An aortic section in the canonical view: centre (row, col) and radius, in voxels/mm."""

    kind: str  # "ascending" or "descending"
    centre: tuple[float, float]
    radius_mm: float


def find_aorta(
    hu: np.ndarray,
    mediastinum: np.ndarray,
    heart: np.ndarray,
    spacing: tuple[float, float, float],
    search_mm: float = 30.0,
) -> list[AortaCircle]:
    zs = np.flatnonzero(heart.any(axis=(1, 2)))
    if zs.size == 0:
        return []
    top = int(zs[-1])
    hi = min(hu.shape[0], top + 1 + max(int(round(search_mm / spacing[0])), 1))
    pixel_mm2 = spacing[1] * spacing[2]
    found: list[tuple[float, float, float]] = []
    for z in range(top + 1, hi):
        soft = mediastinum[z] & (hu[z] >= SOFT_HU[0] + 150) & (hu[z] <= SOFT_HU[1])
        soft = ndi.binary_opening(soft, iterations=max(int(round(3.0 / spacing[1])), 1))
        labels, n = ndi.label(soft)
        for lab in range(1, n + 1):
            comp = labels == lab
            area = comp.sum() * pixel_mm2
            r = float(np.sqrt(area / np.pi))
            if not 9.0 <= r <= 22.5:
                continue
            rows, cols = np.nonzero(comp)
            extent_mm = max(np.ptp(rows) * spacing[1], np.ptp(cols) * spacing[2]) + spacing[1]
            if extent_mm > 2.6 * r:  # not round enough
                continue
            found.append((float(rows.mean()), float(cols.mean()), r))
    if not found:
        return []
    found.sort()
    asc = found[0]
    desc = found[-1]
    out = [AortaCircle("ascending", (asc[0], asc[1]), asc[2])]
    if abs(desc[0] - asc[0]) * spacing[1] > 2 * asc[2]:
        out.append(AortaCircle("descending", (desc[0], desc[1]), desc[2]))
    return out


def aorta_wall_mask(
    shape: tuple[int, int, int],
    heart: np.ndarray,
    spacing: tuple[float, float, float],
    aortas: list[AortaCircle],
    wall_mm: float,
    aortic_root_mm: float,
) -> np.ndarray:
    """Boolean mask of the aortic wall zone over the slices where each section is followed."""
    mask = np.zeros(shape, dtype=bool)
    zs = np.flatnonzero(heart.any(axis=(1, 2)))
    if zs.size == 0 or not aortas:
        return mask
    top = int(zs[-1])
    rows = (np.arange(shape[1]) * spacing[1])[:, None]
    cols = (np.arange(shape[2]) * spacing[2])[None, :]
    for a in aortas:
        d = np.hypot(rows - a.centre[0] * spacing[1], cols - a.centre[1] * spacing[2])
        ring = np.abs(d - a.radius_mm) <= wall_mm
        if a.kind == "ascending":
            lo = max(top - int(round(aortic_root_mm / spacing[0])), 0)
            # at the root the valve sits inside the lumen: take the whole disc
            ring = d <= a.radius_mm + wall_mm
        else:
            lo = 0
        mask[lo:] |= ring[None]
    return mask
