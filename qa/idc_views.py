"""What IDC's BigQuery views would read from one of our SRs, computed here.

IDC flattens TID 1500 SRs with the views ``measurement_groups``, ``quantitative_measurements``
and ``qualitative_measurements`` (ImagingDataCommons/etl_flow, ``derived_data_views/sql``).
A group is kept only when it has all of: Tracking Identifier (TEXT DCM 112039), Tracking
Unique Identifier (UIDREF DCM 112040), an IMAGE item referencing a SEG instance (Referenced
Segment), Source series for segmentation (UIDREF DCM 121232), Finding (CODE DCM 121071) and
Finding Site (CODE SRT G-C0E3 or SCT 363698007) - the views join them with inner joins.
``measurementGroup_number`` is the group's offset among the children of its container, from 0.
Numeric rows are the NUM children of a kept group; qualitative rows its CODE children other
than Finding and Finding Site. This module follows those rules on a pydicom dataset, so a test
and QA can check that IDC would see exactly our ``measurements`` table.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_FINDING_SITES = {("G-C0E3", "SRT"), ("363698007", "SCT")}


def _concept(item: Dataset) -> tuple[str, str]:
    c = item.ConceptNameCodeSequence[0]
    return str(c.CodeValue), str(c.CodingSchemeDesignator)


def _code(seq: Any, version: bool = False) -> dict[str, str | None]:
    """A code struct as the views build it; no code is a struct of nulls (``STRUCT(NULL AS CodeValue, ...)``)."""
    if not seq:
        names = ["CodeValue", "CodingSchemeDesignator", *(["CodingSchemeVersion"] if version else []), "CodeMeaning"]
        return dict.fromkeys(names)
    c = seq[0]
    out: dict[str, str | None] = {"CodeValue": c.CodeValue, "CodingSchemeDesignator": c.CodingSchemeDesignator}
    if version:
        out["CodingSchemeVersion"] = c.get("CodingSchemeVersion")
    out["CodeMeaning"] = c.CodeMeaning
    return out


def _is_tid1500(sr: Dataset) -> bool:
    templates = sr.get("ContentTemplateSequence", [])
    return bool(templates) and templates[0].TemplateIdentifier == "1500" and templates[0].MappingResource == "DCMR"


def measurement_groups(sr: Dataset) -> list[dict[str, Any]]:
    """The groups IDC's ``measurement_groups`` view keeps, with the columns it derives."""
    if not _is_tid1500(sr):
        return []
    out = []
    for level1 in sr.get("ContentSequence", []):
        for number, group in enumerate(level1.get("ContentSequence", [])):
            if group.ValueType != "CONTAINER" or group.ConceptNameCodeSequence[0].CodeMeaning != "Measurement Group":
                continue
            found: dict[str, Any] = {}
            for item in group.get("ContentSequence", []):
                concept = _concept(item)
                if item.ValueType == "TEXT" and concept == ("112039", "DCM"):
                    found["trackingIdentifier"] = str(item.TextValue)
                elif item.ValueType == "UIDREF" and concept == ("112040", "DCM"):
                    found["trackingUniqueIdentifier"] = str(item.UID)
                elif item.ValueType == "UIDREF" and concept == ("121232", "DCM"):
                    found["sourceSegmentedSeriesUID"] = str(item.UID)
                elif item.ValueType == "IMAGE" and item.ReferencedSOPSequence[0].ReferencedSOPClassUID == SEG_CLASS:
                    ref = item.ReferencedSOPSequence[0]
                    found["segmentationInstanceUID"] = str(ref.ReferencedSOPInstanceUID)
                    number_ = ref.get("ReferencedSegmentNumber")  # the view takes the first of a multi-value
                    if number_ is not None and not isinstance(number_, int):
                        number_ = number_[0]
                    found["segmentationSegmentNumber"] = None if number_ is None else int(number_)
                elif item.ValueType == "CODE" and concept == ("121071", "DCM"):
                    found["finding"] = _code(item.ConceptCodeSequence, version=True)
                elif item.ValueType == "CODE" and concept in _FINDING_SITES:
                    found["findingSite"] = _code(item.ConceptCodeSequence, version=True)
                    modifiers = item.get("ContentSequence", [])
                    laterality = modifiers and _concept(modifiers[0]) == ("272741003", "SCT")
                    found["lateralityModifier"] = _code(modifiers[0].ConceptCodeSequence if laterality else None, True)
            required = ("trackingIdentifier", "trackingUniqueIdentifier", "sourceSegmentedSeriesUID",
                        "segmentationInstanceUID", "finding", "findingSite")  # fmt: skip
            if all(k in found for k in required):
                out.append({"measurementGroup_number": number, "_group": group, **found})
    return out


def _base(sr: Dataset, g: dict[str, Any]) -> dict[str, Any]:
    return {
        "PatientID": sr.get("PatientID"),
        "SOPInstanceUID": str(sr.SOPInstanceUID),
        "SeriesInstanceUID": str(sr.SeriesInstanceUID),
        "SeriesDescription": sr.get("SeriesDescription"),
        **{k: v for k, v in g.items() if not k.startswith("_")},
    }


def quantitative_measurements(sr: Dataset) -> list[dict[str, Any]]:
    """Rows of IDC's ``quantitative_measurements`` view for this SR (without segmentationSeriesUID,
    which the view takes from the SEG's own header)."""
    rows = []
    for g in measurement_groups(sr):
        for item in g["_group"].get("ContentSequence", []):
            if item.ValueType != "NUM":
                continue
            value = item.MeasuredValueSequence[0]
            children = item.get("ContentSequence", [])
            derived = children and _concept(children[0]) == ("121401", "DCM")
            derivation = _code(children[0].ConceptCodeSequence if derived else None)
            rows.append(
                {
                    **_base(sr, g),
                    "Quantity": _code(item.ConceptNameCodeSequence),
                    "derivationModifier": derivation,
                    "Value": float(value.NumericValue),
                    "Units": _code(value.MeasurementUnitsCodeSequence, version=True),
                }
            )
    return rows


def qualitative_measurements(sr: Dataset) -> list[dict[str, Any]]:
    """Rows of IDC's ``qualitative_measurements`` view: CODE children other than Finding and Finding Site."""
    rows = []
    for g in measurement_groups(sr):
        for item in g["_group"].get("ContentSequence", []):
            if item.ValueType != "CODE" or str(item.ConceptNameCodeSequence[0].CodeValue) in ("121071", "G-C0E3"):
                continue
            rows.append(
                {
                    **_base(sr, g),
                    "Quantity": _code(item.ConceptNameCodeSequence),
                    "Value": _code(item.ConceptCodeSequence),
                }
            )
    return rows
