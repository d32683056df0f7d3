"""Heart, coronary arteries, aortic root and arch, and the calcified distractors.

The heart is a rotated ellipsoid whose long axis runs from the base (right, posterior,
superior) to the apex (left, anterior, inferior), in layers: pericardial fat, then
myocardium, then four blood-filled chambers. The coronaries are curved tubes in the
pericardial fat, drawn on a surface between the myocardium and the pericardium:

* LAD down the anterior interventricular groove to the apex;
* LM from the aortic root to the LAD/LCX bifurcation;
* LCX round the left atrioventricular groove to the back;
* RCA round the right atrioventricular groove, then down the posterior groove.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepcac2.pipeline.synth.anatomy import Thorax
from deepcac2.pipeline.synth.labels import Distractor, Tissue
from deepcac2.pipeline.synth.shapes import Grid, ellipsoid, resample_polyline, tube

#: outer (pericardial) semi-axes along (long axis u, v, w) at scale 1
HEART_RADII = np.array([70.0, 54.0, 50.0])
PERICARDIAL_FAT_MM = 7.0
#: chambers: local centre (u, v, w) and semi-axes, mm at scale 1. +v is left/posterior (LV side)
CHAMBERS = (
    ((9.0, 14.0, 0.0), (39.0, 18.0, 20.0)),  # left ventricle
    ((0.0, -20.0, 6.0), (36.0, 12.0, 22.0)),  # right ventricle
    ((-43.0, 14.0, 0.0), (15.0, 16.0, 16.0)),  # left atrium
    ((-39.0, -18.0, 0.0), (15.0, 13.0, 16.0)),  # right atrium
)
#: the great-vessel chest's chambers: the left atrium larger and further back, as in a
#: 55-74-year-old (LA 35-45 mm front to back), bulging behind the pericardium with only a
#: thin wall and a thin layer of fat over it (where it meets the descending aorta)
GREAT_VESSEL_CHAMBERS = (*CHAMBERS[:2], ((-38.0, 28.0, -8.0), (19.0, 19.0, 21.0)), CHAMBERS[3])
#: wall and fat over the bulging left atrium, mm at scale 1
ATRIUM_WALL_MM, ATRIUM_FAT_MM = 2.5, 2.0
#: coronary lumen radius, mm
CORONARY_RADIUS = {"LM": 2.0, "LAD": 1.6, "LCX": 1.5, "RCA": 1.8}
#: the coronaries run at this fraction of the pericardial radii (inside the fat layer)
SURFACE = 0.93


@dataclass
class Heart:
    center: np.ndarray
    axes: np.ndarray  # 3x3, columns u, v, w in LPS
    radii: np.ndarray
    #: coronary centrelines (LPS mm, 0.5 mm apart), keyed by vessel name
    paths: dict[str, np.ndarray] = field(default_factory=dict)
    aortic_root: np.ndarray | None = None
    aortic_root_radius: float = 0.0


def _frame(rng: np.random.Generator) -> np.ndarray:
    return frame_from_long_axis(np.array([0.6, -0.45, -0.55]) + rng.normal(0.0, 0.04, 3))


def frame_from_long_axis(u: np.ndarray) -> np.ndarray:
    """Heart axes (columns u, v, w): u base to apex, v horizontal (towards the left-posterior side)."""
    u = u / np.linalg.norm(u)
    v = np.array([-u[1], u[0], 0.0])
    v /= np.linalg.norm(v)
    return np.stack([u, v, np.cross(u, v)], axis=1)


def surface_curve(heart: Heart, a: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """LPS points on the coronary surface at long-axis fraction ``a`` and angle ``phi`` round it."""
    r = heart.radii * SURFACE
    ring = np.sqrt(np.clip(1.0 - a**2, 0.0, 1.0))
    local = np.stack([r[0] * a, r[1] * ring * np.cos(phi), r[2] * ring * np.sin(phi)], axis=1)
    return heart.center + local @ heart.axes.T


#: chamber blood labels, in CHAMBERS order
CHAMBER_TISSUES = (Tissue.LEFT_VENTRICLE, Tissue.RIGHT_VENTRICLE, Tissue.LEFT_ATRIUM, Tissue.RIGHT_ATRIUM)


def place_heart(thorax: Thorax, rng: np.random.Generator) -> Heart:
    """Where the heart is, how it is turned and how big (nothing painted yet)."""
    s = thorax.scale
    center = np.array([20.0 * s, -22.0 * s, 0.0]) + rng.normal(0.0, 3.0, 3) * np.array([s, s, 1.0])
    return Heart(center=center, axes=_frame(rng), radii=HEART_RADII * s * rng.uniform(0.93, 1.07))


def paint_heart(
    anat: np.ndarray, heart_mask: np.ndarray, grid: Grid, thorax: Thorax, rng: np.random.Generator
) -> Heart:
    """The heart of the plain chest: body, coronary paths, aortic root and a simple arch, coronaries."""
    heart = place_heart(thorax, rng)
    if not paint_heart_body(anat, heart_mask, grid, heart, thorax.scale):
        return heart
    trace_coronaries(heart, rng, thorax.scale)
    _paint_aorta(anat, heart_mask, grid, heart, thorax)
    paint_coronaries(anat, heart_mask, grid, heart, thorax.scale)
    return heart


def paint_heart_body(
    anat: np.ndarray,
    heart_mask: np.ndarray,
    grid: Grid,
    heart: Heart,
    s: float,
    chambers: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = CHAMBERS,
    atrium_bulge: bool = False,
    fat_mm: float = PERICARDIAL_FAT_MM,
) -> bool:
    """Pericardial fat, myocardium and the four chambers; False when the heart misses the grid.

    ``atrium_bulge``: the left atrium may reach out of the pericardial ellipsoid; where it
    does it gets its own wall and a thin layer of fat (part of the heart). ``fat_mm``: the
    pericardial fat's thickness (the myocardium's outside lies this far inside the radii).
    """
    outer = ellipsoid(grid, heart.center, heart.radii, heart.axes)
    if outer is None:
        return False
    sl, m = outer
    anat[sl][m] = Tissue.PERICARDIAL_FAT
    heart_mask[sl] |= m
    sl, m = ellipsoid(grid, heart.center, heart.radii - fat_mm * s, heart.axes)
    anat[sl][m] = Tissue.MYOCARDIUM
    if atrium_bulge:
        c, r = chambers[2]
        center = heart.center + heart.axes @ (np.array(c) * s)
        hit = ellipsoid(grid, center, (np.array(r) + ATRIUM_WALL_MM + ATRIUM_FAT_MM) * s, heart.axes)
        if hit is not None:
            sl, m = hit
            m = m & ~heart_mask[sl]
            anat[sl][m] = Tissue.PERICARDIAL_FAT
            heart_mask[sl] |= m
            sl, m = ellipsoid(grid, center, (np.array(r) + ATRIUM_WALL_MM) * s, heart.axes)
            anat[sl][m] = Tissue.MYOCARDIUM
    for (c, r), tissue in zip(chambers, CHAMBER_TISSUES, strict=True):
        hit = ellipsoid(grid, heart.center + heart.axes @ (np.array(c) * s), np.array(r) * s, heart.axes)
        if hit is not None:
            anat[hit[0]][hit[1]] = tissue
    return True


def trace_coronaries(heart: Heart, rng: np.random.Generator, s: float) -> None:
    """Coronary centrelines on the heart's surface, and the aortic root beside the LM ostium."""
    # coronary centrelines in (a, phi); phi = +pi/2 is the anterior interventricular groove
    t = np.linspace(0.0, 1.0, 400)
    wig = rng.uniform(0.02, 0.05)
    half = np.pi / 2
    curves = {
        "LM": (-0.74 + 0.14 * t, half + 0.35 - 0.4 * t),
        "LAD": (-0.6 + 1.5 * t, half - 0.05 + wig * np.sin(9 * t)),
        "LCX": (-0.6 + 0.08 * t + wig * np.sin(7 * t), half - 0.05 - 2.0 * t),
        "RCA": (
            np.where(t < 0.7, -0.62 + wig * np.sin(8 * t), -0.62 + (t - 0.7) * 2.5),
            np.where(t < 0.7, half + 0.45 + (np.pi - 0.45) * t / 0.7, 3 * half + 0.45),
        ),
    }
    for name, (a, phi) in curves.items():
        pts, _ = resample_polyline(surface_curve(heart, np.clip(a, -0.95, 0.95), phi), 0.5)
        heart.paths[name] = pts
    # aortic root: just right of and behind the LM ostium
    ostium = heart.paths["LM"][0]
    root_r = 13.0 * s
    heart.aortic_root = ostium + np.array([-0.6 * root_r, 0.55 * root_r, -3.0])
    heart.aortic_root_radius = root_r


def paint_coronaries(anat: np.ndarray, heart_mask: np.ndarray, grid: Grid, heart: Heart, s: float) -> None:
    """The coronary lumens, last, so nothing painted before cuts them."""
    for name, pts in heart.paths.items():
        idx = tube(grid, pts, CORONARY_RADIUS[name] * max(s, 0.6))
        anat.flat[idx] = Tissue.CORONARY
        heart_mask.flat[idx] = True


def _paint_aorta(anat: np.ndarray, heart_mask: np.ndarray, grid: Grid, heart: Heart, thorax: Thorax) -> None:
    """Ascending aorta from the root up to z = 85 mm, then the arch over to the descending aorta."""
    root, r = heart.aortic_root, heart.aortic_root_radius
    top = np.array([root[0], root[1], 85.0])
    dx, dy = thorax.descending_aorta_xy
    t = np.linspace(0.0, np.pi, 60)[:, None]
    mid = (top[:2] + np.array([dx, dy])) / 2
    arch = np.concatenate(
        [mid + np.outer(-np.cos(t[:, 0]), (np.array([dx, dy]) - top[:2]) / 2), 85.0 + 25.0 * np.sin(t)], axis=1
    )
    pts, _ = resample_polyline(np.vstack([root, top, arch]), 1.0)
    radii = np.where(pts[:, 2] < 85.0, r, thorax.aorta_radius)
    radii[len(radii) // 2 :] = thorax.aorta_radius
    idx = tube(grid, pts, radii)
    anat.flat[idx] = Tissue.AORTA


def paint_distractors(
    anat: np.ndarray,
    hu: np.ndarray,
    labels: np.ndarray,
    grid: Grid,
    heart: Heart,
    thorax: Thorax,
    rng: np.random.Generator,
) -> None:
    """Aortic wall, aortic valve and mitral annulus calcium: dense, near the heart, not coronary."""
    s = thorax.scale
    blobs: list[tuple[np.ndarray, float, int, Distractor]] = []
    root, rr = heart.aortic_root, heart.aortic_root_radius
    for k in range(3):  # three cusps of the aortic valve
        ang = 2 * np.pi * k / 3 + rng.uniform(0, 0.5)
        blobs.append((root + [0.7 * rr * np.cos(ang), 0.7 * rr * np.sin(ang), 4.0], 2.0, 650, Distractor.AORTIC_VALVE))
    u, v, w = heart.axes.T
    annulus = heart.center + u * (-31.0 * s) + v * (14.0 * s)
    for ang in np.linspace(-1.2, 1.2, 4):  # a C-shaped arc of mitral annulus calcium
        p = annulus + 12.0 * s * (np.cos(ang) * v + np.sin(ang) * w)
        blobs.append((p, 2.5, 500, Distractor.MITRAL_ANNULUS))
    dx, dy = thorax.descending_aorta_xy
    for zc in (-30.0, 10.0, 50.0, 75.0):  # plaques in the descending aortic wall
        ang = rng.uniform(0, 2 * np.pi)
        p = np.array([dx + thorax.aorta_radius * np.cos(ang), dy + thorax.aorta_radius * np.sin(ang), zc])
        blobs.append((p, rng.uniform(1.5, 3.0), int(rng.integers(300, 900)), Distractor.AORTIC_WALL))
    for p, radius, value, kind in blobs:
        hit = ellipsoid(grid, p, np.full(3, radius * max(s, 0.6)))
        if hit is None:
            continue
        sl, m = hit
        anat[sl][m] = Tissue.DISTRACTOR_CALCIUM
        hu[sl][m] = value
        labels[sl][m] = kind
