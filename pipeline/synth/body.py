"""Per-patient anatomy of the great-vessel chest: the sizes and positions that vary between people.

Drawn once per patient from its own random stream (``[seed, 2]``), so the plain chest's
draws (heart, coronaries, lung vessels) stay what they were. Ranges are those of
55-74-year-old adults on chest CT:

* descending thoracic aorta 22-29 mm across, ascending aorta 28-38 mm (wider with age,
  hypertension and smoking), pulmonary trunk 24-30 mm;
* the pulmonary bifurcation just below the carina, the arch 0-14 mm above it (its top
  then 20-45 mm above the carina);
* the descending aorta beside the vertebral body, anywhere from anterior-left to left;
  an older aorta is tortuous (bends of up to ~10 mm) and sits further left;
* the left atrium against the descending aorta: pressed up to 3.5 mm into it in most
  patients, in about 3 in 10 with up to 1.5 mm of fat between them;
* heart size and turn, chest size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Body:
    """One patient's draws. Lengths in mm at in-plane scale 1 (the chest's ``scale`` multiplies x, y)."""

    #: in-plane size of the whole chest relative to the average adult
    chest_size: float
    #: heart size relative to the plain chest's heart
    heart_size: float
    #: added to the heart's long axis (before normalising): turns the heart
    heart_turn: tuple[float, float, float]
    #: heart height shift, mm
    heart_dz: float
    descending_radius: float
    ascending_radius: float
    pulmonary_radius: float
    #: gap between the underside of the arch and the top of the pulmonary bifurcation, mm
    arch_rise: float
    #: 0 straight .. 1 very tortuous
    tortuosity: float
    #: angle of the descending aorta round the vertebral body at the left atrium, from anterior towards the left (rad)
    aorta_angle: float
    #: gap between the descending aorta and the vertebral body, mm
    spine_gap: float
    #: the left atrium's centre lies this far to the right of the descending aorta's centre, mm
    atrium_offset: float
    #: how far the descending aorta presses into the heart's outline (the fat over the atrium), mm;
    #: 0 = just touching, negative = a layer of mediastinal fat that thick between them
    indent: float
    #: phase of the tortuous bends
    bend_phase: float


def draw_body(rng: np.random.Generator) -> Body:
    tort = float(rng.beta(1.5, 3.0))
    return Body(
        chest_size=float(rng.uniform(0.92, 1.08)),
        heart_size=float(rng.uniform(0.95, 1.2)),
        heart_turn=tuple(float(v) for v in rng.normal(0.0, 0.08, 3)),  # type: ignore[arg-type]
        heart_dz=float(rng.normal(0.0, 6.0)),
        descending_radius=float(rng.uniform(11.0, 14.5)),
        ascending_radius=float(rng.uniform(14.0, 19.0)),
        pulmonary_radius=float(rng.uniform(12.0, 15.0)),
        arch_rise=float(rng.uniform(0.0, 14.0)),
        tortuosity=tort,
        aorta_angle=float(np.deg2rad(rng.uniform(25.0, 55.0) + 15.0 * tort)),
        spine_gap=float(rng.uniform(0.0, 3.0)),
        atrium_offset=float(rng.uniform(4.0, 18.0)),
        indent=float(rng.uniform(-1.5, 3.5)),
        bend_phase=float(rng.uniform(0.0, 2 * np.pi)),
    )
