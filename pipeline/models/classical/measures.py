"""What the candidate rules measure: distances in millimetres on the CT grid, the search box, the
heart's front, whole component sizes, exact distances at the aortic root, a component's surroundings
and length, and the depth inside the thoracic cage's envelope (``candidate_rules.py`` sorts components with them).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def _spacing_zyx(spacing_xyz) -> tuple[float, float, float]:
    return (float(spacing_xyz[2]), float(spacing_xyz[1]), float(spacing_xyz[0]))


class _Distances:
    """Distance maps (mm) computed on an in-plane block-reduced grid (about 2 mm), read at full resolution.

    A block counts as in a mask when any of its voxels is, so distances run short by up to
    about a block's diagonal half (the rules' margins are tolerant of that). Exact
    full-resolution transforms of a whole chest box cost seconds each.
    """

    def __init__(self, shape: tuple[int, int, int], sp: tuple[float, float, float], target_mm: float = 2.0):
        self.shape = shape
        self.f = (1, max(int(round(target_mm / sp[1])), 1), max(int(round(target_mm / sp[2])), 1))
        self.sp = (sp[0], sp[1] * self.f[1], sp[2] * self.f[2])

    def _reduce(self, mask: np.ndarray) -> np.ndarray:
        f = self.f
        pad = [(0, (-n) % k) for n, k in zip(mask.shape, f, strict=True)]
        m = np.pad(mask, pad)
        return m.reshape(m.shape[0], m.shape[1] // f[1], f[1], m.shape[2] // f[2], f[2]).any(axis=(2, 4))

    def _expand(self, d: np.ndarray) -> np.ndarray:
        full = d.repeat(self.f[1], axis=1).repeat(self.f[2], axis=2)
        return full[:, : self.shape[1], : self.shape[2]]

    def to(self, mask: np.ndarray) -> np.ndarray:
        """Distance of every voxel to ``mask`` (0 inside; inf when it is empty)."""
        if not mask.any():
            return np.full(self.shape, np.inf, dtype=np.float32)
        return self._expand(ndi.distance_transform_edt(~self._reduce(mask), sampling=self.sp).astype(np.float32))

    def fat(self, hu: np.ndarray, fat_hu: tuple[float, float]) -> np.ndarray:
        """Fat layers: block-averaged HU after a 3x3 in-plane median in the fat range (full resolution).

        A layer must be about two blocks thick to count: noise and partial volume at a thin
        wall do not make fat.
        """
        f = self.f
        pad = [(0, (-n) % k) for n, k in zip(hu.shape, f, strict=True)]
        m = np.pad(hu.astype(np.float32), pad, mode="edge")
        low = m.reshape(m.shape[0], m.shape[1] // f[1], f[1], m.shape[2] // f[2], f[2]).mean(axis=(2, 4))
        low = ndi.median_filter(low, size=(1, 3, 3))
        return self._expand((low >= fat_hu[0]) & (low <= fat_hu[1]))

    def within(self, mask: np.ndarray, mm: float) -> np.ndarray:
        return self.to(mask) <= mm


def _box(mask: np.ndarray, margin: tuple[int, int, int]) -> tuple[slice, ...]:
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    return tuple(
        slice(max(int(i[0]) - m, 0), min(int(i[-1]) + m + 1, n))
        for i, m, n in zip(idx, margin, mask.shape, strict=True)
    )


def _in_front(mask: np.ndarray, sp, direction, box, fraction: float) -> np.ndarray:
    """Voxels in front of (less posterior than) the ``fraction`` quantile of ``mask``'s voxels (LPS y)."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    # LPS y of a voxel (k, j, i) in the box: direction row y . (i sx, j sy, k sz); the origin cancels
    k, j, i = (np.arange(sl.start, sl.stop, dtype=float) for sl in box)
    y = d[1, 0] * i[None, None, :] * sp[2] + d[1, 1] * j[None, :, None] * sp[1] + d[1, 2] * k[:, None, None] * sp[0]
    y = np.broadcast_to(y, mask.shape)
    return y <= np.quantile(y[mask], fraction)


def _lps(kji: np.ndarray, box, sp, direction) -> np.ndarray:
    """LPS positions (mm, up to the origin, which cancels in comparisons) of box indices (k, j, i) rows."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    ijk = (np.asarray(kji, dtype=float) + [sl.start for sl in box])[:, ::-1] * np.asarray(sp)[::-1]
    return ijk @ d.T


def _fill(mask: np.ndarray) -> np.ndarray:
    """Holes filled (3-D), computed in the mask's bounding box."""
    if not mask.any():
        return mask
    box = _box(mask, (1, 1, 1))
    out = mask.copy()
    out[box] = ndi.binary_fill_holes(mask[box])
    return out


def _whole_sizes(bright: np.ndarray, box: tuple[slice, ...], labels: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Voxels of each component of ``labels`` (components in ``box``) in the whole volume.

    A component that reaches a face of the box inside the volume (a rib, the sternum, the
    spine) is cut by it: its size is counted on the whole volume, labelled only then.
    """
    faces = []
    for ax, sl in enumerate(box):
        for end, at_edge in ((0, sl.start == 0), (-1, sl.stop == bright.shape[ax])):
            if not at_edge:
                faces.append(np.take(labels, end, axis=ax).ravel())
    cut = np.unique(np.concatenate(faces)) if faces else np.zeros(0, dtype=labels.dtype)
    cut = cut[cut > 0]
    if cut.size == 0:
        return total
    full, _ = ndi.label(bright, structure=np.ones((3, 3, 3), dtype=bool))
    sub = full[box]
    owner = np.zeros(total.size, dtype=full.dtype)
    owner[labels[labels > 0]] = sub[labels > 0]  # a box component lies in one whole component
    out = total.copy()
    out[cut] = np.bincount(full.ravel())[owner[cut]]
    return out


def _exact_near_root(aorta, root, to_aorta, sp, tolerance_mm: float, reach_mm: float) -> np.ndarray:
    """The aorta grown by ``tolerance_mm``, exact (full resolution) within ``reach_mm`` of the root.

    The block-reduced distances run short by up to a block's half diagonal (1.4 mm at 2 mm
    blocks), which alone would put a left main 0.7 mm off the root inside a 1 mm tolerance.
    Elsewhere the block-reduced distance serves (the tolerance is read only at the root).
    """
    out = to_aorta <= tolerance_mm
    if not root.any():
        return out
    box = _box(root, tuple(int(np.ceil(reach_mm / v)) for v in sp))
    out[box] = ndi.distance_transform_edt(~aorta[box], sampling=sp) <= tolerance_mm
    return out


def _surroundings(
    hu: np.ndarray, labels: np.ndarray, bright: np.ndarray, sp, n: int, ranges: tuple[tuple[float, float], ...]
) -> list[np.ndarray]:
    """Per component and per HU range ``[lo, hi)``, the share of the voxels 1-3 mm outside it in that range."""
    near = ndi.distance_transform_edt(~bright, sampling=sp, return_indices=True)
    d, idx = near
    ring = (d >= 1.0) & (d <= 3.0)
    owner = labels[tuple(i[ring] for i in idx)]
    counts = np.maximum(np.bincount(owner, minlength=n + 1), 1)
    v = hu[ring]
    return [np.bincount(owner, weights=((v >= lo) & (v < hi)).astype(np.float64), minlength=n + 1) / counts
            for lo, hi in ranges]  # fmt: skip


def _band_length(labels: np.ndarray, lab: int, sp) -> float:
    """Length (mm) of component ``lab`` along its principal axis: 4 SD, the full length of a uniform band."""
    pts = np.argwhere(labels == lab) * np.asarray(sp)
    if len(pts) < 2:
        return 0.0
    return float(4.0 * np.sqrt(max(np.linalg.eigvalsh(np.cov(pts.T))[-1], 0.0)))


def cage_depth(
    hu: np.ndarray,
    sp,
    box: tuple[slice, ...],
    where: np.ndarray,
    bone: np.ndarray | None,
    bone_hu: float,
    reach_mm: float,
    heart: np.ndarray | None = None,
) -> np.ndarray:
    """Depth (mm, in-plane) of the voxels ``where`` (in ``box``) inside the thoracic cage's envelope.

    The envelope at a slice is the convex hull of the bone within ``reach_mm`` of it along
    the slice axis (ribs run obliquely, so one slice may cut few of them; a slab holds
    the ring), over the whole slice: block means (about 2 mm) at or above ``bone_hu`` and the
    anatomy's ``bone``. A convex polygon's depth at a point is the least distance to its
    edges' lines (negative outside). Slices with too little bone give ``inf`` (no envelope),
    and so do slices whose hull does not hold the ``heart`` (``box``'s grid): 95% of its
    voxels in the slice, or its centroid where the slice has none. A cage surrounds the
    heart; a hull of a few bright pieces that cuts through it (a slice where the ring is
    open, calcium alone) is no cage.
    """
    from scipy.spatial import ConvexHull, QhullError

    f = np.array([max(int(round(2.0 / sp[1])), 1), max(int(round(2.0 / sp[2])), 1)])
    ny, nx = (hu.shape[1] // f[0]) * f[0], (hu.shape[2] // f[1]) * f[1]
    depth = np.full(where.shape, np.inf, dtype=np.float32)
    ks = np.flatnonzero(where.any(axis=(1, 2)))
    if ks.size == 0:
        return depth
    half = int(round(reach_mm / sp[0]))
    if heart is not None and heart.any():
        centre = np.argwhere(heart).mean(axis=0)[1:]
    points: dict[int, np.ndarray] = {}
    for k in range(max(box[0].start + int(ks[0]) - half, 0), min(box[0].start + int(ks[-1]) + half + 1, hu.shape[0])):
        blocks = hu[k, :ny, :nx].astype(np.float32).reshape(ny // f[0], f[0], nx // f[1], f[1]).mean(axis=(1, 3))
        blocks = blocks >= bone_hu
        if bone is not None:
            blocks |= bone[k, :ny, :nx].reshape(ny // f[0], f[0], nx // f[1], f[1]).any(axis=(1, 3))
        points[k] = ((np.argwhere(blocks) + 0.5) * f - 0.5) * (sp[1], sp[2])
    for kb in ks:
        k = box[0].start + int(kb)
        pts = np.vstack([points[j] for j in range(k - half, k + half + 1) if j in points])
        if len(pts) < 3:
            continue
        try:
            eq = ConvexHull(pts).equations  # a y + b x + c <= 0 inside, (a, b) unit outward normals
        except QhullError:
            continue
        if heart is not None and heart.any():
            hj, hi = np.nonzero(heart[kb]) if heart[kb].any() else (np.array([centre[0]]), np.array([centre[1]]))
            h = np.column_stack(((hj + box[1].start) * sp[1], (hi + box[2].start) * sp[2]))
            if ((h @ eq[:, :2].T + eq[:, 2]).max(axis=1) <= 0).mean() < 0.95:
                continue
        jj, ii = np.nonzero(where[kb])
        p = np.column_stack(((jj + box[1].start) * sp[1], (ii + box[2].start) * sp[2]))
        depth[kb, jj, ii] = -(p @ eq[:, :2].T + eq[:, 2]).max(axis=1)
    return depth


def family_level(voxels: int, alpha: float) -> float:
    """The z that pure Gaussian noise exceeds with probability ``alpha`` in any of ``voxels`` voxels."""
    from scipy.stats import norm

    return float(norm.isf(alpha / max(voxels, 1)))


def local_peak_background(
    hu: np.ndarray, labels: np.ndarray, sp, index: np.ndarray, quantile: float, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per component in ``index``: its peak HU and its background, the ``quantile`` of the HU 1-3 mm out.

    The surroundings are every voxel under ``threshold`` 1-3 mm from the component (in-plane,
    and on the slices within 3 mm), whichever other component lies nearer (noise in soft
    tissue is full of other speckle). An upper quantile, so that a component at a border of
    soft tissue and fat is measured against the soft tissue (noise on the myocardium next to
    the epicardial fat is no contrast), and one in fat against the fat. Without
    surroundings: its own peak (no contrast).
    """
    peak = np.asarray(ndi.maximum(hu, labels, index=index), dtype=float)
    background = peak.copy()
    grow = (int(round(3.0 / sp[0])), int(np.ceil(3.0 / sp[1])), int(np.ceil(3.0 / sp[2])))
    objects = ndi.find_objects(labels)
    for n, lab in enumerate(index):
        sl = tuple(
            slice(max(o.start - g, 0), min(o.stop + g, size))
            for o, g, size in zip(objects[lab - 1], grow, labels.shape, strict=True)
        )
        d = ndi.distance_transform_edt(labels[sl] != lab, sampling=sp)
        v = hu[sl][(d >= 1.0) & (d <= 3.0) & (hu[sl] < threshold)]
        if v.size:
            background[n] = float(np.quantile(v, quantile))
    return peak, background


def heart_wall_distance(hu: np.ndarray, heart: np.ndarray, dist: _Distances, erode_mm: float) -> np.ndarray:
    """Distance (mm) of every voxel to the heart's blood and muscle, from inside a mask that holds fat.

    Blood and muscle are the blocks (``_Distances`` grid, about 2 mm) of ``heart`` whose mean HU
    after a 3x3 median is -30 or more. Eroded by ``erode_mm``, their largest component is the
    chambers' core: the esophagus, the lymph nodes (5-10 mm across) and vessels pressed against
    the heart's back drop out of it or part from it. The distance to that core less ``erode_mm``
    is the distance to the chambers' and myocardium's surface (inf when no core is left).
    """
    f = dist.f
    pad = [(0, (-n) % k) for n, k in zip(hu.shape, f, strict=True)]
    m = np.pad(hu.astype(np.float32), pad, mode="edge")
    low = m.reshape(m.shape[0], m.shape[1] // f[1], f[1], m.shape[2] // f[2], f[2]).mean(axis=(2, 4))
    low = ndi.median_filter(low, size=(1, 3, 3))
    dense = (low >= -30.0) & dist._reduce(heart)
    if not dense.any():
        return np.full(hu.shape, np.inf, dtype=np.float32)
    core = ndi.distance_transform_edt(dense, sampling=dist.sp) > erode_mm
    labels, n = ndi.label(core, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return np.full(hu.shape, np.inf, dtype=np.float32)
    core = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    d = ndi.distance_transform_edt(~core, sampling=dist.sp).astype(np.float32) - erode_mm
    return dist._expand(np.maximum(d, 0.0))
