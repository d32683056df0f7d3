"""The great-vessel chest (``ChestSpec.great_vessels``): the plain chest's heart and coronaries
inside real mediastinal anatomy.

Order of painting (later overwrites earlier): thorax (body wall, lungs, airway, bones,
costal cartilage) -> heart (pericardium, myocardium, the left atrium's bulge, chambers)
-> great vessels (vena cava, arch branches, pulmonary arteries, aorta) -> esophagus and
lymph nodes (into fat only) -> coronaries. The heart is first moved so that its left
atrium presses against the descending aorta (``vessels.fit_heart_to_aorta``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepcac2.pipeline.synth.anatomy import Thorax, paint_thorax
from deepcac2.pipeline.synth.body import Body, draw_body
from deepcac2.pipeline.synth.habitus import OBESE_EPICARDIAL_MM, OBESE_SUBCUTANEOUS_MM, WIDE_FACTOR, fill_to_front_wall
from deepcac2.pipeline.synth.heart_phantom import (
    ATRIUM_FAT_MM,
    ATRIUM_WALL_MM,
    GREAT_VESSEL_CHAMBERS,
    PERICARDIAL_FAT_MM,
    SURFACE,
    Heart,
    frame_from_long_axis,
    paint_coronaries,
    paint_heart_body,
    place_heart,
    surface_curve,
    trace_coronaries,
)
from deepcac2.pipeline.synth.mediastinum import Node, paint_esophagus, paint_nodes
from deepcac2.pipeline.synth.shapes import Grid, resample_polyline
from deepcac2.pipeline.synth.vessels import (
    GreatVessels,
    atrium_geometry,
    fit_heart_to_aorta,
    paint_great_vessels,
    plan_great_vessels,
)


@dataclass
class GreatChest:
    thorax: Thorax
    heart: Heart
    body: Body
    vessels: GreatVessels | None
    nodes: list[Node]


def paint_great_chest(
    anat: np.ndarray,
    heart_mask: np.ndarray,
    grid: Grid,
    scale: float,
    rng: np.random.Generator,
    rng_body: np.random.Generator,
    habitus: tuple[str, ...] = (),
) -> GreatChest:
    body = draw_body(rng_body)
    obese = "obese" in habitus
    extra = OBESE_SUBCUTANEOUS_MM if obese else (0.0, 0.0)
    thorax = paint_thorax(anat, grid, scale * body.chest_size, rng, great_vessels=True, extra_fat_mm=extra)
    s = thorax.scale
    heart = place_heart(thorax, rng)
    heart.radii = heart.radii * body.heart_size
    if "wide_heart" in habitus:
        heart.radii = heart.radii * np.array([1.0, WIDE_FACTOR, WIDE_FACTOR])
    fat_mm = PERICARDIAL_FAT_MM
    if obese:
        heart.radii = heart.radii + OBESE_EPICARDIAL_MM * s
        fat_mm += OBESE_EPICARDIAL_MM
    heart.axes = frame_from_long_axis(heart.axes[:, 0] + np.asarray(body.heart_turn))
    heart.center[2] += body.heart_dz
    z_lo, z_hi = float(grid.axis(2)[0]) - 30.0, float(grid.axis(2)[-1]) + 30.0
    z_atrium = fit_heart_to_aorta(heart, thorax, body, z_lo)
    if not paint_heart_body(anat, heart_mask, grid, heart, s, GREAT_VESSEL_CHAMBERS, atrium_bulge=True, fat_mm=fat_mm):
        return GreatChest(thorax, heart, body, None, [])
    if "anterior_contact" in habitus:
        fill_to_front_wall(anat, heart_mask, grid)
    trace_coronaries(heart, rng, s)
    keep_coronaries_off_the_atrium(heart, s)
    # the root (aortic sinus) is wider than the plain chest's: keep the LM ostium on its wall
    r_sinus = 1.12 * body.ascending_radius * s
    out = np.array([-0.6, 0.55, 0.0]) / np.hypot(0.6, 0.55)
    heart.aortic_root = heart.paths["LM"][0] + out * 0.9 * r_sinus + np.array([0.0, 0.0, -3.0])
    heart.aortic_root_radius = r_sinus
    gv = plan_great_vessels(heart, thorax, body, z_atrium, z_lo, z_hi)
    paint_great_vessels(anat, heart_mask, grid, gv)
    paint_esophagus(anat, grid, thorax, gv, z_atrium, z_lo, z_hi)
    nodes = paint_nodes(anat, grid, thorax, gv, rng_body)
    paint_coronaries(anat, heart_mask, grid, heart, s)
    return GreatChest(thorax, heart, body, gv, nodes)


def keep_coronaries_off_the_atrium(heart: Heart, s: float) -> None:
    """Coronary centrelines that the bulging left atrium would swallow run in the groove below it.

    The coronaries are traced on an ellipsoid inside the pericardial fat; the great-vessel
    chest's larger left atrium reaches out through that surface, so the circumflex would
    cross the atrium's blood (a plaque there is no calcium a reader or a model could call
    coronary). A real circumflex runs in the atrioventricular groove, at the atrium's
    ventricular edge: points inside the atrium's outer fat surface slide along the coronary
    surface towards the apex until they are out of it (never towards the back, where the
    descending aorta presses on the atrium).
    """
    la_c, la_r = atrium_geometry(heart, s)
    outer = la_r + (ATRIUM_WALL_MM + ATRIUM_FAT_MM) * s
    r = heart.radii * SURFACE

    def in_atrium(pts: np.ndarray) -> np.ndarray:
        return ((((pts - la_c) @ heart.axes) / outer) ** 2).sum(axis=1) < 1.0

    for name, pts in heart.paths.items():
        inside = in_atrium(pts)
        if not inside.any():
            continue
        local = (pts - heart.center) @ heart.axes / r  # (a, ring cos phi, ring sin phi) of surface_curve
        a, phi = local[:, 0].copy(), np.arctan2(local[:, 2], local[:, 1])
        for _ in range(200):  # steps of 0.005 of the long axis (about 0.3 mm)
            if not inside.any():
                break
            a[inside] = np.minimum(a[inside] + 0.005, 0.95)
            inside &= in_atrium(surface_curve(heart, a, phi))
        heart.paths[name], _ = resample_polyline(surface_curve(heart, a, phi), 0.5)
