"""Lesion-level detection between a predicted and a reference lesion mask (orCaScore style).

Lesions are 3-D connected components (26-connectivity by default). A reference lesion is
found when any predicted voxel overlaps it; a predicted lesion is a true positive when it
overlaps any reference lesion. Sensitivity = found / reference lesions; PPV = true-positive
predicted lesions / predicted lesions; F1 = 2 PPV sensitivity / (PPV + sensitivity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.scoring.lesions import volume_structure


@dataclass(frozen=True)
class LesionCounts:
    ref_lesions: int
    ref_found: int
    pred_lesions: int
    pred_true: int

    def __add__(self, other: LesionCounts) -> LesionCounts:
        return LesionCounts(
            self.ref_lesions + other.ref_lesions,
            self.ref_found + other.ref_found,
            self.pred_lesions + other.pred_lesions,
            self.pred_true + other.pred_true,
        )

    @property
    def sensitivity(self) -> float:
        return self.ref_found / self.ref_lesions if self.ref_lesions else float("nan")

    @property
    def ppv(self) -> float:
        return self.pred_true / self.pred_lesions if self.pred_lesions else float("nan")

    @property
    def f1(self) -> float:
        s, p = self.sensitivity, self.ppv
        if np.isnan(s) or np.isnan(p):
            return float("nan")
        return 0.0 if s + p == 0 else 2 * s * p / (s + p)


def _overlapping(labels: np.ndarray, n: int, other: np.ndarray) -> int:
    """How many of the n labelled components touch a True voxel of ``other``."""
    return int(np.unique(labels[other & (labels > 0)]).size) if n else 0


def lesion_counts(pred: np.ndarray, ref: np.ndarray, connectivity: int = 26) -> LesionCounts:
    """Count lesions and matches between two bool masks on the same grid."""
    pred, ref = np.asarray(pred) != 0, np.asarray(ref) != 0
    if pred.shape != ref.shape:
        raise DeepCACError(ErrorCode.E_MASK_GEOMETRY, f"lesion masks differ in shape: {pred.shape} vs {ref.shape}")
    structure = volume_structure(connectivity)
    ref_lab, n_ref = ndimage.label(ref, structure=structure)
    pred_lab, n_pred = ndimage.label(pred, structure=structure)
    return LesionCounts(n_ref, _overlapping(ref_lab, n_ref, pred), n_pred, _overlapping(pred_lab, n_pred, ref))
