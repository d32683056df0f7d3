"""Vectorised shape rasterisers on an axis-aligned CT grid.

Every function works inside the bounding box of its shape only, so painting a small
structure into a 512x512x150 volume costs what the structure costs, not the volume.
Points are in patient LPS mm as ``(x, y, z)``; arrays are indexed ``[k, j, i]``.
A voxel belongs to a shape when its *centre* lies inside (no partial volume here;
blur is added later, on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """The voxel centres of an identity-direction CT grid."""

    shape: tuple[int, int, int]  # (nz, ny, nx)
    origin: tuple[float, float, float]  # LPS of voxel (0, 0, 0), (x, y, z)
    spacing: tuple[float, float, float]  # (sx, sy, sz)

    def axis(self, dim: int) -> np.ndarray:
        """Coordinates (mm) of voxel centres along x (0), y (1) or z (2)."""
        n = self.shape[2 - dim]
        return (self.origin[dim] + self.spacing[dim] * np.arange(n)).astype(np.float32)

    def box_slices(self, lo_mm: np.ndarray, hi_mm: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices ``(k, j, i)`` of the voxels whose centres may lie in [lo, hi]; None if outside."""
        o, s = np.asarray(self.origin), np.asarray(self.spacing)
        lo = np.ceil((np.asarray(lo_mm) - o) / s - 1e-9).astype(int)
        hi = np.floor((np.asarray(hi_mm) - o) / s + 1e-9).astype(int) + 1
        n = np.array(self.shape[::-1])
        lo, hi = np.clip(lo, 0, n), np.clip(hi, 0, n)
        if np.any(hi <= lo):
            return None
        return (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))

    def sub_axes(self, sl: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable (z, y, x) coordinate arrays of a sub-box: shapes (n,1,1), (1,n,1), (1,1,n)."""
        z = self.axis(2)[sl[0]][:, None, None]
        y = self.axis(1)[sl[1]][None, :, None]
        x = self.axis(0)[sl[2]][None, None, :]
        return z, y, x


def ellipsoid(
    grid: Grid, center: np.ndarray, radii: np.ndarray, rotation: np.ndarray | None = None
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """Voxels inside an ellipsoid. ``rotation`` columns are the ellipsoid axes in LPS.

    Returns ``(slices, mask)`` with ``mask`` the shape of the sub-box, or None when
    the ellipsoid misses the grid.
    """
    center = np.asarray(center, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    reach = radii if rotation is None else np.full(3, radii.max())
    sl = grid.box_slices(center - reach, center + reach)
    if sl is None:
        return None
    z, y, x = grid.sub_axes(sl)
    dx, dy, dz = x - center[0], y - center[1], z - center[2]
    if rotation is None:
        q = (dx / radii[0]) ** 2 + (dy / radii[1]) ** 2 + (dz / radii[2]) ** 2
    else:
        r = np.asarray(rotation, dtype=np.float64)
        q = 0.0
        for a in range(3):  # local coordinate along axis a = dot(d, r[:, a])
            local = dx * r[0, a] + dy * r[1, a] + dz * r[2, a]
            q = q + (local / radii[a]) ** 2
    return sl, q <= 1.0


def tube(grid: Grid, points: np.ndarray, radii: np.ndarray | float) -> np.ndarray:
    """Flat indices of voxels within ``radius`` of any of ``points`` (a densely sampled centreline).

    Sample the centreline at most about half the smallest voxel size apart, so the
    union of balls is a smooth tube.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(points),))
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    keep = _thin(points, np.maximum(0.4 * radii, 0.5 * min(grid.spacing)))
    points, radii = points[keep], radii[keep]
    o, s = np.asarray(grid.origin), np.asarray(grid.spacing)
    reach = np.ceil(radii.max() / s).astype(int)
    offs = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), axis=-1).reshape(
        -1, 3
    )  # (S, 3) in (i, j, k)
    centre_idx = np.rint((points - o) / s).astype(int)  # (P, 3)
    out = []
    # chunk the points so the (P, S, 3) candidate array stays small
    step = max(1, 2_000_000 // len(offs))
    n = np.array(grid.shape[::-1])
    for a in range(0, len(points), step):
        cand = centre_idx[a : a + step, None, :] + offs[None, :, :]
        d2 = (((cand * s + o) - points[a : a + step, None, :]) ** 2).sum(-1)
        keep = (d2 <= radii[a : a + step, None] ** 2) & np.all((cand >= 0) & (cand < n), axis=-1)
        c = cand[keep]
        out.append(np.ravel_multi_index((c[:, 2], c[:, 1], c[:, 0]), grid.shape))
    return np.unique(np.concatenate(out))


def _thin(points: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Indices of centreline points at least ``step`` apart along the line (balls that close
    overlap so much that more of them change nothing but the run time)."""
    gaps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    keep, run = [0], 0.0
    for i, gap in enumerate(gaps, start=1):
        run += gap
        if run >= step[i] or i == len(points) - 1:
            keep.append(i)
            run = 0.0
    return np.asarray(keep)


def resample_polyline(points: np.ndarray, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step_mm`` along a polyline, and their arc length from the start."""
    points = np.asarray(points, dtype=np.float64)
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.arange(0.0, arc[-1] + 1e-9, step_mm)
    out = np.stack([np.interp(t, arc, points[:, d]) for d in range(3)], axis=1)
    return out, t
