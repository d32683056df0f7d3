"""Esophagus and lymph nodes of the great-vessel chest, painted into fat (and lung) only,
so that they never cut a vessel, the airway, the heart or bone.

* Esophagus: collapsed, 15-20 mm across, behind the trachea, then behind the left atrium
  and to the right of the descending aorta, through the hiatus to the left of the midline.
* Lymph nodes at the usual stations (IASLC): upper and lower paratracheal (2R, 4R, 4L),
  prevascular (3A), subaortic (5, the aortopulmonary window), para-aortic (6),
  subcarinal (7), hilar (10R, 10L); 5-10 mm short axis, a random subset per patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcac2.pipeline.synth.anatomy import Thorax
from deepcac2.pipeline.synth.labels import Tissue
from deepcac2.pipeline.synth.shapes import Grid, ellipsoid, tube
from deepcac2.pipeline.synth.vessels import GreatVessels, smooth_path

#: what the esophagus and nodes may be painted into
SOFT = (Tissue.FAT, Tissue.LUNG, Tissue.LUNG_VESSEL, Tissue.SOFT_TISSUE)


@dataclass(frozen=True)
class Node:
    station: str
    center: np.ndarray
    radii: np.ndarray
    #: voxels it got (0 when everything there was something else)
    n_voxels: int


def _soft(anat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    ok = np.zeros(256, dtype=bool)
    ok[list(SOFT)] = True
    return idx[ok[anat.flat[idx]]]


def paint_esophagus(
    anat: np.ndarray, grid: Grid, thorax: Thorax, gv: GreatVessels, z_atrium: float, z_lo: float, z_hi: float
) -> None:
    s = thorax.scale
    tx, ty, tz = thorax.carina
    tr = thorax.trachea_radius
    vx, vy, vr = thorax.vertebra
    r = 7.5 * s
    behind = vy - vr - r - 1.0 * s  # in front of the vertebral body
    i = int(np.argmin(np.abs(gv.aorta.path[:, 2] - z_atrium) + 1e3 * (gv.aorta.segment != 3)))
    x_heart = min(gv.aorta.path[i, 0] - gv.aorta.radii[i] - r - 1.0 * s, vx + 4.0 * s)
    pts, _ = smooth_path(
        [
            np.array([tx + 4.0 * s, ty + tr + r + 1.0 * s, max(z_hi, tz + 60.0)]),
            np.array([tx + 6.0 * s, min(ty + tr + r + 1.0 * s, behind), tz]),
            np.array([x_heart, behind, z_atrium]),
            np.array([vx + 12.0 * s, behind - 12.0 * s, z_atrium - 60.0]),
            np.array([vx + 28.0 * s, behind - 30.0 * s, min(z_lo, tz - 150.0)]),
        ]
    )
    anat.flat[_soft(anat, tube(grid, pts, r))] = Tissue.ESOPHAGUS


def node_stations(thorax: Thorax, gv: GreatVessels) -> dict[str, np.ndarray]:
    s = thorax.scale
    tx, ty, tz = thorax.carina
    tr = thorax.trachea_radius
    bif, top = gv.bifurcation, gv.arch_top
    r_arch = float(gv.aorta.radii[np.argmin(np.linalg.norm(gv.aorta.path - top, axis=1))])
    return {
        "2R": np.array([tx - tr - 7.0 * s, ty - 5.0 * s, tz + 45.0]),
        "4R": np.array([tx - tr - 8.0 * s, ty - 4.0 * s, tz + 12.0]),
        "4L": np.array([tx + tr + 5.0 * s, ty - 2.0 * s, tz + 2.0]),
        "3A": top + np.array([-12.0 * s, -(r_arch + 9.0) * s, 4.0]),
        "5": np.array([bif[0] + 6.0 * s, bif[1] + 6.0 * s, (bif[2] + top[2]) / 2]),
        "6": top + np.array([14.0 * s, -(r_arch + 3.0) * s, -8.0]),
        "7": np.array([tx + 2.0 * s, ty + 4.0 * s, tz - 18.0]),
        "10R": np.array([tx - 30.0 * s, ty + 4.0 * s, tz - 22.0]),
        "10L": np.array([tx + 42.0 * s, ty + 8.0 * s, tz - 26.0]),
    }


def paint_nodes(anat: np.ndarray, grid: Grid, thorax: Thorax, gv: GreatVessels, rng: np.random.Generator) -> list[Node]:
    """A random subset of stations, each with one node of 5-10 mm short axis (mediastinal fat or hilum)."""
    stations = node_stations(thorax, gv)
    names = list(stations)
    pick = rng.choice(len(names), size=int(rng.integers(5, len(names) + 1)), replace=False)
    out = []
    for k in sorted(pick):
        radii = np.array([rng.uniform(2.5, 5.0), rng.uniform(2.5, 5.0), rng.uniform(3.0, 7.0)])
        center = stations[names[k]] + rng.normal(0.0, 2.0, 3)
        hit = ellipsoid(grid, center, radii)
        n = 0
        if hit is not None:
            sl, m = hit
            sub = anat[sl]
            m = m & np.isin(sub, SOFT)
            sub[m] = Tissue.LYMPH_NODE
            n = int(m.sum())
        out.append(Node(names[k], center, radii, n))
    return out
