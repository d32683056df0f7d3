"""Find the aorta above the heart and mark its wall zone inside the heart region.

On non-contrast CT the aortic blood looks like the heart, but above the heart the
ascending and the descending aorta are two round soft-tissue sections between the lungs.
Slices from the heart's top up to ``search_mm`` above it are eroded to split touching
vessels; round components of 18-45 mm diameter are aortic candidates. The one most
anterior is the ascending aorta, followed ``aortic_root_mm`` down into the heart (the
aortic root and valve); the most posterior one is the descending aorta, followed down
through the whole heart. Calcium in the descending wall ring (radius +- ``wall_mm``) that
reaches into the section (wall calcium borders the lumen; a coronary next to the aorta
does not), or in the inner 90% of the ascending section (the valve cusps) is rejected; in the rest of
the root disc (out to 1 mm beyond the radius) it is rejected only when it is away from
fat, because the coronary ostia sit right at the root wall, in fat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

BLOOD_MIN_HU = -30.0
BLOOD_MAX_HU = 120.0
MIN_RADIUS_MM, MAX_RADIUS_MM = 9.0, 22.5
#: the aortic valve core: this fraction of the ascending aorta's fitted radius
VALVE_FRACTION = 0.9
#: the root zone reaches this far beyond the fitted radius
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


#: labels of ``aorta_zones``
SURE, ROOT, DESCENDING = 1, 2, 3


def refine_radius(view: np.ndarray, circle: AortaCircle, spacing, slices: range) -> AortaCircle:
    """Re-measure a section's radius at full resolution (the low-resolution fit runs small).

    Per slice: blood-density pixels after a 3x3 median, the component holding the centre,
    radius of the disc of the same area; the median over the slices.
    """
    r0, c0 = (int(round(v)) for v in circle.centre)
    half = int(np.ceil(2 * MAX_RADIUS_MM / spacing[1]))
    lo_r, lo_c = max(r0 - half, 0), max(c0 - half, 0)
    radii = []
    for z in slices:
        win = ndi.median_filter(view[z, lo_r : r0 + half + 1, lo_c : c0 + half + 1], size=3)
        labels, _ = ndi.label((win >= BLOOD_MIN_HU) & (win <= BLOOD_MAX_HU))
        lab = labels[r0 - lo_r, c0 - lo_c]
        if lab:
            radii.append(float(np.sqrt((labels == lab).sum() * spacing[1] * spacing[2] / np.pi)))
    if not radii:
        return circle
    r = float(np.median(radii))
    # keep the low-resolution fit when the refinement leaks into a neighbour
    return AortaCircle(circle.kind, circle.centre, r if r <= 1.5 * circle.radius_mm + 3.0 else circle.radius_mm)


def aorta_zones(
    shape: tuple[int, int, int],
    heart: np.ndarray,
    spacing: tuple[float, float, float],
    aortas: list[AortaCircle],
    wall_mm: float,
    aortic_root_mm: float,
) -> np.ndarray:
    """uint8 map: ``SURE`` = valve core; ``ROOT`` = rest of the root disc; ``DESCENDING`` = wall ring.

    Calcium in ``ROOT`` is aortic only when it is also away from fat (see ``cac.py``):
    the coronary ostia sit at the root wall, in fat.
    """
    zones = np.zeros(shape, dtype=np.uint8)
    zs = np.flatnonzero(heart.any(axis=(1, 2)))
    if zs.size == 0 or not aortas:
        return zones
    top = int(zs[-1])
    rows = (np.arange(shape[1]) * spacing[1])[:, None]
    cols = (np.arange(shape[2]) * spacing[2])[None, :]
    for a in aortas:
        d = np.hypot(rows - a.centre[0] * spacing[1], cols - a.centre[1] * spacing[2])
        if a.kind == "ascending":
            lo = max(top - int(round(aortic_root_mm / spacing[0])), 0)
            root = (d <= a.radius_mm + ROOT_MARGIN_MM)[None]
            zones[lo:][root & (zones[lo:] == 0)] = ROOT
            zones[lo:][np.broadcast_to((d <= VALVE_FRACTION * a.radius_mm)[None], zones[lo:].shape)] = SURE
        else:
            zones[:, (np.abs(d - a.radius_mm) <= wall_mm) & (zones[0] == 0)] = DESCENDING
    return zones
