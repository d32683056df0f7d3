"""Provider ``classical``: today's classical heart localiser wrapped into an :class:`Anatomy`.

It covers every series (it needs nothing but the CT), so ``auto`` ends with it.

* heart: ``models/classical/heart.py`` (lungs/mediastinum morphology at about 2 mm in-plane);
* aorta: the round sections ``models/classical/aorta.py`` finds above the heart, extruded
  along z where the CAC rules follow them (the ascending section from ``aortic_root_mm``
  below the heart's top, the descending one through the whole heart) up to the searched
  slices; a rough tube, said so in ``notes``;
* pulmonary artery: not found by these rules: empty, said so in ``notes``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepcac2._version import __version__
from deepcac2.pipeline import types
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance

NAME = "classical"
#: how far above the heart's top the aortic sections are searched and drawn (aorta.find_aorta's default)
SEARCH_MM = 40.0
#: how far below the heart's top the ascending aorta is drawn (CACRules.aortic_root_mm)
ROOT_MM = 30.0


def aorta_tube(shape: tuple[int, int, int], heart: np.ndarray, spacing, circles) -> np.ndarray:
    """The aortic sections (canonical view, full resolution) drawn as discs over their z-range."""
    tube = np.zeros(shape, dtype=bool)
    zs = np.flatnonzero(heart.any(axis=(1, 2)))
    if zs.size == 0:
        return tube
    top = int(zs[-1])
    hi = min(shape[0], top + 1 + int(round(SEARCH_MM / spacing[0])))
    rows = (np.arange(shape[1]) * spacing[1])[:, None]
    cols = (np.arange(shape[2]) * spacing[2])[None, :]
    for c in circles:
        disc = np.hypot(rows - c.centre[0] * spacing[1], cols - c.centre[1] * spacing[2]) <= c.radius_mm
        lo = max(top - int(round(ROOT_MM / spacing[0])), 0) if c.kind == "ascending" else int(zs[0])
        tube[lo:hi] |= disc[None]
    return tube


class ClassicalAnatomy:
    """Heart (and a rough aorta) from the classical localiser; covers every series."""

    name = NAME

    def covers(self, ref: types.SeriesRef) -> bool:
        return True

    def anatomy(self, ref: types.SeriesRef, ct: types.CTVolume, *, cache: Any = None) -> Anatomy:
        from deepcac2.pipeline.models.classical.aorta import AortaCircle, find_aorta
        from deepcac2.pipeline.models.classical.heart import heart_parts
        from deepcac2.pipeline.models.classical.orient import orientation_of

        orient = orientation_of(ct.geometry)
        view = orient.to_canonical(ct.hu)
        parts = heart_parts(view, orient.spacing)
        heart = parts.upsample(parts.heart, view.shape)
        f = parts.factor
        circles = [
            AortaCircle(a.kind, (a.centre[0] * f[0] + (f[0] - 1) / 2, a.centre[1] * f[1] + (f[1] - 1) / 2), a.radius_mm)
            for a in find_aorta(parts.hu, parts.mediastinum, parts.heart, parts.spacing)
        ]
        aorta = aorta_tube(view.shape, heart, orient.spacing, circles) & ~heart
        empty = np.zeros(ct.shape, dtype=bool)
        return Anatomy(
            heart=orient.from_canonical(heart),
            aorta=orient.from_canonical(aorta),
            pulmonary_artery=empty,
            provenance=AnatomyProvenance(provider=NAME, version=__version__),
            notes=(
                "anatomy classical: aorta drawn as a rough tube from its sections above the heart; no pulmonary artery",
            ),
        )


def classical_anatomy(ct: types.CTVolume) -> Anatomy:
    """The classical anatomy of a CT without a cohort row (tests, benchmarks, reports)."""
    return ClassicalAnatomy().anatomy(types.SeriesRef(series_uid=ct.series_uid), ct)


def build() -> ClassicalAnatomy:
    """Entry-point factory (group ``deepcac2.anatomy``)."""
    return ClassicalAnatomy()
