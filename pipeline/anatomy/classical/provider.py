"""Provider ``classical``: the heart and the great vessels from thresholds, morphology and tracking.

It covers every series (it needs nothing but the CT), so ``auto`` ends with it. The
algorithm is ``segment.py`` (see ``docs/models.md``): the descending aorta, arch and
ascending aorta tracked as round sections through the whole scan, the pulmonary trunk
left of the ascending aorta, and the heart below the pulmonary bifurcation (or the arch)
without them. The heart mask holds the pericardial fat (said so in ``notes``).
"""

from __future__ import annotations

from typing import Any

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy

from .segment import anatomy_of

NAME = "classical"


class ClassicalAnatomy:
    """Heart, aorta and pulmonary trunk from the classical rules; covers every series."""

    name = NAME

    def covers(self, ref: stage_values.SeriesRef) -> bool:
        return True

    def anatomy(self, ref: stage_values.SeriesRef, ct: stage_values.CTVolume, *, cache: Any = None) -> Anatomy:
        return anatomy_of(ct)


def classical_anatomy(ct: stage_values.CTVolume) -> Anatomy:
    """The classical anatomy of a CT without a cohort row (tests, benchmarks, reports)."""
    return anatomy_of(ct)


def build() -> ClassicalAnatomy:
    """Entry-point factory (group ``deepcac2.anatomy``)."""
    return ClassicalAnatomy()
