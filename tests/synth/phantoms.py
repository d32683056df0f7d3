"""Small phantom specs shared by the synth tests."""

from __future__ import annotations

from deepcac2.pipeline.synth.phantom import ChestSpec, PlaqueSpec

#: plaques chosen to exercise every rule: a 1-pixel and a 3-pixel cross section (min_pixels,
#: min_area), HU exactly 130 (inclusive or not), each weight band, several slices
SMALL_PLAQUES = (
    PlaqueSpec("LAD", (6.0, 6.0, 5.0), 450, 0.2),
    PlaqueSpec("LAD", (2.0, 2.0, 2.5), 130, 0.75),
    PlaqueSpec("RCA", (4.0, 4.0, 7.5), 250, 0.35),
    PlaqueSpec("LCX", (2.0, 6.0, 2.5), 330, 0.5),
    PlaqueSpec("LM", (2.0, 2.0, 2.5), 199, 0.5),
    PlaqueSpec("RCA", (4.0, 2.0, 2.5), 1000, 0.8),
)


def small_spec(**changes: object) -> ChestSpec:
    base = dict(
        seed=3,
        rows=192,
        cols=192,
        n_slices=56,
        pixel_spacing_mm=1.8,
        slice_thickness_mm=3.0,
        slice_increment_mm=2.5,
        kvp=120,
        plaques=SMALL_PLAQUES,
        mass_factor=0.8,
    )
    base.update(changes)
    return ChestSpec(**base)  # type: ignore[arg-type]


def great_spec(**changes: object) -> ChestSpec:
    """A small great-vessel chest from the liver dome to above the arch (2.2 mm pixels, 2.5 mm slices).

    Seed 10 draws calcium in all three aortic segments, the aortic valve, nodes and cartilage.
    """
    base = dict(
        seed=10,
        rows=160,
        cols=160,
        n_slices=88,
        pixel_spacing_mm=2.2,
        slice_thickness_mm=2.5,
        slice_increment_mm=2.5,
        z_center_mm=25.0,
        plaques=SMALL_PLAQUES,
        great_vessels=True,
    )
    base.update(changes)
    return ChestSpec(**base)  # type: ignore[arg-type]
