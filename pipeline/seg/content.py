"""What each SEG contains: segment numbers, labels, codes, descriptions and the masks behind them.

No SEG has overlapping segments (IDC's TotalSegmentator SEGs never do, and viewers
handle overlap badly). One CT series gives up to three SEG series:

========== ====== ============================ ===================================== ========================
SEG        number label                        property type (category)              anatomic region
========== ====== ============================ ===================================== ========================
CAC        1      Coronary calcium             SCT 237897009 Vascular calcification  SCT 41801008 Coronary
                                               (SCT 49755003 Morphologically         artery
                                               abnormal structure)
CAC        2      Thoracic aortic calcium      as 1                                  SCT 113262008 Thoracic
           (only when the model reports it)                                          aorta
vessels    1..4   LM/LAD/LCX/RCA calcium       as 1                                  the vessel (CID 3604)
heart      1      Heart                        SCT 80891009 Heart (SCT 123037004     -
                                               Anatomical structure)
========== ====== ============================ ===================================== ========================

The vessel SEG exists only when the model labels vessels: the coronary total of the CAC
SEG is the union of the vessel segments, so in one SEG they would overlap, and TID 1411
lets a measurement group reference one segment only (the total's group needs its own).
The heart SEG exists only for a heart made here: a heart read from IDC's
TotalSegmentator SEG is referenced, not copied.

Why "Vascular calcification" and not 29483008 "Calcified atheromatous plaque": a CT
threshold mask sees calcium in the artery wall; it cannot tell intimal plaque from
medial calcification, and the Agatston score counts both.
"""

from __future__ import annotations

from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.dicomout.identity import algorithm_name
from deepcac2.pipeline.seg.enum import SegKind
from deepcac2.pipeline.stage_values import VESSEL_LABELS, VESSEL_NAMES, ModelCard, Prediction

CAC_SEGMENT = 1
AORTIC_SEGMENT = 2
HEART_SEGMENT = 1

#: DICOM CID 7150 "Anatomical Structure" as IDC writes it (pydicom's codedict still has the older 91723000)
ANATOMICAL_STRUCTURE = Code("123037004", "SCT", "Anatomical Structure")
MORPHOLOGICALLY_ABNORMAL: Code = codes.SCT.MorphologicallyAbnormalStructure  # 49755003
HEART: Code = codes.SCT.Heart  # 80891009
VASCULAR_CALCIFICATION: Code = codes.SCT.VascularCalcification  # 237897009
CORONARY_ARTERY: Code = codes.SCT.CoronaryArtery  # 41801008
THORACIC_AORTA: Code = codes.SCT.ThoracicAorta  # 113262008

#: Vessel label -> SCT code of the artery (DICOM CID 3604 "Arterial Lesion Locations").
VESSEL_CODES: dict[str, Code] = {
    "LM": codes.SCT.LeftMainCoronaryArtery,  # 3227004
    "LAD": codes.SCT.LeftAnteriorDescendingCoronaryArtery,  # 59438005
    "LCX": codes.SCT.CircumflexCoronaryArtery,  # 57396003
    "RCA": codes.SCT.RightCoronaryArtery,  # 13647002
}

#: CIELab display colours (dcmqi warns without them)
_COLORS = {
    "heart": hd.color.CIELabColor(50.0, 60.0, 40.0),
    "cac": hd.color.CIELabColor(95.0, 0.0, 15.0),
    "aortic": hd.color.CIELabColor(70.0, 20.0, -60.0),
}


@dataclass(frozen=True)
class SegmentSpec:
    """One segment: stable number, label, codes, description, and which mask it holds."""

    number: int
    label: str
    category: Code
    property_type: Code
    anatomic_region: Code | None
    description: str
    #: "cac", "aortic", "heart" or a vessel name
    source: str

    @property
    def vessel(self) -> str | None:
        return self.source if self.source in VESSEL_NAMES else None


def vessel_segment_number(vessel: str) -> int:
    """LM=1, LAD=2, LCX=3, RCA=4 in the vessel SEG: the vessel's label value."""
    if vessel not in VESSEL_NAMES:
        raise DeepCACError(ErrorCode.E_SEG_WRITE, f"unknown vessel {vessel!r}; known: {', '.join(VESSEL_NAMES)}")
    return VESSEL_NAMES[vessel]


def _calcium(number: int, label: str, region: Code, description: str, source: str) -> SegmentSpec:
    return SegmentSpec(number, label, MORPHOLOGICALLY_ABNORMAL, VASCULAR_CALCIFICATION, region, description, source)


def segment_layout(kind: SegKind, *, has_aortic: bool = False) -> tuple[SegmentSpec, ...]:
    """The segments of one SEG kind. Vessel segments are all written, even empty, so numbers never shift."""
    if kind is SegKind.HEART:
        return (SegmentSpec(HEART_SEGMENT, "Heart", ANATOMICAL_STRUCTURE, HEART, None, "Whole heart", "heart"),)
    if kind is SegKind.VESSELS:
        return tuple(
            _calcium(vessel_segment_number(v), f"{v} calcium", VESSEL_CODES[v], f"Calcium of the {v} artery", v)
            for v in VESSEL_LABELS.values()
        )
    specs = [_calcium(CAC_SEGMENT, "Coronary calcium", CORONARY_ARTERY, "Coronary artery calcium", "cac")]
    if has_aortic:
        specs.append(
            _calcium(AORTIC_SEGMENT, "Thoracic aortic calcium", THORACIC_AORTA, "Thoracic aortic calcium", "aortic")
        )
    return tuple(specs)


def segment_masks(prediction: Prediction, layout: tuple[SegmentSpec, ...]) -> list[np.ndarray]:
    """Boolean (z, y, x) mask per segment of ``layout``, in layout order."""
    masks: list[np.ndarray] = []
    for spec in layout:
        if spec.source == "heart":
            masks.append(np.asarray(prediction.heart, dtype=bool))
        elif spec.source == "cac":
            masks.append(np.asarray(prediction.cac, dtype=bool))
        elif spec.source == "aortic":
            if prediction.aortic is None:
                raise DeepCACError(ErrorCode.E_SEG_WRITE, "an aortic calcium segment needs Prediction.aortic")
            masks.append(np.asarray(prediction.aortic, dtype=bool))
        else:
            if prediction.vessels is None:
                raise DeepCACError(ErrorCode.E_SEG_WRITE, f"segment {spec.label!r} needs a vessel label map")
            masks.append((prediction.vessels == VESSEL_NAMES[spec.source]) & np.asarray(prediction.cac, dtype=bool))
    return masks


def algorithm_family(meaning: str) -> Code:
    """The CID 7162 code whose meaning is ``meaning`` (e.g. "Artificial Intelligence" = DCM 123110)."""
    for keyword in codes.cid7162.dir():
        code = getattr(codes.cid7162, keyword)
        if code.meaning.lower() == meaning.lower():
            return code
    raise DeepCACError(ErrorCode.E_SEG_WRITE, f"model family {meaning!r} is not a DICOM CID 7162 algorithm family")


def algorithm_identification(
    card: ModelCard, extra: dict[str, str] | None = None
) -> hd.AlgorithmIdentificationSequence:
    """``DeepCAC2(<model> <version>)``, the model version and family, the weights hash (and ``extra``) as parameters."""
    return hd.AlgorithmIdentificationSequence(
        name=algorithm_name(card),
        family=algorithm_family(card.family),
        version=card.version,
        parameters={"weights_sha256": card.weights_sha256 or "none", **(extra or {})},
    )


def segment_descriptions(
    layout: tuple[SegmentSpec, ...],
    card: ModelCard,
    tracking_uids: dict[int, str],
    parameters: dict[str, str] | None = None,
) -> list[hd.seg.SegmentDescription]:
    """highdicom segment descriptions; ``tracking_uids`` maps segment number to a derived UID."""
    algorithm = algorithm_identification(card, parameters)
    out = []
    for spec in layout:
        desc = hd.seg.SegmentDescription(
            segment_number=spec.number,
            segment_label=spec.label,
            segmented_property_category=spec.category,
            segmented_property_type=spec.property_type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_uid=tracking_uids[spec.number],
            tracking_id=spec.label,
            anatomic_regions=[spec.anatomic_region] if spec.anatomic_region is not None else None,
            display_color=_COLORS.get(spec.source, _COLORS["cac"]),
        )
        # IDC writes one on every segment ("TotalSegmentator 7 : aorta"); ours names the model too
        desc.SegmentDescription = f"{spec.description}, {algorithm_name(card)}"[:64]
        out.append(desc)
    return out
