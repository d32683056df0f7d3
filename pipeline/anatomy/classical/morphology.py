"""Small morphology helpers in millimetres (distance transforms: fast for big balls)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

Spacing = tuple[float, float, float]


def ball(radius_vox: tuple[float, float, float]) -> np.ndarray:
    """A boolean ellipsoid structuring element with the given radii in voxels."""
    r = [max(int(np.floor(v)), 0) for v in radius_vox]
    zz, yy, xx = np.ogrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1, -r[2] : r[2] + 1]
    rv = [max(v, 1e-6) for v in radius_vox]
    return (zz / rv[0]) ** 2 + (yy / rv[1]) ** 2 + (xx / rv[2]) ** 2 <= 1.0


def disk(radius_vox: float) -> np.ndarray:
    """A 2-D disk structuring element."""
    return ball((0.0, radius_vox, radius_vox))[0]


def erode_mm(mask: np.ndarray, radius_mm: float, spacing: Spacing) -> np.ndarray:
    """Erosion by a Euclidean ball of ``radius_mm``; the outside of the volume counts as background."""
    padded = np.pad(mask, 1)
    inner = ndi.distance_transform_edt(padded, sampling=spacing)
    return inner[tuple(slice(1, -1) for _ in range(mask.ndim))] > radius_mm


def dilate_mm(mask: np.ndarray, radius_mm: float, spacing: Spacing) -> np.ndarray:
    """Dilation by a Euclidean ball of ``radius_mm``."""
    if not mask.any():
        return mask.copy()
    return ndi.distance_transform_edt(~mask, sampling=spacing) <= radius_mm


def largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected component (face connectivity)."""
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def fill_slices(mask: np.ndarray) -> np.ndarray:
    """Holes filled slice by slice (axis 0)."""
    return np.stack([ndi.binary_fill_holes(s) for s in mask])
