"""The thoracic aorta on non-contrast CT: descending aorta, arch and ascending aorta.

All on the low-resolution canonical view of ``thorax.py`` (axis 0 superior, 1 posterior,
2 left), with the round-section template of ``sections.py``:

1. **descending aorta**: on every lung-bearing slice, round sections (radius 8-20 mm)
   in a window beside the spine (up to 50 mm in front of the vertebral body's front,
   15 mm right to 55 mm left of its centre); the chain of sections with the highest total
   score over consecutive slices (dynamic programming: small shifts, steady radius) is
   the descending aorta (with ``skip_esophagus``, not yet the default: unless it is the
   esophagus: a chain no wider than the template's
   smallest radius whose centre runs directly in front of the spine (the esophagus is about
   15 mm across and, collapsed or not, scores like a small vessel; it also runs on above the
   arch, so its chain is the longest; then the best chain of the sections it did not use
   is taken). It runs from the diaphragm (or the scan's end) up into the arch.
2. **ascending aorta**: round sections in the anterior mediastinum (in front of the
   descending aorta by at least 15 mm, at most 110 mm to its right), radius 0.8-1.8 x
   the descending radius, on the slices up to 100 mm below the arch; the best chain whose
   top comes within ``arch_gap_mm`` of the descending aorta's top. It is then followed
   down into the heart while the template still fits (the root is bordered by the heart,
   so the score is lower there) for at most ``root_mm`` below the pulmonary bifurcation
   (set by ``vessels.py``; the aortic valve lies about 30-45 mm below it).
3. **arch**: on the top slices, where the ascending and descending sections lie in one
   blood-density component, the blood-density pixels of the convex hull of the two disks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from .morphology import dilate_mm
from .sections import Section, best_chain, best_section, candidates, paint_sections
from .thorax import Thorax

DESC_RADII_MM = (8.0, 20.0)
#: the descending aorta's window relative to the vertebral body (front row, centre column)
DESC_ANTERIOR_MM, DESC_POSTERIOR_MM = 50.0, 10.0
DESC_RIGHT_MM, DESC_LEFT_MM = 15.0, 55.0
#: a chain whose median radius is this close to the smallest template is narrower than the
#: descending aorta (20-30 mm across): the esophagus (about 15 mm), the azygos vein or nodes
THIN_MARGIN_MM = 0.5
#: the esophagus runs directly in front of the vertebral body; the descending aorta lies left of it
ESOPHAGUS_OFFSET_MM = 10.0
#: chains tried, best first, before the first is kept anyway
DESC_CHAINS = 4
#: consecutive narrow sections that end the descending chain (a branch, not a crossing bronchus)
NARROW_RUN = 4
#: off by default. On, the descending aorta mask takes the best chain that is not the esophagus (the arch
#: and the heart's top are still found from the best chain beside the spine, ``descending_chains``); but
#: the aorta's chain can start higher than the best chain (check seed 3007: at slice 36, so the wall calcium
#: at 29-30 is left in the heart and counted), docs/models.md, issue 21, branch ``arch``
SKIP_ESOPHAGUS = False
#: the ascending aorta is the widest near-arch chain, not the one with the highest total score: the superior
#: vena cava beside it (radius about 9 mm, free in lung on its right) is round over a longer run than the
#: aorta pressed against it, the trunk and the right pulmonary artery (13-18 mm); docs/models.md, "ascend"
ASCENDING_BY_WIDTH = True
#: chains tried for the widest (the aorta pressed against its neighbours is often not among the first four)
ASCENDING_CHAINS = 6
#: a near-arch chain shorter than this is not the ascending aorta (a few round sections of a branch)
ASCENDING_MIN_MM = 10.0
#: per slice down the aortic root, how far back or left its centre may move
ROOT_STEP_MM = 6.0
#: the wall and its calcified plaques outside the blood-density lumen the template measures
WALL_MM = 2.5


@dataclass
class AortaTrack:
    """Sections of the thoracic aorta (low-resolution pixel units) and its low-resolution mask."""

    descending: list[Section]
    ascending: list[Section] = field(default_factory=list)
    #: slices painted as arch (hull of the two limbs)
    arch_slices: tuple[int, ...] = ()
    mask: np.ndarray | None = None

    @property
    def radius_mm(self) -> float:
        """The descending aorta's typical radius."""
        return float(np.median([s.radius_mm for s in self.descending])) if self.descending else 0.0

    @property
    def top(self) -> int:
        return max([s.z for s in self.descending + self.ascending], default=-1)


def cut_branches(chain: list[Section], fraction: float = 0.8) -> list[Section]:
    """The chain up to the first section above its middle narrower than ``fraction`` x its median
    radius: above the arch the track would go on into a branch (subclavian, brachiocephalic)."""
    if len(chain) < 3:
        return chain
    r = float(np.median([s.radius_mm for s in chain]))
    for i in range(len(chain) // 2, len(chain)):
        if chain[i].radius_mm < fraction * r:
            return chain[:i]
    return chain


def cut_descending(chain: list[Section], fraction: float = 0.8, run: int = NARROW_RUN) -> list[Section]:
    """The descending chain up to the first ``run`` consecutive sections above its middle narrower than
    ``fraction`` x its median radius (a branch stays narrow; where the left main bronchus crosses it the
    aorta looks narrow for a slice or three, and cutting there would end the arch, and so the heart's
    top, too low), or up to a narrow stretch that reaches the chain's top."""
    if len(chain) < 3:
        return chain
    r = float(np.median([s.radius_mm for s in chain]))
    narrow = [s.radius_mm < fraction * r for s in chain]
    for i in range(len(chain) // 2, len(chain)):
        if all(narrow[i : i + run]):
            return chain[:i]
    return chain


def _max_shift(spacing) -> float:
    # the aorta moves little between slices; thick slices allow more
    return max(8.0, 1.2 * spacing[0])


def descending_chains(th: Thorax, blood: np.ndarray, bone: np.ndarray) -> tuple[list[Section], list[Section]]:
    """(the best chain of round sections beside the spine, cut by ``cut_branches``; the best chain that does
    not look like the esophagus, cut by ``cut_descending``): the first is the old rule's descending aorta, the
    esophagus on the great-vessel phantoms; the second is the aorta (the same chain where the best one is)."""
    sp = th.spacing
    lung_area = th.lungs.sum(axis=(1, 2))
    radii = np.arange(DESC_RADII_MM[0], DESC_RADII_MM[1] + 0.01, 1.0)
    per: dict[int, list[Section]] = {}
    for z in np.flatnonzero(lung_area >= 0.1 * lung_area.max()):
        fr, mc = th.spine_front[z], th.spine_col[z]
        win = (
            slice(int(fr - DESC_ANTERIOR_MM / sp[1]), int(fr + DESC_POSTERIOR_MM / sp[1])),
            slice(int(mc - DESC_RIGHT_MM / sp[2]), int(mc + DESC_LEFT_MM / sp[2])),
        )
        per[int(z)] = candidates(blood[z], int(z), win, radii, sp[1:], bone2d=bone[z])
    first: list[Section] = []
    for i in range(DESC_CHAINS):
        chain = best_chain(per, sp, max_shift_mm=_max_shift(sp))
        first = chain if i == 0 else first
        if len(chain) < 2 or not looks_like_esophagus(chain, th):
            return cut_branches(first), cut_descending(chain if len(chain) >= 2 else first)
        used = {(s.z, s.row, s.col) for s in chain}
        per = {z: [s for s in secs if (s.z, s.row, s.col) not in used] for z, secs in per.items()}
    # every chain tried looked like the esophagus: the best one, as before
    return cut_branches(first), cut_descending(first)


def find_descending(
    th: Thorax, blood: np.ndarray, bone: np.ndarray, *, skip_esophagus: bool | None = None
) -> list[Section]:
    """The descending aorta: the best chain of round sections beside the spine; with ``skip_esophagus``
    (default ``SKIP_ESOPHAGUS``), the best chain that does not look like the esophagus."""
    best, aorta = descending_chains(th, blood, bone)
    return aorta if (SKIP_ESOPHAGUS if skip_esophagus is None else skip_esophagus) else best


def looks_like_esophagus(chain: list[Section], th: Thorax) -> bool:
    """A chain of the smallest sections (median radius within ``THIN_MARGIN_MM`` of the template's
    smallest) whose centre lies, in the median, within ``ESOPHAGUS_OFFSET_MM`` of the spine's
    centre column: the esophagus, not the descending aorta."""
    radius = float(np.median([s.radius_mm for s in chain]))
    offset = float(np.median([(s.col - th.spine_col[s.z]) * th.spacing[2] for s in chain]))
    return radius <= DESC_RADII_MM[0] + THIN_MARGIN_MM and abs(offset) <= ESOPHAGUS_OFFSET_MM


def find_ascending(
    th: Thorax,
    blood: np.ndarray,
    bone: np.ndarray,
    desc: list[Section],
    *,
    arch_gap_mm: float = 30.0,
    by_width: bool | None = None,
) -> list[Section]:
    """The ascending aorta above the heart: of the chains of round anterior sections reaching up to the arch,
    the widest (``by_width``, default ``ASCENDING_BY_WIDTH``) or the one with the highest total score."""
    by_width = ASCENDING_BY_WIDTH if by_width is None else by_width
    if not desc:
        return []
    sp = th.spacing
    rd = float(np.median([s.radius_mm for s in desc]))
    top = desc[-1].z
    by_z = {s.z: s for s in desc}
    radii = np.arange(max(9.0, 0.8 * rd), min(25.0, 1.8 * rd) + 0.01, 1.0)
    per: dict[int, list[Section]] = {}
    allowed = ndi.binary_dilation(th.mediastinum, iterations=2)  # centres inside the mediastinum
    for z in range(max(0, top - int(round(100.0 / sp[0]))), top + 1):
        d = by_z.get(z, desc[-1])
        win = (
            slice(0, int(d.row - 15.0 / sp[1])),
            slice(int(d.col - 110.0 / sp[2]), int(d.col + 20.0 / sp[2])),
        )
        per[z] = candidates(blood[z], z, win, radii, sp[1:], bone2d=bone[z])
        per[z] = [s for s in per[z] if allowed[z, int(s.row), int(s.col)]]
    chains = []
    for _ in range(ASCENDING_CHAINS if by_width else 4):
        chain = best_chain(per, sp, max_shift_mm=_max_shift(sp))
        if len(chain) < 2:
            break
        chains.append(chain)
        if by_width:  # one vessel, one chain: off-centre disks of the same lumen make no chain of their own
            on = {c.z: c for c in chain}
            per = {z: [s for s in secs if not _inside(s, on.get(z), sp)] for z, secs in per.items()}
        else:
            used = {(s.z, s.row, s.col) for s in chain}
            per = {z: [s for s in secs if (s.z, s.row, s.col) not in used] for z, secs in per.items()}
    near_arch = [c for c in chains if (top - c[-1].z) * sp[0] <= arch_gap_mm]
    if not near_arch:
        return []
    if not by_width:  # the old choice: the chain with the highest total score (often the vena cava)
        return cut_branches(max(near_arch, key=lambda c: sum(s.score for s in c)))
    # the widest chain of some length: the superior vena cava is round and free over a longer run, but narrower
    long_enough = [c for c in near_arch if len(c) * sp[0] >= ASCENDING_MIN_MM] or near_arch
    return cut_branches(max(long_enough, key=lambda c: (_median_radius(c), sum(s.score for s in c))))


def _inside(s: Section, c: Section | None, sp) -> bool:
    return c is not None and np.hypot((s.row - c.row) * sp[1], (s.col - c.col) * sp[2]) <= c.radius_mm


def _median_radius(chain: list[Section]) -> float:
    return float(np.median([s.radius_mm for s in chain]))


def extend_root(
    th: Thorax, blood: np.ndarray, bone: np.ndarray, asc: list[Section], lowest: int, *, min_score: float = 0.3
) -> list[Section]:
    """Follow the ascending aorta down into the heart, no lower than slice ``lowest``.

    Going down, the aorta runs back and to the left towards its root at the heart's centre;
    the step allows 2 mm to the front or right and ``ROOT_STEP_MM`` back or left (a wider
    step wanders into the right atrium, whose border with the lung scores better than the
    root, surrounded by the heart).
    """
    if not asc:
        return asc
    sp = th.spacing
    ra = float(np.median([s.radius_mm for s in asc]))
    radii = np.arange(0.8 * ra, 1.1 * ra + 0.01, 1.0)
    cur, out = asc[0], []
    for z in range(cur.z - 1, max(lowest, 0) - 1, -1):
        win = (
            slice(int(round(cur.row - 2.0 / sp[1])), int(round(cur.row + ROOT_STEP_MM / sp[1])) + 1),
            slice(int(round(cur.col - 2.0 / sp[2])), int(round(cur.col + ROOT_STEP_MM / sp[2])) + 1),
        )
        sec = best_section(blood[z], z, win, radii, sp[1:], bone2d=bone[z])
        if sec is None or sec.score < min_score:
            break
        out.append(sec)
        cur = sec
    return out[::-1] + asc


def _segment_fraction(blood2d: np.ndarray, a: Section, d: Section, n: int = 40) -> float:
    """Fraction of blood-density pixels on the straight line between two section centres."""
    t = np.linspace(0.0, 1.0, n)
    rows = np.round(a.row + t * (d.row - a.row)).astype(int)
    cols = np.round(a.col + t * (d.col - a.col)).astype(int)
    return float(blood2d[rows, cols].mean())


def arch_top(aorta: AortaTrack) -> int:
    """The arch's top slice: where the lower of the two limbs ends (both end in the arch)."""
    tops = [c[-1].z for c in (aorta.ascending, aorta.descending) if c]
    return min(tops) if tops else -1


def arch_depth(aorta: AortaTrack, spacing) -> int:
    """Slices the arch spans: its tube's outer diameter and a margin."""
    return int(np.ceil((2 * aorta.radius_mm + 10.0) / spacing[0]))


def paint_arch(
    th: Thorax, blood: np.ndarray, aorta: AortaTrack, min_fraction: float = 0.9
) -> tuple[np.ndarray, tuple[int, ...]]:
    """The arch's slices (``arch_depth`` under its top) and, where the line between the two limbs'
    centres runs in blood, the blood-density pixels of the convex hull of their disks (the
    tube between them); elsewhere the limbs' disks alone, so that the pulmonary artery under
    the arch is not taken in.
    """
    sp = th.spacing
    mask = np.zeros(th.hu.shape, dtype=bool)
    if not aorta.ascending or not aorta.descending:
        return mask, ()
    asc = {s.z: s for s in aorta.ascending}
    desc = {s.z: s for s in aorta.descending}
    top = arch_top(aorta)
    slices = tuple(range(max(top - arch_depth(aorta, sp), 0), top + 1))
    free = blood & ~th.lungs
    for z in slices:
        a = _at(asc.get(z) or aorta.ascending[-1], 0)
        d = _at(desc.get(z) or aorta.descending[-1], 0)
        limbs = paint_sections((1, *th.hu.shape[1:]), [a, d], sp)[0]
        mask[z] = limbs
        if _segment_fraction(free[z], a, d) >= min_fraction:
            mask[z] |= _hull(limbs) & free[z]
    return mask, slices


def _at(s: Section, z: int) -> Section:
    return Section(z, s.row, s.col, s.radius_mm, s.score)


def _hull(mask2d: np.ndarray) -> np.ndarray:
    """Convex hull of a 2-D mask (filled), by half-plane tests against the hull's edges."""
    from scipy.spatial import ConvexHull

    pts = np.argwhere(mask2d).astype(float)
    if len(pts) < 3:
        return mask2d.copy()
    hull = ConvexHull(pts)
    rr, cc = np.mgrid[: mask2d.shape[0], : mask2d.shape[1]]
    grid = np.stack([rr.ravel(), cc.ravel()], axis=1).astype(float)
    inside = np.all(grid @ hull.equations[:, :2].T + hull.equations[:, 2] <= 0.5, axis=1)
    return inside.reshape(mask2d.shape)


def paint_aorta(th: Thorax, aorta: AortaTrack, grow_mm: float = WALL_MM) -> np.ndarray:
    """Low-resolution aorta mask: the sections' disks grown by ``grow_mm`` (the lumen's template radius
    leaves out the wall and its calcium, which a segmentation of the vessel holds) and the arch."""
    mask = paint_sections(th.hu.shape, aorta.descending + aorta.ascending, th.spacing, grow_mm)
    if aorta.mask is not None and aorta.mask.any():
        # in-plane growth only (a huge slice spacing keeps the arch on its own slices)
        mask |= dilate_mm(aorta.mask, grow_mm, (1e6, th.spacing[1], th.spacing[2])) & ~th.lungs
    return mask
