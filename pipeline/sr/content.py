"""The SR's measurement groups as plain data: one group per (convention, region).

Each scoring convention gives one group for all coronary calcium (CAC SEG segment 1),
one per vessel when the model labels vessels (vessel SEG segments 1-4), and one for
thoracic aortic calcium when the model reports it (CAC SEG segment 2). Groups are
numbered from 0 in SR order, as IDC's views number them. A group holds:

* Calcium score (DCM 112058), method Agatston (DCM 112055), unit "no units";
* Calcium Volume (DCM 122660), method Volume scoring (DCM 112056), mm3;
* Calcium Mass (DCM 122661), method Mass scoring (DCM 112057), mg, only when known;
* Number of calcifications (DCM 111038), the lesion count, unit ``{lesions}``;
* Agatston Score Threshold (DCM 122657) in HU, in the all-coronary and aortic groups;
* the risk category per scheme (qualitative evaluations), in the all-coronary group only.

The measurements table is built from the same specs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.valuerep import format_number_as_ds

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.conventions import kvp_bands
from deepcac2.pipeline.seg.content import (
    AORTIC_SEGMENT,
    CAC_SEGMENT,
    CORONARY_ARTERY,
    THORACIC_AORTA,
    VASCULAR_CALCIFICATION,
    VESSEL_CODES,
    vessel_segment_number,
)
from deepcac2.pipeline.seg.enum import SegKind
from deepcac2.pipeline.sr.enum import risk_scheme_code, risk_value_code
from deepcac2.pipeline.stage_values import Scores

CALCIUM_SCORE: Code = codes.DCM.CalciumScore  # 112058
AGATSTON_METHOD: Code = codes.DCM.AgatstonScoringMethod  # 112055
VOLUME_METHOD: Code = codes.DCM.VolumeScoringMethod  # 112056
MASS_METHOD: Code = codes.DCM.MassScoringMethod  # 112057
CALCIUM_VOLUME: Code = codes.DCM.CalciumVolume  # 122660
CALCIUM_MASS: Code = codes.DCM.CalciumMass  # 122661
LESION_COUNT: Code = codes.DCM.NumberOfCalcifications  # 111038
AGATSTON_THRESHOLD: Code = codes.DCM.AgatstonScoreThreshold  # 122657

NO_UNITS: Code = codes.UCUM.NoUnits  # "1"
MM3: Code = codes.UCUM.CubicMillimeter
MG = Code("mg", "UCUM", "milligram")
LESIONS = Code("{lesions}", "UCUM", "lesions")
HU: Code = codes.UCUM.HounsfieldUnit


@dataclass(frozen=True)
class MeasurementSpec:
    """One numeric measurement; ``value`` is rounded to what a DS holds on construction."""

    quantity: Code
    value: float
    unit: Code
    method: Code | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", ds_value(self.value))


@dataclass(frozen=True)
class GroupSpec:
    """One TID 1411 group: which segment it measures, under which convention, and what."""

    #: position in the Imaging Measurements container, from 0 (IDC's ``measurementGroup_number``)
    number: int
    convention: str
    convention_params: dict[str, Any]
    #: "all" (all coronary calcium), a vessel name (LM, LAD, LCX, RCA) or "aortic"
    region: str
    #: which SEG holds the segment, and its number there
    seg_kind: SegKind
    segment_number: int
    finding: Code
    finding_site: Code
    measurements: tuple[MeasurementSpec, ...]
    categories: dict[str, tuple[Code, Code]] = field(default_factory=dict)
    #: detection threshold and the HU where weights 2, 3 and 4 start
    hu_bands: tuple[float, ...] = ()

    @property
    def vessel(self) -> str | None:
        return self.region if self.region not in ("all", "aortic") else None

    @property
    def tracking_id(self) -> str:
        name = {"all": "Coronary", "aortic": "Thoracic aortic"}.get(self.region, self.region)
        return f"{name} calcium [{self.convention}]"

    @property
    def params_json(self) -> str:
        return canonical_json(self.convention_params)

    @property
    def algorithm_parameters(self) -> list[str]:
        """What the SR records about how the value was scored (TID 4019 Algorithm Parameters)."""
        bands = ",".join(f"{b:g}" for b in self.hu_bands)
        return [f"convention={self.convention}", f"params={self.params_json}", f"hu_bands={bands}"]


def canonical_json(obj: Any) -> str:
    """Sorted, compact JSON; numpy scalars become numbers; anything else not JSON-able is an error."""

    def plain(value: Any) -> Any:
        if hasattr(value, "item") and callable(value.item):
            return value.item()
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"convention parameter {value!r} is not JSON-able")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=plain)


def ds_value(value: float) -> float:
    """``value`` as a DICOM DS (16 characters) holds it: SR and tables store this same number."""
    return float(format_number_as_ds(float(value)))


def hu_bands(params: dict[str, Any], kvp: float | None) -> tuple[float, float, float, float]:
    """Detection threshold and weight band starts a convention used (its kVp-adjusted bands or 130/200/300/400)."""
    return tuple(float(b) for b in kvp_bands(kvp, bool(params.get("kvp_adjusted", False))))  # type: ignore[return-value]


def _values(agatston: float, volume: float, mass: float | None, count: int) -> list[MeasurementSpec]:
    out = [
        MeasurementSpec(CALCIUM_SCORE, float(agatston), NO_UNITS, AGATSTON_METHOD),
        MeasurementSpec(CALCIUM_VOLUME, float(volume), MM3, VOLUME_METHOD),
    ]
    if mass is not None:
        out.append(MeasurementSpec(CALCIUM_MASS, float(mass), MG, MASS_METHOD))
    out.append(MeasurementSpec(LESION_COUNT, float(count), LESIONS))
    return out


def _check(scores: Scores) -> None:
    for name, v in (("agatston", scores.agatston), ("volume_mm3", scores.volume_mm3), ("mass_mg", scores.mass_mg)):
        if v is not None and (not math.isfinite(v) or v < 0):
            raise DeepCACError(
                ErrorCode.E_SR_WRITE, f"convention {scores.convention}: {name} = {v} is not a valid value"
            )
    if scores.lesion_count < 0:
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"convention {scores.convention}: negative lesion count")


def measurement_groups(
    scores_by_convention: dict[str, Scores],
    *,
    has_vessel_segments: bool,
    kvp: float | None,
    aortic_by_convention: dict[str, Scores] | None = None,
) -> list[GroupSpec]:
    """All groups: conventions in name order; per convention all coronary calcium, the vessels
    (LM, LAD, LCX, RCA), then thoracic aortic calcium when ``aortic_by_convention`` has it."""
    if not scores_by_convention:
        raise DeepCACError(ErrorCode.E_SR_WRITE, "no scores to report")
    aortic = aortic_by_convention or {}
    if aortic and set(aortic) != set(scores_by_convention):
        raise DeepCACError(
            ErrorCode.E_SR_WRITE, f"aortic scores for {sorted(aortic)}, coronary for {sorted(scores_by_convention)}"
        )
    groups: list[GroupSpec] = []
    for name in sorted(scores_by_convention):
        s = scores_by_convention[name]
        if s.convention != name:
            raise DeepCACError(ErrorCode.E_SR_WRITE, f"scores filed under {name!r} say convention {s.convention!r}")
        _check(s)
        measurements = _values(s.agatston, s.volume_mm3, s.mass_mg, s.lesion_count)
        bands = hu_bands(s.convention_params, kvp)
        threshold = MeasurementSpec(AGATSTON_THRESHOLD, bands[0], HU, AGATSTON_METHOD)
        categories = {
            scheme: (risk_scheme_code(scheme), risk_value_code(scheme, label)) for scheme, label in s.categories.items()
        }
        groups.append(
            GroupSpec(
                len(groups), name, dict(s.convention_params), "all", SegKind.CAC, CAC_SEGMENT, VASCULAR_CALCIFICATION,
                CORONARY_ARTERY, (*measurements, threshold), dict(sorted(categories.items())), bands,
            )
        )  # fmt: skip
        if s.per_vessel and not has_vessel_segments:
            raise DeepCACError(ErrorCode.E_SR_WRITE, f"{name}: per-vessel scores but the SEG has no vessel segments")
        for vessel in sorted(s.per_vessel, key=vessel_segment_number):
            v = s.per_vessel[vessel]
            groups.append(
                GroupSpec(
                    len(groups), name, dict(s.convention_params), vessel, SegKind.VESSELS,
                    vessel_segment_number(vessel), VASCULAR_CALCIFICATION, VESSEL_CODES[vessel],
                    tuple(_values(v.agatston, v.volume_mm3, v.mass_mg, v.lesion_count)), {}, bands,
                )
            )  # fmt: skip
        if name in aortic:
            a = aortic[name]
            _check(a)
            values = _values(a.agatston, a.volume_mm3, a.mass_mg, a.lesion_count)
            groups.append(
                GroupSpec(
                    len(groups), name, dict(a.convention_params), "aortic", SegKind.CAC, AORTIC_SEGMENT,
                    VASCULAR_CALCIFICATION, THORACIC_AORTA, (*values, threshold), {}, bands,
                )
            )  # fmt: skip
    return groups
