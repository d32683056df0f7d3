"""The anatomy value and the provider interface.

An :class:`Anatomy` holds boolean masks on the CT grid (same shape as ``CTVolume.hu``,
``(z, y, x)``): the three every provider must give (``heart``, ``aorta``,
``pulmonary_artery``) and, in ``structures``, whatever else it has (see
:data:`STRUCTURES`). ``heart`` is the whole heart: chambers and myocardium, as
TotalSegmentator v1 gives it (the union of its five heart classes); a provider that
cannot separate the pericardial fat says so in ``notes``.

A provider is found through the entry-point group ``deepcac2.anatomy``; the target is
a factory ``factory() -> AnatomyProvider``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from deepcac2.pipeline import stage_values

#: optional structure names a provider may fill in ``Anatomy.structures`` (bool masks)
STRUCTURES: tuple[str, ...] = (
    "myocardium",
    "atrium_left",
    "atrium_right",
    "ventricle_left",
    "ventricle_right",
    "lungs",
    "trachea",
    "esophagus",
    "vertebrae",
    "ribs",
    "sternum",
    "costal_cartilage",
    #: the aortic root's disk at the heart's base where a provider's aorta leaves it out (the classical
    #: anatomy's tracked root, a few millimetres off the valve's centre): where the valve's cusps lie
    "aortic_root",
)


@dataclass(frozen=True)
class AnatomyProvenance:
    """Where an anatomy came from; flows into ``cac_series`` and the SEG/SR references."""

    #: provider name, e.g. "idc-totalsegmentator", "classical"
    provider: str
    #: the provider's version, e.g. "TotalSegmentator v1.5.6" or the toolkit version
    version: str
    #: the source DICOM SEG, when the anatomy was read from one
    seg_series_uid: str | None = None
    seg_sop_instance_uid: str | None = None
    seg_sop_class_uid: str | None = None


@dataclass
class Anatomy:
    """Heart, aorta and pulmonary artery masks on the CT grid, with their provenance."""

    heart: np.ndarray
    aorta: np.ndarray
    pulmonary_artery: np.ndarray
    provenance: AnatomyProvenance
    structures: dict[str, np.ndarray] = field(default_factory=dict)
    #: what the provider did on purpose or could not do (fallbacks, missing segments)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        shape = self.heart.shape
        for name, mask in self.masks().items():
            if mask.shape != shape:
                raise ValueError(f"anatomy mask {name!r} has shape {mask.shape}, heart has {shape}")
            if mask.dtype != bool:
                raise ValueError(f"anatomy mask {name!r} must be bool, got {mask.dtype}")
        unknown = sorted(set(self.structures) - set(STRUCTURES))
        if unknown:
            raise ValueError(f"unknown anatomy structures {unknown}; known: {', '.join(STRUCTURES)}")

    def masks(self) -> dict[str, np.ndarray]:
        """Every mask by name: the three required ones, then the optional structures."""
        return {"heart": self.heart, "aorta": self.aorta, "pulmonary_artery": self.pulmonary_artery, **self.structures}


@runtime_checkable
class AnatomyProvider(Protocol):
    """What every anatomy provider offers."""

    name: str

    def covers(self, ref: stage_values.SeriesRef) -> bool:
        """Can this provider give the anatomy of ``ref`` (without trying)? ``auto`` asks this."""
        ...

    def anatomy(self, ref: stage_values.SeriesRef, ct: stage_values.CTVolume, *, cache: Any = None) -> Anatomy:
        """The anatomy of ``ct``; raises DeepCACError with an ``E_ANATOMY_*`` code when it cannot."""
        ...
