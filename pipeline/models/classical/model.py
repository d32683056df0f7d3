"""The ``classical`` model: CAC candidates and distractor rules around the anatomy's heart."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import types
from deepcac2.pipeline.anatomy.base import Anatomy

from .aorta import AortaCircle, find_aorta, refine_radius
from .cac import CACRules, find_cac
from .heart import parts_from_heart
from .orient import orientation_of

CARD = types.ModelCard(
    name="classical",
    version=__version__,
    weights_sha256=None,
    license="MIT",
    training_data="none: hand-set thresholds and morphology, tuned on public non-NLST chest CT and synthetic phantoms",
    family="Morphological Operations",  # a DICOM CID 7162 algorithm family (thresholds and morphology)
    description="Thresholds, morphology and connectivity rules (SimpleITK/scipy); no learned weights",
)


@dataclass
class ClassicalResult:
    prediction: types.Prediction
    #: voxels each distractor rule removed from the heart region
    rejected: dict[str, int]
    #: aortic sections found (canonical view, full-resolution voxel units)
    aortas: list[AortaCircle]


@dataclass(frozen=True)
class ClassicalModel:
    """CAC >= 130 HU inside the given anatomy's heart, distractors removed.

    Stateless, so one instance serves many threads.
    """

    rules: CACRules = field(default_factory=CACRules)
    card: types.ModelCard = CARD

    def predict(self, ct: types.CTVolume, anatomy: Anatomy) -> types.Prediction:
        return self.analyse(ct, anatomy).prediction

    def analyse(self, ct: types.CTVolume, anatomy: Anatomy) -> ClassicalResult:
        """The prediction with what each rule rejected (for reports and tests)."""
        if not np.issubdtype(ct.hu.dtype, np.number) or not np.isfinite(ct.hu).all():
            raise DeepCACError(ErrorCode.E_INFERENCE, "CT holds non-numeric or non-finite values")
        if anatomy.heart.shape != ct.shape:
            raise DeepCACError(
                ErrorCode.E_MASK_GEOMETRY, f"anatomy heart {anatomy.heart.shape} is not on the CT grid {ct.shape}"
            )
        orient = orientation_of(ct.geometry)
        view = orient.to_canonical(ct.hu)
        parts = parts_from_heart(view, orient.spacing, orient.to_canonical(anatomy.heart))
        if not parts.heart.any():
            raise DeepCACError(ErrorCode.E_NO_HEART, f"the {anatomy.provenance.provider} anatomy has no heart")
        f = parts.factor
        # aortic sections from low-resolution to full-resolution voxel units (block centres)
        aortas = [
            AortaCircle(a.kind, (a.centre[0] * f[0] + (f[0] - 1) / 2, a.centre[1] * f[1] + (f[1] - 1) / 2), a.radius_mm)
            for a in find_aorta(parts.hu, parts.mediastinum, parts.heart, parts.spacing)
        ]
        zs = np.flatnonzero(parts.heart.any(axis=(1, 2)))
        above = range(int(zs[-1]) + 1, min(view.shape[0], int(zs[-1]) + 1 + int(round(40.0 / orient.spacing[0]))))
        # the descending wall rule needs the true radius; the ascending zones are tuned on the low-resolution fit
        aortas = [refine_radius(view, a, orient.spacing, above) if a.kind == "descending" else a for a in aortas]
        result = find_cac(view, orient.spacing, parts, aortas, self.rules)
        prediction = types.Prediction(
            heart=anatomy.heart, cac=orient.from_canonical(result.cac), card=self.card, anatomy=anatomy
        )
        return ClassicalResult(prediction=prediction, rejected=result.rejected, aortas=aortas)


def build(weights: str | None = None, device: str | None = None) -> ClassicalModel:
    """Entry-point factory. The classical model has no weights; a weights file is an error."""
    if weights:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, "the classical model takes no weights file", weights=weights)
    return ClassicalModel()
