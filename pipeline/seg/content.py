"""What the SEG contains: segment numbers, labels and codes, and the masks behind them.

Segment numbers are stable across the whole release, so tables can name them:

====== ================= ================================= ==========================
number label             property type (category)          anatomic region
====== ================= ================================= ==========================
1      Heart             SCT 80891009 Heart (SCT 91723000  -
                         Anatomical Structure)
2      Coronary calcium  SCT 237897009 Vascular            SCT 41801008 Coronary artery
                         Calcification (SCT 49755003
                         Morphologically Abnormal Structure)
3..6   LM/LAD/LCX/RCA    as 2                              the vessel (CID 3604 codes)
       calcium
====== ================= ================================= ==========================

Why "Vascular Calcification" and not 29483008 "Calcified atheromatous plaque": a CT
threshold mask sees calcium in the artery wall; it cannot tell intimal plaque from
medial calcification, and the Agatston score counts both. Vascular calcification
with the coronary artery as anatomic region says exactly what was segmented.
"""

from __future__ import annotations

from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.types import VESSEL_LABELS, ModelCard, Prediction

HEART_SEGMENT = 1
CAC_SEGMENT = 2

ANATOMICAL_STRUCTURE: Code = codes.SCT.AnatomicalStructure  # 91723000
MORPHOLOGICALLY_ABNORMAL: Code = codes.SCT.MorphologicallyAbnormalStructure  # 49755003
HEART: Code = codes.SCT.Heart  # 80891009
VASCULAR_CALCIFICATION: Code = codes.SCT.VascularCalcification  # 237897009
CORONARY_ARTERY: Code = codes.SCT.CoronaryArtery  # 41801008

#: Vessel label -> SCT code of the artery (DICOM CID 3604 "Arterial Lesion Locations").
VESSEL_CODES: dict[str, Code] = {
    "LM": codes.SCT.LeftMainCoronaryArtery,  # 3227004
    "LAD": codes.SCT.LeftAnteriorDescendingCoronaryArtery,  # 59438005
    "LCX": codes.SCT.CircumflexCoronaryArtery,  # 57396003
    "RCA": codes.SCT.RightCoronaryArtery,  # 13647002
}

#: CIELab display colours (dcmqi warns without them): heart red, calcium bone white.
_HEART_COLOR = hd.color.CIELabColor(50.0, 60.0, 40.0)
_CAC_COLOR = hd.color.CIELabColor(95.0, 0.0, 15.0)


@dataclass(frozen=True)
class SegmentSpec:
    """One segment: its stable number, label and codes; ``vessel`` is None for heart and total calcium."""

    number: int
    label: str
    category: Code
    property_type: Code
    anatomic_region: Code | None
    vessel: str | None = None


def vessel_segment_number(vessel: str) -> int:
    """LM=3, LAD=4, LCX=5, RCA=6: the vessel's label value shifted past heart and calcium."""
    for value, name in VESSEL_LABELS.items():
        if name == vessel:
            return CAC_SEGMENT + value
    raise DeepCACError(ErrorCode.E_SEG_WRITE, f"unknown vessel {vessel!r}; known: {', '.join(VESSEL_LABELS.values())}")


def segment_layout(has_vessels: bool) -> tuple[SegmentSpec, ...]:
    """The segments of a SEG: heart, coronary calcium, and all four vessels when labels exist.

    Vessel segments are written even when empty, so a number always means the same vessel.
    """
    specs = [
        SegmentSpec(HEART_SEGMENT, "Heart", ANATOMICAL_STRUCTURE, HEART, None),
        SegmentSpec(CAC_SEGMENT, "Coronary calcium", MORPHOLOGICALLY_ABNORMAL, VASCULAR_CALCIFICATION, CORONARY_ARTERY),
    ]
    if has_vessels:
        for name in VESSEL_LABELS.values():
            specs.append(
                SegmentSpec(
                    vessel_segment_number(name),
                    f"{name} calcium",
                    MORPHOLOGICALLY_ABNORMAL,
                    VASCULAR_CALCIFICATION,
                    VESSEL_CODES[name],
                    vessel=name,
                )
            )
    return tuple(specs)


def segment_masks(prediction: Prediction, layout: tuple[SegmentSpec, ...]) -> list[np.ndarray]:
    """Boolean (z, y, x) mask per segment of ``layout``, in layout order."""
    masks: list[np.ndarray] = []
    for spec in layout:
        if spec.number == HEART_SEGMENT:
            masks.append(np.asarray(prediction.heart, dtype=bool))
        elif spec.number == CAC_SEGMENT:
            masks.append(np.asarray(prediction.cac, dtype=bool))
        else:
            if prediction.vessels is None:
                raise DeepCACError(ErrorCode.E_SEG_WRITE, f"segment {spec.label!r} needs a vessel label map")
            value = spec.number - CAC_SEGMENT
            masks.append((prediction.vessels == value) & np.asarray(prediction.cac, dtype=bool))
    return masks


def algorithm_family(meaning: str) -> Code:
    """The CID 7162 code whose meaning is ``meaning`` (e.g. "Artificial Intelligence" = DCM 123110)."""
    for keyword in codes.cid7162.dir():
        code = getattr(codes.cid7162, keyword)
        if code.meaning.lower() == meaning.lower():
            return code
    raise DeepCACError(ErrorCode.E_SEG_WRITE, f"model family {meaning!r} is not a DICOM CID 7162 algorithm family")


def algorithm_identification(card: ModelCard) -> hd.AlgorithmIdentificationSequence:
    """Name, version and family of the model, with its weights hash as a parameter."""
    return hd.AlgorithmIdentificationSequence(
        name=card.name,
        family=algorithm_family(card.family),
        version=card.version,
        parameters={"weights_sha256": card.weights_sha256 or "none"},
    )


def segment_descriptions(
    layout: tuple[SegmentSpec, ...], card: ModelCard, tracking_uids: dict[int, str]
) -> list[hd.seg.SegmentDescription]:
    """highdicom segment descriptions; ``tracking_uids`` maps segment number to a derived UID."""
    algorithm = algorithm_identification(card)
    out = []
    for spec in layout:
        out.append(
            hd.seg.SegmentDescription(
                segment_number=spec.number,
                segment_label=spec.label,
                segmented_property_category=spec.category,
                segmented_property_type=spec.property_type,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
                tracking_uid=tracking_uids[spec.number],
                tracking_id=spec.label,
                anatomic_regions=[spec.anatomic_region] if spec.anatomic_region is not None else None,
                display_color=_HEART_COLOR if spec.number == HEART_SEGMENT else _CAC_COLOR,
            )
        )
    return out


def labelmap_priority(layout: tuple[SegmentSpec, ...]) -> tuple[int, ...]:
    """Segment numbers from least to most specific: LABELMAP keeps one label per voxel, the last wins."""
    return tuple(sorted(s.number for s in layout))
