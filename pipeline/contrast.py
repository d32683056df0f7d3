"""Contrast-enhanced CT is refused before any anatomy or model work (E_CONTRAST_ENHANCED).

Calcium is scored at >= 130 HU; iodinated blood is 150-500 HU, so in a contrast series the
heart and the great vessels would be "calcium" and the heart found by soft-tissue rules
would be missing (it was refused as E_NO_HEART, "no mediastinal soft tissue", which misleads).
NLST is non-contrast; users will try other series.

The test measures the **blood pool**: the largest connected region, inside the body, of
tissue that is smoothly between ``BLOOD_HU`` (150 HU) and ``BLOOD_MAX_HU`` (600 HU) and is
not bone. Non-contrast blood is 30-60 HU, so without contrast such a region is only bone,
and bone is taken out first: on every axial slice, the region inside a dense (> 600 HU)
cortical ring is filled, which removes cancellous bone (150-300 HU) with its cortex. What
remains in a non-contrast chest is small (calcified cartilage, partial volume at bone
edges); in a contrast chest the heart chambers and the aorta make one region of hundreds of
millilitres. A series is refused when that region's core (what survives an in-plane erosion of
``CORE_MM``) holds at least ``MIN_CORE_ML``.

The work runs on the volume pooled to about ``POOL_MM`` (2 mm) in-plane (mean for the HU, max for the
dense-bone mask, so thin cortex keeps its rings): a few hundred milliseconds a series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import CTVolume

#: smoothed HU above which tissue is enhanced blood (non-contrast blood is 30-60 HU)
BLOOD_HU = 150.0
#: above this, smoothed tissue is bone or calcium, not blood
BLOOD_MAX_HU = 600.0
#: raw HU of dense (cortical) bone, whose rings are filled to remove cancellous bone
DENSE_BONE_HU = 600
#: in-plane erosion (mm): what survives is at least twice this thick, as heart chambers and the
#: aorta are (20-50 mm) and ribs, cortex, cartilage and partial volume at bone edges are not
CORE_MM = 6.0
#: a blood-pool core this large (mL) means contrast. Measured on the real non-contrast chests in
#: ../shared/data: at most 3.8 mL (bone the ring fill missed); synthetic chests with blood raised by
#: 200 HU: 15-33 mL (their chambers are small); a real contrast heart holds hundreds of mL
MIN_CORE_ML = 8.0
#: in-plane pooling target (mm)
POOL_MM = 2.0

_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = True  # 8-connected within a slice, nothing across slices


@dataclass(frozen=True)
class BloodPool:
    """The largest enhanced-blood core of a series."""

    core_ml: float
    median_hu: float | None

    @property
    def contrast(self) -> bool:
        return self.core_ml >= MIN_CORE_ML


def _pool(hu: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean HU, any dense bone) over f x f in-plane blocks (strided sums: no copy of the volume)."""
    z, y, x = hu.shape
    y2, x2 = y - y % f, x - x % f
    mean = np.zeros((z, y2 // f, x2 // f), dtype=np.float32)
    dense = np.zeros(mean.shape, dtype=bool)
    for i in range(f):
        for j in range(f):
            view = hu[:, i:y2:f, j:x2:f]
            mean += view
            dense |= view > DENSE_BONE_HU
    return mean / (f * f), dense


def _bone(dense: np.ndarray) -> np.ndarray:
    """Dense bone with what its rings enclose on each axial slice, grown by two pooled voxels.

    A hole is background that does not reach the slice's edge (labelled in-plane only:
    ``binary_fill_holes`` on a volume iterates dilations, 10x slower).
    """
    closed = ndimage.binary_closing(dense, _IN_PLANE)
    background, _ = ndimage.label(~closed, _IN_PLANE)
    edge = np.unique(
        np.concatenate([background[:, 0], background[:, -1], background[:, :, 0], background[:, :, -1]], None)
    )
    filled = closed | ((background > 0) & ~np.isin(background, edge))
    return ndimage.binary_dilation(filled, _IN_PLANE, iterations=2)


def blood_pool(ct: CTVolume) -> BloodPool:
    """The largest core of enhanced-blood HU that is not bone (see the module docstring)."""
    sx, sy, sz = ct.geometry.spacing
    f = max(1, int(round(POOL_MM / max(sx, sy))))
    px = f * max(sx, sy)
    mean, dense = _pool(ct.hu, f)
    smooth = ndimage.uniform_filter(mean, size=(1, 3, 3))
    blood = (smooth >= BLOOD_HU) & (smooth <= BLOOD_MAX_HU) & ~_bone(dense)
    core = ndimage.binary_erosion(blood, _IN_PLANE, iterations=max(1, int(round(CORE_MM / px))))
    labels, n = ndimage.label(core)
    if n == 0:
        return BloodPool(0.0, None)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = int(sizes.argmax())
    voxel_ml = f * sx * f * sy * sz / 1000.0
    return BloodPool(float(sizes[largest] * voxel_ml), float(np.median(mean[labels == largest])))


def refuse_contrast(ct: CTVolume) -> BloodPool:
    """Raise E_CONTRAST_ENHANCED for a contrast-enhanced series; return the measured pool otherwise."""
    pool = blood_pool(ct)
    if pool.contrast:
        raise DeepCACError(
            ErrorCode.E_CONTRAST_ENHANCED,
            f"{ct.series_uid}: contrast-enhanced CT: a blood pool core of {pool.core_ml:.0f} mL at median "
            f"{pool.median_hu:.0f} HU (non-contrast blood is 30-60 HU); calcium cannot be scored on it",
            series=ct.series_uid,
            blood_pool_core_ml=f"{pool.core_ml:.1f}",
            blood_pool_median_hu=f"{pool.median_hu:.0f}",
        )
    return pool
