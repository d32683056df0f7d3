"""The ``classical`` model: CAC candidates sorted by named rules around a given anatomy.

The anatomy (heart, aorta, pulmonary artery, and bone structures when the provider has
them) comes from the anatomy stage, whichever provider made it; without one the model
computes the ``classical`` anatomy itself (``pipeline/anatomy/classical``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import stage_values
from deepcac2.pipeline.anatomy.base import Anatomy

from .candidate_rules import BONE_STRUCTURES, RuleSettings, apply_rules

CARD = stage_values.ModelCard(
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
    prediction: stage_values.Prediction
    #: voxels (>= 130 HU) each rule removed, by rule name (``rules.RULES``)
    rejected: dict[str, int]
    anatomy: Anatomy
    noise_sd: float
    #: what became of each candidate voxel (``rules.RuleResult.rule_map``: 0 none, 1 coronary, 2 + rule index)
    rule_map: np.ndarray | None = None


@dataclass(frozen=True)
class ClassicalModel:
    """CAC >= 130 HU around the anatomy's heart; aortic, valvular, pulmonary, bony and far calcium sorted out.

    Stateless, so one instance serves many threads.
    """

    rules: RuleSettings = field(default_factory=RuleSettings)
    card: stage_values.ModelCard = CARD

    def predict(self, ct: stage_values.CTVolume, anatomy: Anatomy | None = None) -> stage_values.Prediction:
        return self.analyse(ct, anatomy).prediction

    def analyse(self, ct: stage_values.CTVolume, anatomy: Anatomy | None = None) -> ClassicalResult:
        """The prediction with what each rule rejected (for reports and tests)."""
        if not np.issubdtype(ct.hu.dtype, np.number) or not np.isfinite(ct.hu).all():
            raise DeepCACError(ErrorCode.E_INFERENCE, "CT holds non-numeric or non-finite values")
        if anatomy is None:
            from deepcac2.pipeline.anatomy.classical.segment import anatomy_of

            anatomy = anatomy_of(ct)
        if anatomy.heart.shape != ct.shape:
            raise DeepCACError(
                ErrorCode.E_MASK_GEOMETRY, f"anatomy heart {anatomy.heart.shape} is not on the CT grid {ct.shape}"
            )
        if not anatomy.heart.any():
            raise DeepCACError(ErrorCode.E_NO_HEART, f"the {anatomy.provenance.provider} anatomy has no heart")
        bones = [anatomy.structures[k] for k in BONE_STRUCTURES if k in anatomy.structures]
        bone = np.logical_or.reduce(bones) if bones else None
        settings = self.rules
        if any("holds the pericardial fat" in n for n in anatomy.notes):
            settings = replace(
                settings,
                shell_mm=settings.shell_with_fat_mm,
                chambers_shell_mm=settings.shell_mm
                if settings.chambers_shell_mm is None
                else settings.chambers_shell_mm,
            )
        r = apply_rules(
            ct.hu,
            ct.geometry.spacing,
            anatomy.heart,
            anatomy.aorta,
            anatomy.pulmonary_artery,
            bone,
            settings,
            direction=ct.geometry.direction,
            root_disk=anatomy.structures.get("aortic_root"),
        )
        prediction = stage_values.Prediction(
            heart=anatomy.heart,
            cac=r.cac,
            card=self.card,
            aortic=r.aortic,
            aortic_valve=r.aortic_valve,
            mitral_annular=r.mitral_annular,
            anatomy=anatomy,
            rejected=dict(r.rejected),
        )
        return ClassicalResult(
            prediction=prediction, rejected=dict(r.rejected), anatomy=anatomy, noise_sd=r.noise_sd, rule_map=r.rule_map
        )


def build(weights: str | None = None, device: str | None = None) -> ClassicalModel:
    """Entry-point factory. The classical model has no weights; a weights file is an error."""
    if weights:
        raise DeepCACError(ErrorCode.E_MODEL_LOAD, "the classical model takes no weights file", weights=weights)
    return ClassicalModel()
