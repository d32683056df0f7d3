"""Heart localisation on non-contrast chest CT with thresholds and morphology.

Runs on a low-resolution canonical view (axis 0 superior, 1 posterior, 2 left; about
2 mm in-plane) and returns a mask on the original grid. The steps:

1. body: the largest component above -500 HU (after an in-plane opening that detaches
   the table), holes filled slice by slice;
2. lungs: below -400 HU inside the body, components of at least 50 mL;
3. mediastinum: voxels with lung on both their left and their right in the same row,
   anterior to the front of the spine (the first large bone >= 200 HU near the midline);
4. heart: soft tissue and fat (-250..250 HU) of the mediastinum, eroded by a ball of
   ``erode_radius_mm`` to cut the great vessels, the liver dome and the spine off; the
   largest component on the slices whose lung area is at least ``lung_fraction`` of the largest
   (below the heart the liver dome pushes the lungs away), kept only on the slices where
   its area is at least ``area_fraction`` of the largest slice (drops the great vessels
   above), dilated back inside the soft tissue and closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.types import Geometry

from .orient import orientation_of

LUNG_HU = -400.0
BODY_HU = -500.0
SOFT_HU = (-250.0, 250.0)
SPINE_HU = 200.0
#: a bone must be wider than about twice this to be the spine
SPINE_MIN_MM = 4.0


def _ball(radius_vox: tuple[float, float, float]) -> np.ndarray:
    r = [max(int(np.floor(v)), 0) for v in radius_vox]
    zz, yy, xx = np.ogrid[-r[0] : r[0] + 1, -r[1] : r[1] + 1, -r[2] : r[2] + 1]
    rv = [max(v, 1e-6) for v in radius_vox]
    return (zz / rv[0]) ** 2 + (yy / rv[1]) ** 2 + (xx / rv[2]) ** 2 <= 1.0


def erode_mm(mask: np.ndarray, radius_mm: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """Erosion by a Euclidean ball of ``radius_mm`` (a distance transform: fast for big balls)."""
    padded = np.pad(mask, 1)  # the outside of the volume counts as background
    return ndi.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1] > radius_mm


def dilate_mm(mask: np.ndarray, radius_mm: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """Dilation by a Euclidean ball of ``radius_mm``."""
    if not mask.any():
        return mask.copy()
    return ndi.distance_transform_edt(~mask, sampling=spacing) <= radius_mm


def _disk(radius_vox: float) -> np.ndarray:
    b = _ball((0.0, radius_vox, radius_vox))
    return b


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    return np.stack([ndi.binary_fill_holes(s) for s in mask])


def _between_left_right(lungs: np.ndarray) -> np.ndarray:
    """Voxels with a lung voxel somewhere to their left and to their right in the same row."""
    right = np.maximum.accumulate(lungs, axis=2)  # lung at this x or at a smaller x
    left = np.maximum.accumulate(lungs[:, :, ::-1], axis=2)[:, :, ::-1]
    return right & left & ~lungs


def _front_of_spine(low: np.ndarray, body: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Per slice, the mask of voxels anterior to the spine's front edge (near the midline).

    The spine is the first large bone (>= ``SPINE_HU``, holes filled, survives an opening
    of ``SPINE_MIN_MM``) on the posterior half of the midline band; calcium specks, the
    sternum and the ribs do not count.
    """
    nz, ny, nx = low.shape
    keep = np.ones(low.shape, dtype=bool)
    half_width = max(int(round(15.0 / spacing[2])), 1)
    disk = _disk(SPINE_MIN_MM / spacing[1])
    for z in range(nz):
        cols = np.flatnonzero(body[z].any(axis=0))
        if cols.size == 0:
            continue
        mid = (cols[0] + cols[-1]) // 2
        lo, hi = max(mid - half_width, 0), mid + half_width + 1
        bone = ndi.binary_fill_holes(low[z] >= SPINE_HU)
        bone = ndi.binary_opening(bone, structure=disk[0])
        rows = np.flatnonzero(bone[:, lo:hi].any(axis=1))
        rows = rows[rows > ny // 2]
        if rows.size:
            keep[z, rows[0] :, :] = False
    return keep


@dataclass
class HeartParts:
    """Masks of the canonical low-resolution view, and how to get back to full resolution."""

    heart: np.ndarray
    mediastinum: np.ndarray
    hu: np.ndarray
    spacing: tuple[float, float, float]
    #: in-plane block factors (rows, cols) between the full and the low-resolution view
    factor: tuple[int, int]

    def upsample(self, mask: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """Nearest upsampling of a low-resolution mask to the full canonical view shape."""
        up = mask.repeat(self.factor[0], axis=1).repeat(self.factor[1], axis=2)[:, : shape[1], : shape[2]]
        return np.pad(up, [(0, shape[i] - up.shape[i]) for i in range(3)], mode="edge")


def lungs_and_mediastinum(hu: np.ndarray, spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Lung and mediastinum masks of a canonical-view (S, P, L) HU array (steps 1-3 above)."""
    body = _largest(ndi.binary_opening(hu > BODY_HU, structure=_disk(3.0 / spacing[1])))
    body = _fill_slices(body)
    lungs = (hu < LUNG_HU) & body
    lab, n = ndi.label(lungs)
    if n == 0:
        raise DeepCACError(ErrorCode.E_NO_HEART, "no lungs found (nothing below -400 HU inside the body)")
    voxel_ml = float(np.prod(spacing)) / 1000.0
    sizes = np.bincount(lab.ravel()) * voxel_ml
    sizes[0] = 0
    lungs = np.isin(lab, np.flatnonzero(sizes >= 50.0))
    return lungs, _between_left_right(lungs) & _front_of_spine(hu, body, spacing)


def localise_heart_canonical(
    hu: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    erode_radius_mm: float = 12.0,
    area_fraction: float = 0.4,
    lung_fraction: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """Heart and mediastinum masks of a canonical-view (S, P, L) HU array (voxel sizes in mm)."""
    lungs, mediastinum = lungs_and_mediastinum(hu, spacing)
    soft = mediastinum & (hu >= SOFT_HU[0]) & (hu <= SOFT_HU[1])
    core = erode_mm(soft, erode_radius_mm, spacing)
    # below the heart the liver dome pushes the lungs away: keep slices with big lungs
    lung_area = lungs.sum(axis=(1, 2)).astype(float)
    core[lung_area < lung_fraction * lung_area.max()] = False
    core = _largest(core)
    if not core.any():
        raise DeepCACError(ErrorCode.E_NO_HEART, "no mediastinal soft tissue large enough to be a heart")
    area = core.sum(axis=(1, 2)).astype(float)
    peak = int(np.argmax(area))
    run = area >= area_fraction * area[peak]
    lo, hi = peak, peak
    while lo > 0 and run[lo - 1]:
        lo -= 1
    while hi < len(run) - 1 and run[hi + 1]:
        hi += 1
    core[:lo] = False
    core[hi + 1 :] = False
    heart = dilate_mm(core, erode_radius_mm, spacing) & soft
    heart = _largest(heart)
    heart = ndi.binary_closing(heart, structure=_ball(tuple(4.0 / s for s in spacing)))
    return _fill_slices(heart), mediastinum


def _low_resolution(
    view: np.ndarray, spacing: tuple[float, float, float], target_mm: float
) -> tuple[np.ndarray, tuple[float, float, float], tuple[int, int]]:
    """In-plane block average of a canonical view to about ``target_mm``: (low view, its spacing, factors)."""
    f = (max(int(round(target_mm / spacing[1])), 1), max(int(round(target_mm / spacing[2])), 1))
    low = view.astype(np.float32)
    if f != (1, 1):
        low = ndi.uniform_filter(low, size=(1, *f))[:, :: f[0], :: f[1]]
    return low, (spacing[0], spacing[1] * f[0], spacing[2] * f[1]), f


def heart_parts(
    view: np.ndarray, spacing: tuple[float, float, float], target_mm: float = 2.0, **kw: float
) -> HeartParts:
    """Localise the heart in a canonical view after in-plane block averaging to about ``target_mm``."""
    low, low_spacing, f = _low_resolution(view, spacing, target_mm)
    heart, mediastinum = localise_heart_canonical(low, low_spacing, **kw)
    return HeartParts(heart=heart, mediastinum=mediastinum, hu=low, spacing=low_spacing, factor=f)


def parts_from_heart(
    view: np.ndarray, spacing: tuple[float, float, float], heart: np.ndarray, target_mm: float = 2.0
) -> HeartParts:
    """The low-resolution parts of a canonical view around a given full-resolution ``heart`` (an anatomy's).

    A low-resolution pixel is heart when at least half of its block is; the mediastinum
    is computed as the localiser computes it (the aortic rules need it).
    """
    low, low_spacing, f = _low_resolution(view, spacing, target_mm)
    # blocks aligned with HeartParts.upsample, so a localiser heart comes back unchanged
    nz, ny, nx = low.shape
    padded = np.zeros((nz, ny * f[0], nx * f[1]), dtype=np.float32)
    padded[:, : heart.shape[1], : heart.shape[2]] = heart
    share = padded.reshape(nz, ny, f[0], nx, f[1]).mean(axis=(2, 4))
    _, mediastinum = lungs_and_mediastinum(low, low_spacing)
    return HeartParts(heart=share >= 0.5, mediastinum=mediastinum, hu=low, spacing=low_spacing, factor=f)


def localise_heart(hu: np.ndarray, geometry: Geometry, **kw: float) -> np.ndarray:
    """Heart mask (bool, same shape as ``hu``) of a (z, y, x) CT in HU."""
    orient = orientation_of(geometry)
    view = orient.to_canonical(hu)
    parts = heart_parts(view, orient.spacing, **kw)
    return orient.from_canonical(parts.upsample(parts.heart, view.shape))
