"""The great vessels of the great-vessel chest (``ChestSpec.great_vessels``).

* Aorta: root at the heart's base (right of the pulmonary trunk), ascending aorta up and
  to the right-anterior, the arch over the pulmonary bifurcation and the left main
  bronchus, running posteriorly and to the left past the trachea, then the descending
  aorta down the left front of the spine, pressed against the back of the left atrium
  and, lower, of the left ventricle (the heart is moved until it touches it).
* The arch's three branches (brachiocephalic trunk, left common carotid, left
  subclavian), the superior vena cava to the right of the ascending aorta.
* Pulmonary trunk from the right-ventricular outflow up, back and to the left, left of
  the ascending aorta and under the arch, dividing into the right pulmonary artery
  (behind the ascending aorta, in front of the right main bronchus) and the left
  (over the left main bronchus), each running to its hilum.

Centrelines are smooth splines through anatomical way-points; every point has a radius.
Points are LPS mm, x to the patient's left, y posterior, z up; in-plane lengths scale
with the chest (``s``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import make_interp_spline
from scipy.spatial import cKDTree

from deepcac2.pipeline.synth.anatomy import Thorax
from deepcac2.pipeline.synth.body import Body
from deepcac2.pipeline.synth.heart_phantom import ATRIUM_FAT_MM, ATRIUM_WALL_MM, GREAT_VESSEL_CHAMBERS, Heart
from deepcac2.pipeline.synth.labels import Tissue
from deepcac2.pipeline.synth.shapes import Grid, resample_polyline, tube

#: aortic segments along the aorta's centreline
ASCENDING, ARCH, DESCENDING = 1, 2, 3
#: how far the pericardium (outside the atrium) may press into the descending aorta, mm: less than its fat
MAX_PRESS_MM = 6.0
#: tissues a vessel never overwrites (the airway and bone keep their shape)
PROTECTED = (Tissue.AIRWAY, Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE)


@dataclass
class Vessel:
    """A tube: centreline (N, 3), radius per point, its tissue; ``segment`` per point for the aorta."""

    name: str
    path: np.ndarray
    radii: np.ndarray
    tissue: Tissue
    segment: np.ndarray | None = None


@dataclass
class GreatVessels:
    aorta: Vessel
    others: list[Vessel] = field(default_factory=list)
    #: centre of the pulmonary trunk's bifurcation
    bifurcation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    #: highest point of the aorta's centreline (top of the arch)
    arch_top: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def all(self) -> list[Vessel]:
        return [*self.others, self.aorta]


def smooth_path(points: list[np.ndarray], step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A cubic spline through way-points (chord-length parameter), resampled every ``step`` mm.

    Returns the points and, for each way-point, the index of the nearest resampled point.
    """
    p = np.asarray(points, dtype=np.float64)
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    spline = make_interp_spline(chord, p, k=3, bc_type="natural")
    dense = spline(np.linspace(0.0, chord[-1], max(8, int(chord[-1] / 0.25))))
    pts, arc = resample_polyline(dense, step)
    dense_arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    at = np.interp(chord, np.linspace(0.0, chord[-1], len(dense)), dense_arc)
    return pts, np.clip(np.searchsorted(arc, at), 0, len(pts) - 1)


def descending_xy(z: np.ndarray, thorax: Thorax, body: Body, z_atrium: float) -> np.ndarray:
    """(x, y) of the descending aorta's centre at heights ``z``.

    Beside the vertebral body at ``body.aorta_angle`` at the atrium's height, more to the
    left and back higher up (towards the arch), towards the midline lower down (towards
    the hiatus); a tortuous aorta bends away from that line, but not at the atrium.
    """
    s = thorax.scale
    vx, vy, vr = thorax.vertebra
    r = body.descending_radius * s
    z = np.asarray(z, dtype=np.float64)
    up = np.clip((z - z_atrium) / 70.0, 0.0, 1.3)
    down = np.clip((z_atrium - z) / 110.0, 0.0, 1.0)
    theta = np.clip(body.aorta_angle + np.deg2rad(35.0) * up - np.deg2rad(30.0) * down, np.deg2rad(5), np.deg2rad(95))
    dist = vr + (body.spine_gap + 0.5) * s + r
    phase = 2 * np.pi * (z - z_atrium) / 150.0
    bend = body.tortuosity * s * np.stack([9.0 * np.sin(phase), 4.0 * (1 - np.cos(phase)) / 2], axis=-1)
    return np.stack([vx + dist * np.sin(theta), vy - dist * np.cos(theta)], axis=-1) + bend


def descending_path(thorax: Thorax, body: Body, z_atrium: float, z_lo: float, z_hi: float) -> np.ndarray:
    z = np.arange(z_hi, z_lo - 1e-9, -0.5)
    return np.column_stack([descending_xy(z, thorax, body, z_atrium), z])


def _ellipsoid_surface(center: np.ndarray, radii: np.ndarray, axes: np.ndarray, n: int = 3000) -> np.ndarray:
    """``n`` points spread evenly over an ellipsoid's surface (a Fibonacci sphere, stretched)."""
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azim = np.pi * (1 + 5**0.5) * k
    unit = np.stack([np.cos(azim) * np.sin(polar), np.sin(azim) * np.sin(polar), np.cos(polar)], axis=1)
    return center + (unit * radii) @ axes.T


def atrium_geometry(heart: Heart, s: float) -> tuple[np.ndarray, np.ndarray]:
    """World centre and semi-axes of the great-vessel heart's left atrium (blood)."""
    c, r = GREAT_VESSEL_CHAMBERS[2]
    return heart.center + heart.axes @ (np.array(c) * s), np.array(r) * s


def fit_heart_to_aorta(heart: Heart, thorax: Thorax, body: Body, z_lo: float) -> float:
    """Move the heart in-plane so the left atrium lies just right of the descending aorta and
    its back presses ``body.indent`` mm into the aorta's outline. Returns the atrium's height.

    The pericardium elsewhere (the back of the ventricles) may press in too, but never more
    than MAX_PRESS_MM, less than the pericardial fat: where it would, it is the ventricles,
    not the atrium, that meet the aorta.
    """
    s = thorax.scale
    la_c, la_r = atrium_geometry(heart, s)
    z_atrium = float(la_c[2])
    x_aorta = descending_xy(np.array([z_atrium]), thorax, body, z_atrium)[0, 0]
    shift_x = x_aorta - body.atrium_offset * s - la_c[0]
    heart.center[0] += shift_x
    la_c[0] += shift_x
    tree = cKDTree(descending_path(thorax, body, z_atrium, z_lo, z_atrium + 60.0))
    r = body.descending_radius * s

    def near(points: np.ndarray) -> np.ndarray:
        return points[np.abs(points[:, 2] - z_atrium) < 80.0]

    bulge = near(_ellipsoid_surface(la_c, la_r + (ATRIUM_WALL_MM + ATRIUM_FAT_MM) * s, heart.axes, 2000))
    pericardium = near(_ellipsoid_surface(heart.center, heart.radii, heart.axes))
    limit = min(body.indent + 4.0, MAX_PRESS_MM)

    def excess(dy: float) -> float:
        d_bulge = float(np.max(r - tree.query(bulge + [0.0, dy, 0.0])[0]))
        d_peri = float(np.max(r - tree.query(pericardium + [0.0, dy, 0.0])[0]))
        return max(d_bulge - body.indent, d_peri - limit)

    lo, hi = -60.0, 60.0  # the heart moves back (+y) onto the aorta until one of them presses enough
    for _ in range(40):
        mid = (lo + hi) / 2
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid
    heart.center[1] += hi
    return z_atrium


def plan_great_vessels(
    heart: Heart, thorax: Thorax, body: Body, z_atrium: float, z_lo: float, z_hi: float
) -> GreatVessels:
    """Centrelines and radii of every great vessel, from the heart (root, chambers) and the chest."""
    s = thorax.scale
    root = np.asarray(heart.aortic_root, dtype=np.float64)
    ra, rd, rp = body.ascending_radius * s, body.descending_radius * s, body.pulmonary_radius * s
    tx, ty, tz = thorax.carina
    t = body.tortuosity

    # pulmonary trunk: from the outflow of the right ventricle, left-anterior of the root, up
    # and back to the bifurcation just below the carina
    valve = root + np.array([17.0 * s, -12.0 * s, 14.0])
    outflow = valve + np.array([-3.0 * s, -10.0 * s, -20.0])
    bif = np.array([root[0] + 24.0 * s, root[1] + 17.0 * s, max(tz - 8.0, valve[2] + 12.0)])
    trunk, _ = smooth_path([outflow, valve, (valve + bif) / 2 + [2.0 * s, -2.0 * s, 2.0], bif])
    right, _ = smooth_path(
        [bif, [root[0] + 2.0 * s, root[1] + 21.0 * s, bif[2] - 3.0], [root[0] - 22.0 * s, root[1] + 25.0 * s, bif[2] - 11.0],
         [-50.0 * s, 18.0 * s, bif[2] - 30.0]]
    )  # fmt: skip
    left, _ = smooth_path(
        [bif, bif + [12.0 * s, 12.0 * s, 3.0], bif + [26.0 * s, 20.0 * s, -4.0], [50.0 * s, 24.0 * s, bif[2] - 25.0]]
    )

    def taper(path: np.ndarray, r0: float, r1: float) -> np.ndarray:
        return np.linspace(r0, r1, len(path))

    # aorta: root -> ascending (up, right, forward) -> arch over the bifurcation, left of the
    # trachea -> descending beside the spine
    r_arch = 0.5 * (ra + rd)
    apex_z = bif[2] + rp + r_arch + body.arch_rise
    clear = thorax.trachea_radius + r_arch + 2.0 * s
    waypoints = [
        root,
        root + np.array([-2.0 * s, -3.0 * s, 15.0]),
        np.array([root[0] - (6.0 + 6.0 * t) * s, root[1] - (6.0 + 4.0 * t) * s, apex_z - 0.9 * ra]),
        np.array([tx + 0.3 * clear, ty - 0.95 * clear, apex_z]),
        np.array([tx + 1.0 * clear, ty + 0.05 * clear, apex_z - 5.0]),
    ]
    top_desc = apex_z - 22.0
    waypoints.append(np.append(descending_xy(np.array([top_desc]), thorax, body, z_atrium)[0], top_desc))
    n_arch = len(waypoints)
    for z in np.arange(top_desc - 12.0, z_lo - 12.0, -12.0):
        waypoints.append(np.append(descending_xy(np.array([z]), thorax, body, z_atrium)[0], z))
    path, at = smooth_path(waypoints)
    i_asc, i_desc = int(at[2]), int(at[n_arch - 1])
    segment = np.full(len(path), DESCENDING, dtype=np.uint8)
    segment[:i_asc] = ASCENDING
    segment[i_asc:i_desc] = ARCH
    radii = np.empty(len(path))
    sinus = np.clip(np.arange(i_asc) / max(1, int(at[1])), 0.0, 1.0)
    radii[:i_asc] = ra * (1.12 - 0.12 * sinus)
    radii[i_asc:i_desc] = np.linspace(ra * 0.97, rd, i_desc - i_asc)
    radii[i_desc:] = np.linspace(rd, 0.9 * rd, len(path) - i_desc)
    aorta = Vessel("aorta", path, radii, Tissue.AORTA, segment)

    # the arch's branches and the superior vena cava, up to the top of the scan
    arch_pts = path[i_asc:i_desc]
    branches = []
    for frac, (dx, dy), radius, name in (
        (0.22, (-14.0, -4.0), 6.5, "brachiocephalic_trunk"),
        (0.42, (2.0, 0.0), 4.0, "left_common_carotid"),
        (0.62, (16.0, 6.0), 5.0, "left_subclavian"),
    ):
        o = arch_pts[int(frac * (len(arch_pts) - 1))]
        b, _ = smooth_path(
            [
                o,
                o + [0.3 * dx * s, 0.3 * dy * s, 25.0],
                o + [dx * s, dy * s, 60.0],
                o + [1.3 * dx * s, dy * s, max(z_hi - o[2] + 20.0, 90.0)],
            ]
        )
        branches.append(Vessel(name, b, np.full(len(b), radius * s), Tissue.ARCH_BRANCH))
    svc_x = float(np.min(path[:i_asc, 0])) - ra - 1.5 * s
    svc_r = 9.5 * s
    svc, _ = smooth_path(
        [
            np.array([svc_x + 4.0 * s, root[1] + 4.0 * s, root[2] - 12.0]),
            np.array([svc_x - svc_r, root[1] + 2.0 * s, root[2] + 15.0]),
            np.array([svc_x - svc_r - 2.0 * s, root[1], max(z_hi + 20.0, apex_z + 40.0)]),
        ]
    )
    others = [
        Vessel("superior_vena_cava", svc, np.full(len(svc), svc_r), Tissue.SUPERIOR_VENA_CAVA),
        *branches,
        Vessel("pulmonary_trunk", trunk, np.full(len(trunk), rp), Tissue.PULMONARY_ARTERY),
        Vessel("right_pulmonary_artery", right, taper(right, 0.78 * rp, 0.55 * rp), Tissue.PULMONARY_ARTERY),
        Vessel("left_pulmonary_artery", left, taper(left, 0.78 * rp, 0.55 * rp), Tissue.PULMONARY_ARTERY),
    ]
    return GreatVessels(aorta=aorta, others=others, bifurcation=bif, arch_top=path[int(np.argmax(path[:i_desc, 2]))])


def paint_great_vessels(anat: np.ndarray, heart_mask: np.ndarray, grid: Grid, gv: GreatVessels) -> None:
    """Paint every great vessel (the aorta last, so it wins where vessels meet); none of them is heart."""
    protected = np.zeros(256, dtype=bool)
    protected[list(PROTECTED)] = True
    for v in gv.all():
        idx = tube(grid, v.path, v.radii)
        idx = idx[~protected[anat.flat[idx]]]
        anat.flat[idx] = v.tissue
        heart_mask.flat[idx] = False
