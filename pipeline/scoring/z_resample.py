"""Resample a scoring block along z: linear for HU, nearest for masks.

The new slices keep the first slice's position and step by ``new_dz`` while they stay
inside the original extent, so the grid does not depend on any cropping in y and x.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.interpolate import interp1d

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import Geometry


def new_slice_positions(n_slices: int, dz: float, new_dz: float) -> np.ndarray:
    """Positions (mm from the first slice) of the resampled slices."""
    if new_dz <= 0 or not math.isfinite(new_dz):
        raise DeepCACError(ErrorCode.E_SCORING, f"resampling spacing must be positive, got {new_dz}")
    count = int(math.floor((n_slices - 1) * dz / new_dz + 1e-9)) + 1
    return np.arange(count) * new_dz


def resample_z(
    hu: np.ndarray, masks: list[np.ndarray | None], geometry: Geometry, new_dz: float
) -> tuple[np.ndarray, list[np.ndarray | None], Geometry]:
    """Resample HU (linear) and label/bool masks (nearest) to ``new_dz`` mm slice spacing."""
    n = hu.shape[0]
    if n < 2:
        raise DeepCACError(ErrorCode.E_SCORING, "cannot resample a single slice along z")
    dz = geometry.spacing[2]
    z_old = np.arange(n) * dz
    z_new = new_slice_positions(n, dz, new_dz)
    hu_new = interp1d(z_old, hu.astype(np.float32), axis=0, kind="linear", assume_sorted=True)(z_new)
    out: list[np.ndarray | None] = []
    for m in masks:
        if m is None:
            out.append(None)
            continue
        # 'nearest' keeps label values; halfway points take the lower slice
        r = interp1d(z_old, m.astype(np.uint8), axis=0, kind="nearest", assume_sorted=True)(z_new)
        out.append(r.astype(m.dtype))
    spacing = (geometry.spacing[0], geometry.spacing[1], float(new_dz))
    return hu_new.astype(np.float32), out, Geometry(geometry.origin, spacing, geometry.direction)
