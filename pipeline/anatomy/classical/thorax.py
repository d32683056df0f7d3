"""Body, lungs, mediastinum, bone and spine of a canonical chest view (axis 0 superior, 1 posterior, 2 left).

Runs on a low-resolution copy (about 2 mm in-plane, block averages): the heart and the
great vessels are tens of millimetres wide, and the noise of low-dose and sharp-kernel
series averages out.

1. body: the largest component above -500 HU after an in-plane opening (drops the
   table), holes filled slice by slice;
2. lungs: below -400 HU inside the body, components of at least 50 mL (the trachea
   and main bronchi belong to them);
3. mediastinum: voxels with lung on their left and on their right in the same row,
   anterior to the front of the spine;
4. spine: per slice, the vertebral body: the bone (>= 200 HU, holes filled, survives an
   opening of 4 mm, so calcium specks never count) on the midline band in the posterior
   half; its front row and centre column, interpolated over slices where it is missed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from deepcac2.errors import DeepCACError, ErrorCode

from .morphology import Spacing, disk, fill_slices, largest

LUNG_HU = -400.0
BODY_HU = -500.0
BONE_HU = 200.0
#: cancellous bone of an older spine is 130-250 HU: the vertebral body is found at this lower threshold
SPINE_HU = 130.0
#: a bone must be wider than about twice this to be the spine
SPINE_MIN_MM = 4.0
#: half width of the midline band searched for the vertebral body
SPINE_BAND_MM = 15.0


@dataclass
class Thorax:
    """Low-resolution masks of the chest and where the spine is, per slice."""

    #: the low-resolution HU view and its voxel size (S, P, L) in mm
    hu: np.ndarray
    spacing: Spacing
    #: in-plane block factors (rows, cols) between the full and the low-resolution view
    factor: tuple[int, int]
    body: np.ndarray
    lungs: np.ndarray
    mediastinum: np.ndarray
    #: per slice: front (most anterior) row of the vertebral body and its centre column
    spine_front: np.ndarray
    spine_col: np.ndarray

    def upsample(self, mask: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """Nearest upsampling of a low-resolution mask to the full canonical view shape."""
        f = self.factor
        up = mask.repeat(f[0], axis=1).repeat(f[1], axis=2)[:, : shape[1], : shape[2]]
        return np.pad(up, [(0, shape[i] - up.shape[i]) for i in range(3)], mode="edge")


def low_resolution(
    view: np.ndarray, spacing: Spacing, target_mm: float = 2.0
) -> tuple[np.ndarray, Spacing, tuple[int, int]]:
    """In-plane block average of a canonical view to about ``target_mm``: (low view, its spacing, factors)."""
    f = (max(int(round(target_mm / spacing[1])), 1), max(int(round(target_mm / spacing[2])), 1))
    low = view.astype(np.float32)
    if f != (1, 1):
        low = ndi.uniform_filter(low, size=(1, *f))[:, :: f[0], :: f[1]]
    return low, (spacing[0], spacing[1] * f[0], spacing[2] * f[1]), f


def between_left_right(lungs: np.ndarray) -> np.ndarray:
    """Voxels with a lung voxel somewhere to their left and to their right in the same row."""
    right = np.maximum.accumulate(lungs, axis=2)
    left = np.maximum.accumulate(lungs[:, :, ::-1], axis=2)[:, :, ::-1]
    return right & left & ~lungs


def find_spine(low: np.ndarray, body: np.ndarray, spacing: Spacing) -> tuple[np.ndarray, np.ndarray]:
    """Per slice, the vertebral body's front row and centre column (floats; interpolated where missed)."""
    nz, ny, _ = low.shape
    front = np.full(nz, np.nan)
    col = np.full(nz, np.nan)
    half = max(int(round(SPINE_BAND_MM / spacing[2])), 1)
    se = disk(SPINE_MIN_MM / spacing[1])
    for z in range(nz):
        cols = np.flatnonzero(body[z].any(axis=0))
        if cols.size == 0:
            continue
        mid = (cols[0] + cols[-1]) // 2
        # close first: at 2 mm the thin cortex of an osteoporotic vertebral body has gaps
        bone = ndi.binary_closing(low[z] >= SPINE_HU, structure=disk(2.0), border_value=0)
        bone = ndi.binary_opening(ndi.binary_fill_holes(bone), structure=se)
        lab, n = ndi.label(bone)
        if n == 0:
            continue
        band = lab[ny // 2 :, max(mid - half, 0) : mid + half + 1]
        hits = np.unique(band[band > 0])
        if hits.size == 0:
            continue
        # the vertebral body: the most anterior bone component crossing the band's posterior half
        best = min(
            hits, key=lambda h: np.flatnonzero((lab[:, max(mid - half, 0) : mid + half + 1] == h).any(axis=1))[0]
        )
        rows, cc = np.nonzero(lab == best)
        in_band = np.abs(cc - mid) <= half
        front[z] = float(rows[in_band].min())
        col[z] = float(cc[in_band].mean())
    ok = np.isfinite(front)
    if not ok.any():
        raise DeepCACError(ErrorCode.E_NO_HEART, "no spine found (no bone on the posterior midline)")
    zs = np.arange(nz)
    return np.interp(zs, zs[ok], front[ok]), np.interp(zs, zs[ok], col[ok])


def find_thorax(view: np.ndarray, spacing: Spacing, target_mm: float = 2.0) -> Thorax:
    """Body, lungs, mediastinum and spine of a full-resolution canonical view."""
    low, sp, f = low_resolution(view, spacing, target_mm)
    body = fill_slices(largest(ndi.binary_opening(low > BODY_HU, structure=disk(3.0 / sp[1])[None])))
    lungs = (low < LUNG_HU) & body
    lab, n = ndi.label(lungs)
    if n == 0:
        raise DeepCACError(ErrorCode.E_NO_HEART, "no lungs found (nothing below -400 HU inside the body)")
    sizes = np.bincount(lab.ravel()) * float(np.prod(sp)) / 1000.0
    sizes[0] = 0
    lungs = np.isin(lab, np.flatnonzero(sizes >= 50.0))
    front, col = find_spine(low, body, sp)
    rows = np.arange(low.shape[1])[None, :, None]
    anterior = rows < front[:, None, None]
    mediastinum = between_left_right(lungs) & anterior
    return Thorax(low, sp, f, body, lungs, mediastinum, front, col)
