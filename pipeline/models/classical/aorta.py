"""Find the aorta above the heart and mark its wall zone inside the heart region.

On non-contrast CT the aortic blood looks like the heart, but above the heart the
ascending and the descending aorta are two round soft-tissue sections between the lungs.
Slices from the heart's top up to ``search_mm`` above it are eroded to split touching
vessels; round components of 18-45 mm diameter are aortic candidates. The one most
anterior is the ascending aorta, followed ``aortic_root_mm`` down into the heart (the
aortic root and valve); the most posterior one is the descending aorta, followed down
through the whole heart. Calcium in the ascending zone (the disc out to 1 mm beyond
the radius: valve and root wall, not the coronary ostia just outside) or in the
descending wall ring (radius +- ``wall_mm``) is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

BLOOD_MIN_HU = -30.0
BLOOD_MAX_HU = 120.0
MIN_RADIUS_MM, MAX_RADIUS_MM = 9.0, 22.5
#: the ascending aorta's zone reaches this far beyond its fitted radius
ROOT_MARGIN_MM = 1.0


@dataclass(frozen=True)
class AortaCircle:
    """An aortic section in the canonical view: centre (row, col) and radius, in voxels/mm."""

    kind: str  # "ascending" or "descending"
    centre: tuple[float, float]
    radius_mm: float


def _round_sections(
    hu: np.ndarray, mediastinum: np.ndarray, spacing: tuple[float, float, float], z: int
) -> list[tuple[float, float, float]]:
    """Round blood-density sections (row, col, radius_mm) of one slice."""
    soft = mediastinum[z] & (hu[z] >= BLOOD_MIN_HU) & (hu[z] <= BLOOD_MAX_HU)
    soft = ndi.binary_opening(soft, iterations=max(int(round(3.0 / spacing[1])), 1))
    labels, n = ndi.label(soft)
    out = []
    for lab in range(1, n + 1):
        rows, cols = np.nonzero(labels == lab)
        r = float(np.sqrt(rows.size * spacing[1] * spacing[2] / np.pi))
        if not MIN_RADIUS_MM <= r <= MAX_RADIUS_MM:
            continue
        extent_mm = max(np.ptp(rows) * spacing[1], np.ptp(cols) * spacing[2]) + spacing[1]
        if extent_mm <= 2.6 * r:  # round, not a band
            out.append((float(rows.mean()), float(cols.mean()), r))
    return out


def find_aorta(
    hu: np.ndarray,
    mediastinum: np.ndarray,
    heart: np.ndarray,
    spacing: tuple[float, float, float],
    search_mm: float = 40.0,
    min_presence: float = 0.5,
) -> list[AortaCircle]:
    """Aortic sections above the heart: round blood sections seen at the same place in most slices.

    Requiring presence in ``min_presence`` of the searched slices drops things that are
    round in one slice only (an intervertebral disc where the spine has no bone).
    """
    zs = np.flatnonzero(heart.any(axis=(1, 2)))
    if zs.size == 0:
        return []
    top = int(zs[-1])
    slices = range(top + 1, min(hu.shape[0], top + 1 + max(int(round(search_mm / spacing[0])), 1)))
    if len(slices) == 0:
        return []
    # cluster sections whose centres are within 10 mm of a cluster's first member
    clusters: list[list[tuple[float, float, float]]] = []
    for z in slices:
        for sec in _round_sections(hu, mediastinum, spacing, z):
            for cl in clusters:
                if np.hypot((sec[0] - cl[0][0]) * spacing[1], (sec[1] - cl[0][1]) * spacing[2]) < 10.0:
                    cl.append(sec)
                    break
            else:
                clusters.append([sec])
    steady = [np.mean(cl, axis=0) for cl in clusters if len(cl) >= max(2, min_presence * len(slices))]
    if not steady:
        return []
    steady.sort(key=lambda c: c[0])  # anterior first
    asc, desc = steady[0], steady[-1]
    out = [AortaCircle("ascending", (float(asc[0]), float(asc[1])), float(asc[2]))]
    if len(steady) > 1:
        out.append(AortaCircle("descending", (float(desc[0]), float(desc[1])), float(desc[2])))
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
        if a.kind == "ascending":
            # root and valve: the lumen up to just outside the wall; the coronary ostia lie beyond
            ring = d <= a.radius_mm + ROOT_MARGIN_MM
            lo = max(top - int(round(aortic_root_mm / spacing[0])), 0)
        else:
            ring = np.abs(d - a.radius_mm) <= wall_mm
            lo = 0
        mask[lo:] |= ring[None]
    return mask
