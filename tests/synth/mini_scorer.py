"""A second, independent way to get the expected scores: label the truth mask and score it.

The generator's truth module never labels anything; it does arithmetic on plaque box
sizes. This scorer works the other way round, from the label map and the HU volume,
with scipy connected components. When both agree, the truth is self-consistent.
It is written from the rules in FACTS.md §2 and the Convention field docs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

#: FACTS.md §2: detection threshold, then the HU where weights 2, 3, 4 start
KVP_ROWS = {70: (207, 318, 477, 636), 80: (177, 271, 408, 544), 100: (145, 222, 334, 446), 135: (119, 183, 274, 364)}


def _bands(kvp: float, adjusted: bool) -> tuple[float, ...]:
    if not adjusted:
        return (130, 200, 300, 400)
    table = {**KVP_ROWS, 120: (130, 200, 300, 400)}
    return table[min(table, key=lambda k: (abs(k - kvp), k))]


def _w(peak: float, b: tuple[float, ...]) -> int:
    return 1 + sum(peak >= x for x in b[1:])


def score(
    hu: np.ndarray,
    cac: np.ndarray,
    spacing: tuple[float, float, float],
    thickness: float,
    kvp: float,
    mass_factor: float | None,
    conv: Any,
) -> dict[str, Any]:
    b = _bands(kvp, conv.kvp_adjusted)
    if getattr(conv, "mask_threshold", True):
        mask = cac & ((hu >= b[0]) if conv.inclusive else (hu > b[0]))
    else:
        mask = cac.copy()
    px = spacing[0] * spacing[1]
    factor = (spacing[2] if conv.slice_factor == "increment" else thickness) / 3
    decimals = getattr(conv, "round_decimals", None)
    kept = np.zeros_like(mask)
    agatston = 0.0

    def add(npx: int, peak: float) -> float:
        if decimals is None:
            return npx * px * _w(peak, b) * factor
        return round(npx * round(px * factor, decimals) * _w(peak, b), decimals)

    if conv.dims == 2:
        structure = ndimage.generate_binary_structure(2, 1 if conv.connectivity == 4 else 2)
        for k in range(mask.shape[0]):
            lab, n = ndimage.label(mask[k], structure)
            for c in range(1, n + 1):
                comp = lab == c
                npx = int(comp.sum())
                if conv.min_pixels is not None and npx < conv.min_pixels:
                    continue
                if conv.min_area_mm2 is not None and not npx * px > conv.min_area_mm2:
                    continue
                agatston += add(npx, float(hu[k][comp].max()))
                kept[k] |= comp
    else:
        lab, n = ndimage.label(mask, ndimage.generate_binary_structure(3, 3))
        for c in range(1, n + 1):
            comp = lab == c
            if conv.min_volume_mm3 is not None and comp.sum() * px * spacing[2] < conv.min_volume_mm3:
                continue
            for k in np.unique(np.nonzero(comp)[0]):
                agatston += add(int(comp[k].sum()), float(hu[k][comp[k]].max()))
            kept |= comp
    _, lesions = ndimage.label(kept, ndimage.generate_binary_structure(3, 3))
    voxel = px * spacing[2]
    mass = None if mass_factor is None else mass_factor * float(hu[kept].astype(float).sum()) * voxel / 1000
    return {"agatston": agatston, "volume_mm3": float(kept.sum()) * voxel, "mass_mg": mass, "lesion_count": lesions}
