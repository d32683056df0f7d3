"""The two opt-in corrections: undo a gantry-tilt shear, and resample uneven slices onto a regular grid."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def unshear(hu: np.ndarray, drift_px: np.ndarray, fill: float) -> None:
    """Shift each slice in-plane (in place, linear) so all slices line up with slice 0.

    ``drift_px[k]`` is slice k's (column, row) offset from slice 0 in pixels; after the
    shift, voxel (i, j) of every slice lies on the line through slice 0's voxel (i, j)
    along the normal, which makes the grid orthogonal. Voxels shifted in from outside
    the scanned field get ``fill``.
    """
    work = np.empty(hu.shape[1:], np.float32)
    for k in range(hu.shape[0]):
        dx, dy = drift_px[k]
        if abs(dx) < 1e-6 and abs(dy) < 1e-6:
            continue
        ndimage.shift(hu[k].astype(np.float32), shift=(dy, dx), output=work, order=1, mode="constant", cval=fill)
        _store(hu, k, work)


def resample_slices(hu: np.ndarray, s: np.ndarray, step: float) -> np.ndarray:
    """Linear interpolation along k from slice positions ``s`` (ascending) onto ``s[0] + m * step``.

    The new grid ends at the last position that does not pass ``s[-1]`` (within 1% of a step).
    """
    count = int(np.floor((s[-1] - s[0]) / step + 0.01)) + 1
    targets = np.minimum(s[0] + step * np.arange(count), s[-1])
    out = np.empty((count, *hu.shape[1:]), hu.dtype)
    work = np.empty(hu.shape[1:], np.float32)
    upper = np.clip(np.searchsorted(s, targets, side="left"), 1, len(s) - 1)
    for m, (t, b) in enumerate(zip(targets, upper, strict=True)):
        a = b - 1
        w = np.float32((t - s[a]) / (s[b] - s[a]))
        np.multiply(hu[a], np.float32(1) - w, out=work, dtype=np.float32, casting="unsafe")
        work += w * hu[b].astype(np.float32)
        _store(out, m, work)
    return out


def _store(dst: np.ndarray, k: int, values: np.ndarray) -> None:
    """Write float values into an int16 or float32 slice; integers are rounded, not truncated."""
    if np.issubdtype(dst.dtype, np.integer):
        np.rint(values, out=values)
    dst[k] = values
