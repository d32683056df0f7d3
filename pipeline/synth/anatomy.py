"""The thorax around the heart: body wall, lungs with vessels, airway, bones, liver, aorta.

All sizes are adult chest sizes in mm, multiplied in-plane by ``scale`` so that a
small field of view still holds a whole (smaller) chest. The heart sits at z = 0;
the chest runs from the liver dome below it (about z = -40 mm) to the lung apex
(about z = +200 mm). The painter's order matters: later structures overwrite
earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcac2.pipeline.synth.labels import Tissue
from deepcac2.pipeline.synth.shapes import Grid, resample_polyline, tube

#: body ellipse half axes (x, y) and centre y, mm at scale 1
BODY = (165.0, 118.0, 5.0)
#: ribcage inner ellipse half axes (x, y) and centre y
CAVITY = (137.0, 92.0, 8.0)
#: descending aorta centre (x, y) and radius
DESCENDING_AORTA = (26.0, 46.0, 12.0)
#: vertebral body centre y and radius
VERTEBRA = (70.0, 19.0)
TRACHEA_RADIUS = 9.0


@dataclass(frozen=True)
class Thorax:
    """Where the painted thorax put things the heart and distractors need."""

    scale: float
    descending_aorta_xy: tuple[float, float]
    aorta_radius: float
    #: the carina (LPS mm) and the trachea's radius
    carina: tuple[float, float, float] = (0.0, 0.0, 0.0)
    trachea_radius: float = 0.0
    #: vertebral body centre (x, y) and radius
    vertebra: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: y of the inner surface of the anterior chest wall (behind the sternum)
    sternum_back_y: float = 0.0


def _cavity_scale(z: np.ndarray) -> np.ndarray:
    """The ribcage narrows towards the lung apex."""
    return np.clip(1.0 - np.maximum(z - 50.0, 0.0) / 300.0, 0.5, 1.0).astype(np.float32)


def _diaphragm(x: np.ndarray, y: np.ndarray, s: float) -> np.ndarray:
    """Height (z, mm) of the diaphragm: right dome higher (liver), deeper posteriorly."""
    xs, ys = x / s, y / s
    right = -35.0 - 0.004 * (xs + 55.0) ** 2
    left = -55.0 - 0.004 * (xs - 55.0) ** 2
    posterior = 25.0 * np.clip((ys - CAVITY[2]) / CAVITY[1], 0.0, 1.0) ** 2
    return (np.maximum(right, left) - posterior).astype(np.float32)


def paint_thorax(
    anat: np.ndarray,
    grid: Grid,
    scale: float,
    rng: np.random.Generator,
    *,
    great_vessels: bool = False,
    extra_fat_mm: tuple[float, float] = (0.0, 0.0),
) -> Thorax:
    """Paint body wall, lungs, mediastinal fat, airway, lung vessels, liver and bones into ``anat``.

    ``great_vessels``: the great-vessel chest paints its own aorta later (no straight
    descending column here), has a wider upper mediastinum (room for the arch, the
    superior vena cava and the arch's branches) and costal cartilage between the ribs and
    the sternum. ``extra_fat_mm``: subcutaneous fat this much thicker (x, y) than the
    average adult's (obesity); the chest wall muscle and the ribcage stay where they are.
    """
    s = scale
    z = grid.axis(2)[:, None, None]
    y = grid.axis(1)[None, :, None]
    x = grid.axis(0)[None, None, :]
    y2, x2 = y[0], x[0]  # 2-D broadcastable (ny, 1) and (1, nx)

    def ellipse2d(ax: float, by: float, cy: float) -> np.ndarray:
        return (x2 / (ax * s)) ** 2 + ((y2 - cy * s) / (by * s)) ** 2

    body = ellipse2d(BODY[0] + extra_fat_mm[0], BODY[1] + extra_fat_mm[1], BODY[2]) <= 1.0
    anat[:, body] = Tissue.FAT
    anat[:, ellipse2d(BODY[0] - 14, BODY[1] - 14, BODY[2]) <= 1.0] = Tissue.MUSCLE

    # ribcage: lungs above the diaphragm, liver / upper abdomen below it
    r2 = ellipse2d(CAVITY[0], CAVITY[1], CAVITY[2])
    sc = _cavity_scale(z)
    cavity = r2[None] <= sc**2
    below = z < _diaphragm(x2, y2, s)[None]
    anat[cavity] = Tissue.LUNG
    anat[cavity & below & (x < 25.0 * s)] = Tissue.LIVER
    anat[cavity & below & (x >= 25.0 * s)] = Tissue.SOFT_TISSUE

    # mediastinum (fat), narrower above the heart
    half_w = np.where(z < 45.0, 40.0 * s, (36.0 if great_vessels else 26.0) * s).astype(np.float32)
    mediastinum = ((x - (4.0 if great_vessels else 8.0) * s) / half_w) ** 2 + ((y + 5.0 * s) / (85.0 * s)) ** 2 <= 1.0
    anat[mediastinum & cavity & ~below] = Tissue.FAT

    carina = _paint_airway(anat, grid, s)
    _paint_lung_vessels(anat, grid, s, rng)

    # descending aorta, beside the spine, from below the scan to the arch
    ax, ay, ar = (v * s for v in DESCENDING_AORTA)
    if not great_vessels:
        column = (x2 - ax) ** 2 + (y2 - ay) ** 2 <= ar**2
        anat[(z[:, 0, 0] <= 85.0)[:, None, None] & column[None]] = Tissue.AORTA

    _paint_spine(anat, z, x2, y2, s)
    _paint_ribs(anat, z, x2, y2, r2, sc, s, cartilage=great_vessels)
    _paint_sternum(anat, z, x2, y2, s)
    return Thorax(
        scale=s,
        descending_aorta_xy=(ax, ay),
        aorta_radius=ar,
        carina=tuple(float(v) for v in carina),  # type: ignore[arg-type]
        trachea_radius=TRACHEA_RADIUS * s,
        vertebra=(0.0, VERTEBRA[0] * s, VERTEBRA[1] * s),
        sternum_back_y=(CAVITY[2] - CAVITY[1]) * s,
    )


def _paint_airway(anat: np.ndarray, grid: Grid, s: float) -> np.ndarray:
    carina = np.array([-10.0 * s, 25.0 * s, 75.0])
    trachea = np.array([carina, carina + [0.0, 0.0, 200.0]])
    for path, radius in (
        (trachea, TRACHEA_RADIUS),
        (np.array([carina, [-50.0 * s, 28.0 * s, 40.0]]), 6.0),
        (np.array([carina, [38.0 * s, 32.0 * s, 42.0]]), 6.0),
    ):
        pts, _ = resample_polyline(path, 1.0)
        anat.flat[tube(grid, pts, radius * s)] = Tissue.AIRWAY
    return carina


def _paint_lung_vessels(anat: np.ndarray, grid: Grid, s: float, rng: np.random.Generator) -> None:
    """Random tapering vessel trees from each hilum, drawn only inside the lungs."""
    idx_all, rad_pts = [], []
    for side in (-1.0, 1.0):
        hilum = np.array([side * 50.0 * s, 20.0 * s, 25.0])
        for _ in range(24):
            direction = np.array([side * rng.uniform(0.3, 1.0), rng.uniform(-0.8, 0.8), rng.uniform(-0.9, 0.9)])
            direction /= np.linalg.norm(direction)
            bend = rng.normal(0.0, 0.25, 3)
            t = np.linspace(0.0, 1.0, 12)[:, None]
            length = rng.uniform(40.0, 100.0)
            path = hilum + length * (t * direction + 0.5 * t**2 * bend) * np.array([s, s, 1.0])
            pts, arc = resample_polyline(path, 1.0)
            idx_all.append(pts)
            rad_pts.append(np.interp(arc, [0.0, arc[-1]], [3.5 * s, 0.8 * s]))
    pts = np.concatenate(idx_all)
    radii = np.maximum(np.concatenate(rad_pts), 0.5)
    flat = tube(grid, pts, radii)
    flat = flat[anat.flat[flat] == Tissue.LUNG]
    anat.flat[flat] = Tissue.LUNG_VESSEL


def _paint_spine(anat: np.ndarray, z: np.ndarray, x2: np.ndarray, y2: np.ndarray, s: float) -> None:
    vy, vr = VERTEBRA[0] * s, VERTEBRA[1] * s
    d_body = np.sqrt(x2**2 + (y2 - vy) ** 2)
    d_canal = np.sqrt(x2**2 + (y2 - (vy + vr + 8.0 * s)) ** 2)
    cortical = (d_body <= vr) & (d_body > vr - 2.0 * s)
    cortical |= (d_canal > 8.0 * s) & (d_canal <= 13.0 * s)
    cortical |= (np.abs(x2) <= 4.0 * s) & (y2 > vy + vr + 18.0 * s) & (y2 <= vy + vr + 30.0 * s)
    anat[:, d_body <= vr - 2.0 * s] = Tissue.CANCELLOUS_BONE
    anat[:, cortical] = Tissue.CORTICAL_BONE
    anat[:, d_canal <= 8.0 * s] = Tissue.SOFT_TISSUE
    # intervertebral discs every 30 mm
    disc = (np.mod(z[:, 0, 0], 30.0) < 6.0)[:, None, None] & (d_body <= vr)[None]
    anat[disc] = Tissue.SOFT_TISSUE


def _paint_ribs(
    anat: np.ndarray,
    z: np.ndarray,
    x2: np.ndarray,
    y2: np.ndarray,
    r2: np.ndarray,
    sc: np.ndarray,
    s: float,
    *,
    cartilage: bool = False,
) -> None:
    """Oblique ribs: a ring just outside the ribcage ellipse, in bands that rise posteriorly.

    ``cartilage``: the anterior gap between each rib and the sternum is costal cartilage.
    """
    thick = 1.0 + 9.0 / CAVITY[1]
    yn = (y2 - CAVITY[2] * s) / (CAVITY[1] * s)
    # no ribs at the sternum (costal cartilage) or the spine
    allowed = ~(((np.abs(x2) < 30.0 * s) & (yn < 0)) | ((np.abs(x2) < 25.0 * s) & (yn > 0)))
    band = (np.mod(z - 14.0 * yn[None], 26.0) < 10.0) & (z > -120.0)
    ring = (r2[None] >= sc**2) & (r2[None] <= (sc * thick) ** 2) & allowed[None] & band
    inner = r2[None] <= (sc * (1.0 + 4.5 / CAVITY[1])) ** 2
    anat[ring & inner] = Tissue.CANCELLOUS_BONE
    anat[ring & ~inner] = Tissue.CORTICAL_BONE
    if cartilage:
        # costal cartilage: the same bands, from the rib's anterior end to the sternum's edge
        gap = (np.abs(x2) < 30.0 * s) & (np.abs(x2) > 13.0 * s) & (yn < 0)
        shell = (r2[None] >= sc**2) & (r2[None] <= (sc * thick) ** 2) & gap[None] & band
        shell &= ((z[:, 0, 0] >= -70.0) & (z[:, 0, 0] <= 120.0))[:, None, None]
        anat[shell] = Tissue.COSTAL_CARTILAGE


def _paint_sternum(anat: np.ndarray, z: np.ndarray, x2: np.ndarray, y2: np.ndarray, s: float) -> None:
    back = (CAVITY[2] - CAVITY[1]) * s  # inner surface of the anterior chest wall
    box = (np.abs(x2) <= 14.0 * s) & (y2 >= back - 13.0 * s) & (y2 <= back)
    core = (np.abs(x2) <= 12.0 * s) & (y2 >= back - 11.0 * s) & (y2 <= back - 2.0 * s)
    zr = ((z[:, 0, 0] >= -70.0) & (z[:, 0, 0] <= 120.0))[:, None, None]
    anat[zr & box[None]] = Tissue.CORTICAL_BONE
    anat[zr & core[None]] = Tissue.CANCELLOUS_BONE
