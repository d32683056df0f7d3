"""Coronary calcium candidates inside the heart, and the rules that reject distractors.

Candidates are 3-D components (26-connected) of ``HU >= threshold`` in a box around the
heart (``context_mm`` wider than the search region, so that a component reaching out of
the heart is seen far enough). The search region is the heart dilated by ``margin_mm``,
extended ``superior_mm`` above the heart's top over the footprint of its upper 20 mm
(the left main and the ostia sit at the aortic root, where the localiser's heart ends).
A component that touches the search region is kept unless:

* ``outside``: more than ``max_outside_fraction`` of its voxels lie outside the search
  region (bone next to the heart, a calcified aorta running out of it);
* ``large``: it is bigger than ``max_lesion_ml`` (sternum or spine pieces);
* ``noise``: it is not significant against the image noise: with ``n`` voxels of mean
  HU ``m`` and the noise SD ``s`` of the heart (robust, from the median absolute
  deviation), ``(m - threshold) * sqrt(n) / s < min_significance``. Noise clusters sit
  just above the threshold; a plaque is well above it or large. On a noise-free image
  everything above the threshold is significant;
* ``deep``: its centroid lies more than ``max_depth_mm`` from any fat layer (coronaries
  run in the epicardial fat; the mitral annulus and the valves sit in muscle and blood);
* ``aorta``: its centroid lies in an aortic zone found above the heart and followed
  down (``aorta.py``): the descending wall ring when it also reaches into the section,
  the valve core, or the root disc when more than ``root_fat_mm`` from fat.

Kept components are cut to the search region. All rules run in the canonical view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .aorta import DESCENDING, ROOT, SURE, AortaCircle, aorta_zones
from .heart import HeartParts, dilate_mm


@dataclass(frozen=True)
class CACRules:
    threshold_hu: float = 130.0
    margin_mm: float = 6.0
    context_mm: float = 40.0
    max_outside_fraction: float = 0.3
    max_lesion_ml: float = 5.0
    superior_mm: float = 12.0
    max_depth_mm: float = 8.0
    min_significance: float = 2.5
    fat_hu: tuple[float, float] = (-250.0, -30.0)
    aorta_wall_mm: float = 4.0
    #: in the aortic root zone, calcium farther than this from fat is valve, not ostium
    root_fat_mm: float = 3.0
    #: how far below the heart's top slice the ascending aorta's wall zone is followed
    aortic_root_mm: float = 30.0


RULES = ("outside", "large", "noise", "deep", "aorta")


@dataclass
class CACResult:
    cac: np.ndarray
    #: rule name -> number of voxels it removed (inside the search region)
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))


def _box(mask: np.ndarray, margin: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    return tuple(
        slice(max(int(i[0]) - m, 0), min(int(i[-1]) + m + 1, n))
        for i, m, n in zip(idx, margin, mask.shape, strict=True)
    )  # type: ignore[return-value]


def find_cac(
    hu: np.ndarray,
    spacing: tuple[float, float, float],
    parts: HeartParts,
    aortas: list[AortaCircle],
    rules: CACRules = CACRules(),  # noqa: B008 - frozen dataclass, safe as a default
) -> CACResult:
    """CAC mask of a canonical-view CT (axis 0 superior, 1 posterior, 2 left) at full resolution."""
    result = CACResult(cac=np.zeros(hu.shape, dtype=bool))
    search_full = parts.upsample(_search_region(parts, rules), hu.shape)
    if not search_full.any():
        return result
    box = _box(search_full, tuple(int(np.ceil(rules.context_mm / s)) for s in spacing))
    sub, search = hu[box], search_full[box]
    bright = sub >= rules.threshold_hu
    labels, n = ndi.label(bright, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return result
    total = np.bincount(labels.ravel(), minlength=n + 1)
    inside = np.bincount(labels[search].ravel(), minlength=n + 1)
    touching = np.flatnonzero(inside[1:]) + 1
    voxel_ml = float(np.prod(spacing)) / 1000.0
    offset = [s.start for s in box]
    zones = aorta_zones(
        hu.shape, parts.upsample(parts.heart, hu.shape), spacing, aortas, rules.aorta_wall_mm, rules.aortic_root_mm
    )[box]
    centroids = dict(zip(touching, ndi.center_of_mass(bright, labels, index=touching), strict=True))
    sd = noise_sd(sub, parts.upsample(parts.heart, hu.shape)[box])
    mean = np.bincount(labels.ravel(), weights=sub.ravel().astype(np.float64), minlength=n + 1) / np.maximum(total, 1)
    significance = (mean - rules.threshold_hu) * np.sqrt(total) / sd
    # a 3x3 in-plane median keeps fat layers of 2+ low-resolution pixels, drops noisy blood pixels
    smooth = ndi.median_filter(parts.hu, size=(1, 3, 3))
    fat = (smooth >= rules.fat_hu[0]) & (smooth <= rules.fat_hu[1])
    depth = ndi.distance_transform_edt(~fat, sampling=parts.spacing) if fat.any() else np.full(fat.shape, np.inf)
    f = parts.factor
    keep = np.zeros(n + 1, dtype=bool)
    for lab in touching:
        centre = tuple(int(round(c)) for c in centroids[lab])
        full = (centre[0] + offset[0], centre[1] + offset[1], centre[2] + offset[2])
        low = (full[0], min(full[1] // f[0], depth.shape[1] - 1), min(full[2] // f[1], depth.shape[2] - 1))
        if 1.0 - inside[lab] / total[lab] > rules.max_outside_fraction:
            rule = "outside"
        elif total[lab] * voxel_ml > rules.max_lesion_ml:
            rule = "large"
        elif significance[lab] < rules.min_significance:
            rule = "noise"
        elif depth[low] > rules.max_depth_mm:
            rule = "deep"
        elif (
            zones[centre] == SURE
            or (zones[centre] == ROOT and not _fat_within(sub, centre, rules.root_fat_mm, spacing, rules.fat_hu))
            or (zones[centre] == DESCENDING and _reaches_inside(labels, lab, offset, spacing, aortas))
        ):
            rule = "aorta"
        else:
            keep[lab] = True
            continue
        result.rejected[rule] += int(inside[lab])
    result.cac[box] = keep[labels] & search
    return result


def _reaches_inside(labels: np.ndarray, lab: int, offset, spacing, aortas: list[AortaCircle]) -> bool:
    """Does component ``lab`` have a voxel inside the descending aortic section (in-plane)?"""
    rows, cols = np.nonzero((labels == lab).any(axis=0))
    rows, cols = (rows + offset[1]) * spacing[1], (cols + offset[2]) * spacing[2]
    for a in aortas:
        if a.kind == "descending":
            d = np.hypot(rows - a.centre[0] * spacing[1], cols - a.centre[1] * spacing[2])
            # half a pixel diagonal: a voxel whose extent (not centre) reaches the section counts
            if (d < a.radius_mm + 0.5 * np.hypot(spacing[1], spacing[2])).any():
                return True
    return False


def _fat_within(
    hu: np.ndarray, centre: tuple[int, int, int], radius_mm: float, spacing: tuple[float, float, float], fat_hu
) -> bool:
    """Is there a fat voxel within ``radius_mm`` of ``centre`` (full resolution)?"""
    r = [int(np.floor(radius_mm / s)) for s in spacing]
    lo = [max(c - ri, 0) for c, ri in zip(centre, r, strict=True)]
    win = hu[tuple(slice(a, c + ri + 1) for a, c, ri in zip(lo, centre, r, strict=True))]
    grids = np.ogrid[tuple(slice(0, n) for n in win.shape)]
    d2 = sum(((g + a - c) * s) ** 2 for g, a, c, s in zip(grids, lo, centre, spacing, strict=True))
    return bool(((win >= fat_hu[0]) & (win <= fat_hu[1]) & (d2 <= radius_mm**2)).any())


def _search_region(parts: HeartParts, rules: CACRules) -> np.ndarray:
    """The heart dilated by the margin, extended upwards over its top's footprint (low resolution)."""
    search = dilate_mm(parts.heart, rules.margin_mm, parts.spacing)
    zs = np.flatnonzero(parts.heart.any(axis=(1, 2)))
    if zs.size:
        top = int(zs[-1])
        upper = parts.heart[max(top - int(round(20.0 / parts.spacing[0])), 0) : top + 1].any(axis=0)
        n_up = int(round(rules.superior_mm / parts.spacing[0]))
        search[top + 1 : top + 1 + n_up] |= upper
    return search


def noise_sd(hu: np.ndarray, heart: np.ndarray) -> float:
    """Robust noise SD (HU) of the heart's blood and muscle: 1.4826 x MAD, at least 1 HU."""
    values = hu[heart & (hu > -30) & (hu < 300)][::3].astype(np.float64)
    if values.size < 100:
        return 1.0
    mad = float(np.median(np.abs(values - np.median(values))))
    return max(1.4826 * mad, 1.0)
