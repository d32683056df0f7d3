"""Round vessel sections on axial slices, and tracking them from slice to slice.

On non-contrast CT the lumen of a great vessel has the density of blood and is
bordered on most sides by lung, fat, bone or air; where it is pressed against the heart
or another vessel one arc of the border is missing. A section is scored with a
template: ``inside`` = fraction of blood-density pixels in the disk of radius - 1 mm,
``ring`` = fraction of non-blood pixels in the ring from radius + 1 mm to radius + 4 mm;
score = inside x ring (1 for an isolated disk, about 0.6 for a disk with a third of its
border against blood), halved and more where bone holds over half of the ring (the
spinal canal is a blood-density disk in a ring of bone). Scores are computed for every centre and radius at once with FFT
convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy import signal

#: blood and vessel wall on non-contrast CT (after a 3x3 median)
BLOOD_HU = (-30.0, 120.0)
RING_MM = (1.0, 4.0)
#: the inside disk stops this far short of the radius (partial volume at the edge)
INSIDE_MARGIN_MM = 1.0


@dataclass(frozen=True)
class Section:
    """A round section: slice, centre (row, col) in low-resolution pixels, radius in mm, template score."""

    z: int
    row: float
    col: float
    radius_mm: float
    score: float


def blood_map(hu: np.ndarray) -> np.ndarray:
    """Blood-density pixels of a low-resolution view, slice by slice after a 3x3 median."""
    smooth = ndi.median_filter(hu, size=(1, 3, 3))
    return (smooth >= BLOOD_HU[0]) & (smooth <= BLOOD_HU[1])


def _kernels(radius_mm: float, spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    outer = radius_mm + RING_MM[1]
    hr, hc = int(np.ceil(outer / spacing[0])), int(np.ceil(outer / spacing[1]))
    rr, cc = np.ogrid[-hr : hr + 1, -hc : hc + 1]
    d = np.hypot(rr * spacing[0], cc * spacing[1])
    inside = d <= radius_mm - INSIDE_MARGIN_MM
    ring = (d >= radius_mm + RING_MM[0]) & (d <= outer)
    return inside / max(inside.sum(), 1), ring / max(ring.sum(), 1)


def score_maps(
    blood: np.ndarray, radii_mm: np.ndarray, spacing: tuple[float, float], bone: np.ndarray | None = None
) -> np.ndarray:
    """Template scores (n_radii, rows, cols) of a 2-D blood mask; pixels outside the slice count as non-blood."""
    b = blood.astype(np.float32)
    out = np.empty((len(radii_mm), *b.shape), dtype=np.float32)
    for i, r in enumerate(radii_mm):
        k_in, k_ring = _kernels(float(r), spacing)
        inside = signal.fftconvolve(b, k_in[::-1, ::-1], mode="same")
        # ring pixels beyond the array are non-blood: 1 - (blood share of the ring)
        ring = 1.0 - signal.fftconvolve(b, k_ring[::-1, ::-1], mode="same")
        score = np.clip(inside, 0, 1) * np.clip(ring, 0, 1)
        if bone is not None:
            bony = signal.fftconvolve(bone.astype(np.float32), k_ring[::-1, ::-1], mode="same")
            score *= np.clip(2.0 * (1.0 - bony), 0, 1)
        out[i] = score
    return out


def best_section(
    blood2d: np.ndarray,
    z: int,
    window: tuple[slice, slice],
    radii_mm: np.ndarray,
    spacing: tuple[float, float],
    allowed: np.ndarray | None = None,
    bone2d: np.ndarray | None = None,
) -> Section | None:
    """The best-scoring section with its centre in ``window`` (rows, cols of the slice)."""
    r0, r1 = max(window[0].start, 0), min(window[0].stop, blood2d.shape[0])
    c0, c1 = max(window[1].start, 0), min(window[1].stop, blood2d.shape[1])
    if r1 <= r0 or c1 <= c0:
        return None
    m = int(np.ceil((radii_mm.max() + RING_MM[1]) / min(spacing))) + 1
    lo_r, lo_c = max(r0 - m, 0), max(c0 - m, 0)
    sub = blood2d[lo_r : r1 + m, lo_c : c1 + m]
    bsub = None if bone2d is None else bone2d[lo_r : r1 + m, lo_c : c1 + m]
    scores = score_maps(sub, radii_mm, spacing, bsub)[:, r0 - lo_r : r1 - lo_r, c0 - lo_c : c1 - lo_c]
    if allowed is not None:
        scores = scores * allowed[r0:r1, c0:c1][None]
    best = scores.max(axis=0)
    r, c = np.unravel_index(int(np.argmax(best)), best.shape)
    i = _smallest_fit(scores[:, r, c])
    return Section(z, float(r + r0), float(c + c0), float(radii_mm[i]), float(scores[i, r, c]))


def _smallest_fit(scores: np.ndarray, tolerance: float = 0.95) -> int:
    """The smallest radius scoring within ``tolerance`` of the best: a disk that spills into a
    neighbouring blood structure scores as well as the true one, never better."""
    return int(np.flatnonzero(scores >= tolerance * scores.max())[0])


def track(
    blood: np.ndarray,
    seed: Section,
    step: int,
    spacing: tuple[float, float, float],
    *,
    min_score: float,
    max_shift_mm: float,
    radius_range: tuple[float, float] = (7.0, 22.0),
    stop: int | None = None,
    bone: np.ndarray | None = None,
) -> list[Section]:
    """Follow a section slice by slice (``step`` = +1 up, -1 down) while its score holds.

    The centre may move ``max_shift_mm`` per slice; the radius stays in ``radius_range``
    (a branch vessel narrower than that ends the track).
    """
    out: list[Section] = []
    cur = seed
    z = seed.z + step
    end = (blood.shape[0] if step > 0 else -1) if stop is None else stop
    while z != end:
        rows = int(round(max_shift_mm / spacing[1]))
        cols = int(round(max_shift_mm / spacing[2]))
        radii = np.arange(radius_range[0], radius_range[1] + 0.01, 1.0)
        win = (
            slice(int(round(cur.row)) - rows, int(round(cur.row)) + rows + 1),
            slice(int(round(cur.col)) - cols, int(round(cur.col)) + cols + 1),
        )
        sec = best_section(blood[z], z, win, radii, spacing[1:], bone2d=None if bone is None else bone[z])
        if sec is None or sec.score < min_score:
            break
        out.append(sec)
        cur = sec
        z += step
    return out


def paint_sections(shape: tuple[int, int, int], sections: list[Section], spacing, grow_mm: float = 0.0) -> np.ndarray:
    """Disks of the sections (radius + ``grow_mm``) on a low-resolution grid."""
    mask = np.zeros(shape, dtype=bool)
    rr = np.arange(shape[1])[:, None] * spacing[1]
    cc = np.arange(shape[2])[None, :] * spacing[2]
    for s in sections:
        mask[s.z] |= np.hypot(rr - s.row * spacing[1], cc - s.col * spacing[2]) <= s.radius_mm + grow_mm
    return mask


def candidates(
    blood2d: np.ndarray,
    z: int,
    window: tuple[slice, slice],
    radii_mm: np.ndarray,
    spacing: tuple[float, float],
    *,
    bone2d: np.ndarray | None = None,
    min_score: float = 0.3,
    separation_mm: float = 8.0,
    k: int = 6,
) -> list[Section]:
    """Up to ``k`` local best sections with centres in ``window``, at least ``separation_mm`` apart."""
    r0, r1 = max(window[0].start, 0), min(window[0].stop, blood2d.shape[0])
    c0, c1 = max(window[1].start, 0), min(window[1].stop, blood2d.shape[1])
    if r1 <= r0 or c1 <= c0:
        return []
    m = int(np.ceil((radii_mm.max() + RING_MM[1]) / min(spacing))) + 1
    lo_r, lo_c = max(r0 - m, 0), max(c0 - m, 0)
    bsub = None if bone2d is None else bone2d[lo_r : r1 + m, lo_c : c1 + m]
    scores = score_maps(blood2d[lo_r : r1 + m, lo_c : c1 + m], radii_mm, spacing, bsub)
    scores = scores[:, r0 - lo_r : r1 - lo_r, c0 - lo_c : c1 - lo_c]
    best = scores.max(axis=0)
    out: list[Section] = []
    sep = (separation_mm / spacing[0], separation_mm / spacing[1])
    for flat in np.argsort(best, axis=None)[::-1]:
        r, c = np.unravel_index(int(flat), best.shape)
        if best[r, c] < min_score or len(out) >= k:
            break
        if any(((s.row - r0 - r) / sep[0]) ** 2 + ((s.col - c0 - c) / sep[1]) ** 2 < 1.0 for s in out):
            continue
        i = _smallest_fit(scores[:, r, c])
        out.append(Section(z, float(r + r0), float(c + c0), float(radii_mm[i]), float(scores[i, r, c])))
    return out


def best_chain(
    per_slice: dict[int, list[Section]],
    spacing: tuple[float, float, float],
    *,
    max_shift_mm: float,
    radius_weight: float = 0.5,
    shift_weight: float = 0.25,
    gap_cost: float = 0.3,
) -> list[Section]:
    """The chain of sections over nearby slices with the highest total score (dynamic programming).

    Each link costs ``shift_weight`` x shift / ``max_shift_mm`` plus ``radius_weight`` x the
    relative radius change; links longer than ``max_shift_mm`` are not allowed. A link may
    skip one slice (where the vessel is pressed against a neighbour and scores nothing) for
    ``gap_cost`` more, with twice the shift allowed. A chain scores the sum of its
    sections' scores less its link costs, so the longest steady track of round sections
    wins over short bright ones.
    """
    zs = sorted(per_slice)
    total: dict[tuple[int, int], float] = {}
    back: dict[tuple[int, int], tuple[int, int] | None] = {}
    for z in zs:
        for i, s in enumerate(per_slice[z]):
            best, arg = s.score, None
            for gap in (1, 2):
                for j, p in enumerate(per_slice.get(z - gap, [])):
                    shift = np.hypot((s.row - p.row) * spacing[1], (s.col - p.col) * spacing[2])
                    if shift > gap * max_shift_mm:
                        continue
                    cost = shift_weight * shift / (gap * max_shift_mm) + radius_weight * abs(
                        s.radius_mm - p.radius_mm
                    ) / max(p.radius_mm, s.radius_mm)
                    value = total[(z - gap, j)] + s.score - cost - gap_cost * (gap - 1)
                    if value > best:
                        best, arg = value, (z - gap, j)
            total[(z, i)], back[(z, i)] = best, arg
    if not total:
        return []
    key: tuple[int, int] | None = max(total, key=total.get)  # type: ignore[arg-type]
    chain = []
    while key is not None:
        chain.append(per_slice[key[0]][key[1]])
        key = back[key]
    return chain[::-1]
