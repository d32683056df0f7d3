"""Non-coronary calcium of the great-vessel chest, as seen in 55-74-year-old smokers.

Each patient draws (from the great-vessel stream) how much of each kind it has:

* aortic wall: patchy plaques in the wall (never rings), 1-3 mm thick, 3-10 mm long,
  220-1000 HU. About 80% of patients have some in the arch, fewer in the descending
  aorta, few in the ascending aorta (and then not within 15 mm of the root, where the
  coronary ostia are). Painted only into aortic voxels, so they lie in the aorta's mask.
* aortic valve (30% of patients) and mitral annulus (15%) calcium.
* calcified lymph nodes (60%): one to three nodes, wholly or at their core.
* calcified costal cartilage (70%): patches inside the cartilage.

Every voxel gets its ``labels.Distractor`` value; nothing is painted into a coronary
lumen (plaques are placed afterwards and keep their clearance from all of it).
"""

from __future__ import annotations

import numpy as np

from deepcac2.pipeline.synth.great_chest import GreatChest
from deepcac2.pipeline.synth.labels import Distractor, Tissue
from deepcac2.pipeline.synth.shapes import Grid, ellipsoid
from deepcac2.pipeline.synth.vessels import ARCH, ASCENDING, DESCENDING

#: the aortic segment -> its wall calcium label
WALL_LABEL = {
    ASCENDING: Distractor.ASCENDING_AORTA_WALL,
    ARCH: Distractor.AORTIC_ARCH_WALL,
    DESCENDING: Distractor.AORTIC_WALL,
}
#: plaques per segment at burden 1, 2, 3 (inclusive ranges)
WALL_COUNTS = {
    ARCH: ((1, 3), (3, 6), (6, 12)),
    DESCENDING: ((0, 2), (2, 5), (4, 10)),
    ASCENDING: ((0, 0), (0, 1), (0, 3)),
}
#: keep ascending-aortic plaques this far (mm along the centreline) from the root
ROOT_CLEAR_MM = 15.0


def _paint(
    anat: np.ndarray,
    hu: np.ndarray,
    labels: np.ndarray,
    grid: Grid,
    center: np.ndarray,
    radii: np.ndarray,
    axes: np.ndarray | None,
    into: tuple[Tissue, ...],
    value: int,
    kind: Distractor,
) -> int:
    """Calcium of ``value`` HU in the ellipsoid, only where the tissue is one of ``into``."""
    hit = ellipsoid(grid, center, radii, axes)
    if hit is None:
        return 0
    sl, m = hit
    m = m & np.isin(anat[sl], into)
    anat[sl][m] = Tissue.DISTRACTOR_CALCIUM
    hu[sl][m] = value
    labels[sl][m] = kind
    return int(m.sum())


def _wall_plaques(anat, hu, labels, grid, chest: GreatChest, rng: np.random.Generator) -> None:
    aorta = chest.vessels.aorta
    s = chest.thorax.scale
    if rng.random() < 0.2:
        return  # no aortic calcium
    burden = int(rng.choice(3, p=[0.4, 0.35, 0.25]))
    tangent = np.gradient(aorta.path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(aorta.path, axis=0), axis=1))])
    z_lo = float(grid.axis(2)[0])
    for segment, counts in WALL_COUNTS.items():
        lo, hi = counts[burden]
        where = np.flatnonzero((aorta.segment == segment) & (arc >= ROOT_CLEAR_MM) & (aorta.path[:, 2] >= z_lo - 5.0))
        if len(where) == 0:
            continue
        for _ in range(int(rng.integers(lo, hi + 1))):
            i = int(rng.choice(where))
            t = tangent[i]
            n = np.cross(t, rng.normal(size=3))
            n /= np.linalg.norm(n)
            b = np.cross(t, n)
            thick = rng.uniform(1.0, 2.6) * max(s, 0.6)
            radii = np.array([rng.uniform(1.5, 5.0), rng.uniform(1.5, 4.0), thick / 2]) * np.array([1, max(s, 0.6), 1])
            center = aorta.path[i] + n * (aorta.radii[i] - thick / 2)
            value = int(rng.integers(220, 1001))
            _paint(anat, hu, labels, grid, center, radii, np.stack([t, b, n], axis=1), (Tissue.AORTA,), value,
                   WALL_LABEL[segment])  # fmt: skip


def _valves(anat, hu, labels, grid, chest: GreatChest, rng: np.random.Generator) -> None:
    heart, s = chest.heart, chest.thorax.scale
    not_coronary = tuple(t for t in Tissue if t not in (Tissue.CORONARY, Tissue.CAC, Tissue.DISTRACTOR_CALCIUM))
    if rng.random() < 0.3:  # aortic valve: one to three cusps
        root, rr = heart.aortic_root, heart.aortic_root_radius
        for k in rng.choice(3, size=int(rng.integers(1, 4)), replace=False):
            ang = 2 * np.pi * k / 3 + rng.uniform(0, 0.5)
            p = root + [0.6 * rr * np.cos(ang), 0.6 * rr * np.sin(ang), 2.0]
            _paint(anat, hu, labels, grid, p, np.full(3, rng.uniform(1.5, 3.5) * max(s, 0.6)), None, not_coronary,
                   int(rng.integers(300, 901)), Distractor.AORTIC_VALVE)  # fmt: skip
    if rng.random() < 0.15:  # mitral annulus: an arc where the left atrium meets the ventricle
        u, v, w = heart.axes.T
        annulus = heart.center + u * (-26.0 * s) + v * (16.0 * s)
        start = rng.uniform(-1.5, 0.0)
        for ang in np.linspace(start, start + rng.uniform(1.0, 2.5), int(rng.integers(3, 7))):
            p = annulus + 13.0 * s * (np.cos(ang) * v + np.sin(ang) * w)
            _paint(anat, hu, labels, grid, p, np.full(3, rng.uniform(1.5, 2.5) * max(s, 0.6)), None, not_coronary,
                   int(rng.integers(300, 701)), Distractor.MITRAL_ANNULUS)  # fmt: skip


def _nodes(anat, hu, labels, grid, chest: GreatChest, rng: np.random.Generator) -> None:
    painted = [n for n in chest.nodes if n.n_voxels > 0]
    if not painted or rng.random() >= 0.6:
        return
    for k in rng.choice(len(painted), size=min(len(painted), int(rng.integers(1, 4))), replace=False):
        node = painted[k]
        whole = rng.random() < 0.5
        radii = node.radii * (1.0 if whole else rng.uniform(0.4, 0.7))
        value = int(rng.integers(350, 1001) if whole else rng.integers(250, 801))
        _paint(anat, hu, labels, grid, node.center, radii, None, (Tissue.LYMPH_NODE,), value,
               Distractor.LYMPH_NODE_CALCIUM)  # fmt: skip


def _cartilage(anat, hu, labels, grid, chest: GreatChest, rng: np.random.Generator) -> None:
    if rng.random() >= 0.7:
        return
    where = np.flatnonzero(anat == Tissue.COSTAL_CARTILAGE)
    if len(where) == 0:
        return
    s = chest.thorax.scale
    origin, spacing = np.asarray(grid.origin), np.asarray(grid.spacing)
    for flat in rng.choice(where, size=int(rng.integers(4, 26))):
        k, j, i = np.unravel_index(flat, grid.shape)
        center = origin + spacing * np.array([i, j, k])
        _paint(anat, hu, labels, grid, center, np.full(3, rng.uniform(1.0, 3.0) * max(s, 0.6)), None,
               (Tissue.COSTAL_CARTILAGE,), int(rng.integers(180, 601)), Distractor.COSTAL_CARTILAGE_CALCIUM)  # fmt: skip


def paint_great_calcium(
    anat: np.ndarray, hu: np.ndarray, labels: np.ndarray, grid: Grid, chest: GreatChest, rng: np.random.Generator
) -> None:
    if chest.vessels is None:
        return
    _wall_plaques(anat, hu, labels, grid, chest, rng)
    _valves(anat, hu, labels, grid, chest, rng)
    _nodes(anat, hu, labels, grid, chest, rng)
    _cartilage(anat, hu, labels, grid, chest, rng)
