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
4. cavity: per slice, the star-shaped region round a point between the lungs' front and
   the spine, out to the first lung or thoracic cage bone each ray meets; where a ray meets
   neither (the heart against the front chest wall), the chest wall's thickness is
   interpolated from the neighbouring rays (to the lung's outer edge or the bone), so the
   heart's front is kept and the chest wall muscle is not; without costal cartilage and
   tissue within 4 mm of the cage's bone. The heart is found in it (``heart.py``); the
   great-vessel trackers keep using the mediastinum of rule 3;
5. spine: per slice, the vertebral body: the bone (>= 200 HU, holes filled, survives an
   opening of 4 mm, so calcium specks never count) on the midline band in the posterior
   half; its front row and centre column, interpolated over slices where it is missed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from deepcac2.errors import DeepCACError, ErrorCode

from .morphology import Spacing, ball, disk, fill_slices, largest

LUNG_HU = -400.0
BODY_HU = -500.0
BONE_HU = 200.0
#: cancellous bone of an older spine is 130-250 HU: the vertebral body is found at this lower threshold
SPINE_HU = 130.0
#: a bone must be wider than about twice this to be the spine
SPINE_MIN_MM = 4.0
#: half width of the midline band searched for the vertebral body
SPINE_BAND_MM = 15.0
#: rays cast round the chest cavity's centre, per slice
RAYS = 360
#: costal cartilages run obliquely: the cage's bone is taken within this distance along z
CAGE_Z_MM = 10.0
#: calcium in the heart or the aorta is smaller than this; the cage's bones are larger
CAGE_MIN_ML = 5.0
#: costal cartilage is denser than blood and myocardium (30-60 HU) on non-contrast CT
CARTILAGE_HU = 85.0
#: how far from the cage's bone cartilage is followed
CARTILAGE_MM = 20.0
#: tissue this close to the cage's bone is chest wall (intercostal and transversus muscles)
WALL_MM = 4.0


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
    #: the space the lungs and the thoracic cage enclose in front of the spine, without the
    #: lungs (holds the heart also where it touches the front chest wall or the diaphragm)
    cavity: np.ndarray | None = None

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


def cage_bone(low: np.ndarray, spacing: Spacing) -> np.ndarray:
    """Bone of the thoracic cage: components of at least CAGE_MIN_ML at >= BONE_HU (ribs, sternum,
    spine; not coronary, valve or annulus calcium, which must not stop a ray inside the heart),
    grown along z by CAGE_Z_MM: costal cartilages cross a slice obliquely, so a slice holds only
    pieces of them."""
    lab, _ = ndi.label(low >= BONE_HU)
    ml = np.bincount(lab.ravel()) * float(np.prod(spacing)) / 1000.0
    ml[0] = 0
    bone = np.isin(lab, np.flatnonzero(ml >= CAGE_MIN_ML))
    k = max(int(round(CAGE_Z_MM / spacing[0])), 0)
    return ndi.maximum_filter1d(bone.astype(np.uint8), size=2 * k + 1, axis=0).astype(bool) if k else bone


def ray_samples(mask: np.ndarray, centre: tuple[float, float], steps: np.ndarray, fill: bool) -> np.ndarray:
    """``mask`` sampled along RAYS rays from ``centre`` (angle 0 = anterior, then towards the
    left), (ray, step); outside the slice reads ``fill``."""
    ang = np.linspace(0.0, 2 * np.pi, RAYS, endpoint=False)
    rows = np.round(centre[0] - np.cos(ang)[:, None] * steps[None, :]).astype(int)
    cols = np.round(centre[1] + np.sin(ang)[:, None] * steps[None, :]).astype(int)
    inside = (rows >= 0) & (rows < mask.shape[0]) & (cols >= 0) & (cols < mask.shape[1])
    out = np.full(rows.shape, fill)
    out[inside] = mask[rows[inside], cols[inside]]
    return out


def wall_radii(lungs: np.ndarray, cage: np.ndarray, body: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """Per ray, the radius (voxels) of the chest cavity of one slice.

    A ray ends at the first lung or cage bone it meets. The inner surface of the chest wall
    lies at the far edge of the lung on rays through lung and at the bone on rays that meet
    bone; a ray that meets neither (the heart against the front wall, costal cartilage below
    BONE_HU) takes the wall's radius interpolated over the angle from its neighbours, so it
    never runs on into the chest wall muscle."""
    steps = np.arange(0.0, float(max(lungs.shape)), 0.5)
    lung = ray_samples(lungs, centre, steps, False)
    bone = ray_samples(cage, centre, steps, False)
    outside = ray_samples(~body, centre, steps, True)
    stop = lung | bone
    first = np.where(stop.any(axis=1), steps[np.argmax(stop, axis=1)], steps[-1])
    # the lung's far edge: its last sample before the first bone or the body's edge beyond it
    beyond = np.maximum.accumulate(bone | outside, axis=1)
    inner = lung & ~beyond
    far = len(steps) - 1 - np.argmax(inner[:, ::-1], axis=1)
    last_lung = np.where(inner.any(axis=1), steps[far], np.nan)
    first_bone = np.where(bone.any(axis=1), steps[np.argmax(bone, axis=1)], np.nan)
    edge = np.where(outside.any(axis=1), steps[np.argmax(outside, axis=1)], steps[-1])
    # the chest wall's thickness (body edge - inner surface) follows the body's outline better
    # than the inner surface's radius does: it is what is interpolated over the gaps
    thick = edge - np.where(np.isfinite(last_lung), last_lung, first_bone)
    ok = np.isfinite(thick)
    if ok.sum() < 2:
        return first
    idx = np.arange(RAYS)
    wall = edge - np.interp(idx, idx[ok], thick[ok], period=RAYS)
    return np.minimum(first, wall)


def chest_cavity(
    low: np.ndarray,
    body: np.ndarray,
    lungs: np.ndarray,
    spine_front: np.ndarray,
    spine_col: np.ndarray,
    spacing: Spacing,
) -> np.ndarray:
    """Per slice, the star-shaped region round the midline point halfway between the lungs' front
    and the spine, bounded by the lungs, the thoracic cage's bone and, where neither lies
    between (the heart against the front wall), the chest wall's inner surface interpolated
    between the lungs' outer edges and the bone; without the lungs and ``WALL_MM`` of tissue
    inside the bone (the innermost chest wall muscle and the internal thoracic vessels)."""
    out = np.zeros_like(lungs)
    cage = cage_bone(low, spacing)
    ny, nx = lungs.shape[1:]
    rr, cc = np.mgrid[0:ny, 0:nx]
    for z in range(lungs.shape[0]):
        rows = np.flatnonzero(lungs[z].any(axis=1))
        if rows.size == 0 or not np.isfinite(spine_front[z]):
            continue
        centre = ((rows[0] + spine_front[z]) / 2.0, float(spine_col[z]))
        free = ~(lungs[z] | cage[z]) & body[z]
        if not free.any():
            continue
        r0, c0 = int(round(centre[0])), int(round(centre[1]))
        if not free[r0, c0]:
            # a centre on lung (the recess behind the heart) would end every ray at once: the nearest free pixel
            pts = np.argwhere(free)
            centre = tuple(float(v) for v in pts[np.argmin(((pts - (r0, c0)) ** 2).sum(axis=1))])
        radii = wall_radii(lungs[z], cage[z], body[z], centre)
        theta = np.arctan2(cc - centre[1], -(rr - centre[0])) % (2 * np.pi)
        k = np.round(theta / (2 * np.pi) * RAYS).astype(int) % RAYS
        out[z] = np.hypot(rr - centre[0], cc - centre[1]) < radii[k]
    bone = cage & (low >= BONE_HU)
    # in-plane distances (the chest wall's thickness lies in the slice; 2-D is several times faster)
    near = np.stack(
        [ndi.distance_transform_edt(~b, sampling=spacing[1:]) if b.any() else np.full(b.shape, np.inf) for b in bone]
    )
    # costal cartilage (80-150 HU, about 1 cm thick) continues the ribs to the sternum: the dense
    # tissue reached from the cage's bone through CARTILAGE_HU (in-plane 3x3 block means against
    # the noise) within CARTILAGE_MM of the bone
    dense = ndi.uniform_filter(low, size=(1, 3, 3)) >= CARTILAGE_HU
    cartilage = ndi.binary_propagation(bone, mask=(dense & (near <= CARTILAGE_MM)) | bone)
    wall = (near <= WALL_MM) | ndi.binary_dilation(cartilage, structure=ball(tuple(2.0 / v for v in spacing)))
    return out & ~lungs & body & ~wall


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
    cavity = chest_cavity(low, body, lungs, front, col, sp) & anterior
    return Thorax(low, sp, f, body, lungs, mediastinum, front, col, cavity)
