"""IDC's BigQuery views of TID 1500 SRs, replayed on one SR in Python, rule for rule.

IDC flattens SRs with three views in ImagingDataCommons/etl_flow
(``bq/generate_tables_and_views/derived_tables/BQ_Table_Building/derived_data_views/sql``):
``measurement_groups.sql``, ``quantitative_measurements.sql`` and ``qualitative_measurements.sql``.
Their rules, as read from that text (the source, commits and rules are pinned in
``qa/idc_views_rules.json``; ``tests/qa/test_idc_views.py`` checks this module against it, and
against the SQL files themselves when ``DEEPCAC2_ETL_FLOW_SQL`` names a folder holding them):

- ``measurement_groups``: TID 1500 SRs (``ContentTemplateSequence[0]`` 1500/DCMR); a CONTAINER
  "Measurement Group" child of a level-1 item, numbered by its offset among those children from
  0; kept only with every one of (inner joins): TEXT DCM 112039 Tracking Identifier, UIDREF DCM
  112040 Tracking Unique Identifier, an IMAGE referencing a SEG instance (``segmentationSegmentNumber``
  is the first of ReferencedSegmentNumber), UIDREF DCM 121232 Source series, CODE DCM 121071
  Finding, CODE Finding Site as SRT G-C0E3 **or** SCT 363698007; and the SEG itself in IDC
  (joined on its SOPInstanceUID for ``segmentationSeriesUID``).
- ``quantitative_measurements``: the NUM children of a kept group, joined again with its Finding
  and its Finding Site (SRT G-C0E3 **or** SCT 363698007); ``Value`` is
  ``SAFE_CAST(NumericValue AS NUMERIC)``: 9 decimal places, NULL when it does not convert.
- ``qualitative_measurements``: the CODE children of a kept group, joined with its Finding and a
  Finding Site **as SRT G-C0E3 only** (a group whose site is SCT 363698007 loses every row), then
  filtered by ``(CodeMeaning <> "121071" AND CodingSchemeDesignator <> "DCM") AND (CodeMeaning <>
  "G-C0E3" AND CodingSchemeDesignator <> "SRT")`` on the concept name: as written, any concept
  name in the DCM or SRT scheme is dropped, whatever its code (this is how Finding and Finding
  Site leave the view; a DCM-coded qualitative evaluation would leave with them).

So our SRs write the Finding Site concept as SRT G-C0E3 (``sr/sop.py``) and their qualitative
evaluations in the private ``99DEEPCAC`` scheme: both views keep every value. ``values_dropped``
lists what the views would lose; QA fails on any (``sr.idc_views_keep_values``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydicom.dataset import Dataset

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
TRACKING_IDENTIFIER = ("112039", "DCM")
TRACKING_UID = ("112040", "DCM")
SOURCE_SERIES = ("121232", "DCM")
FINDING = ("121071", "DCM")
LATERALITY = ("272741003", "SCT")
DERIVATION = ("121401", "DCM")
#: Finding Site concept names each view accepts (value, scheme)
GROUP_FINDING_SITES = frozenset({("G-C0E3", "SRT"), ("363698007", "SCT")})
QUANTITATIVE_FINDING_SITES = frozenset({("G-C0E3", "SRT"), ("363698007", "SCT")})
QUALITATIVE_FINDING_SITES = frozenset({("G-C0E3", "SRT")})
#: the qualitative view's final filter, as written: pairs (CodeMeaning, CodingSchemeDesignator) compared with <>
QUALITATIVE_EXCLUDED = (("121071", "DCM"), ("G-C0E3", "SRT"))
#: BigQuery NUMERIC: 38 digits, 9 of them after the point
NUMERIC_SCALE = 9
NUMERIC_MAX = Decimal("99999999999999999999999999999.999999999")


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


def bigquery_numeric(text: object) -> float | None:
    """``SAFE_CAST(text AS NUMERIC)``: rounded half away from zero to 9 places; None when it does not convert."""
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or abs(value) > NUMERIC_MAX:
        return None
    return float(value.quantize(Decimal(1).scaleb(-NUMERIC_SCALE), rounding=ROUND_HALF_UP))  # HALF_UP: away from 0


def _is_tid1500(sr: Dataset) -> bool:
    templates = sr.get("ContentTemplateSequence", [])
    return bool(templates) and templates[0].TemplateIdentifier == "1500" and templates[0].MappingResource == "DCMR"


def _groups(sr: Dataset) -> list[tuple[int, Dataset]]:
    """Every Measurement Group container with its offset among its siblings."""
    if not _is_tid1500(sr):
        return []
    return [
        (number, group)
        for level1 in sr.get("ContentSequence", [])
        for number, group in enumerate(level1.get("ContentSequence", []))
        if group.ValueType == "CONTAINER" and group.ConceptNameCodeSequence[0].CodeMeaning == "Measurement Group"
    ]


def _finding_site(group: Dataset, accepted: frozenset[tuple[str, str]]) -> Dataset | None:
    return next(
        (i for i in group.get("ContentSequence", []) if i.ValueType == "CODE" and _concept(i) in accepted), None
    )


def measurement_groups(sr: Dataset, seg_series: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The groups IDC's ``measurement_groups`` view keeps, with the columns it derives.

    ``seg_series``: SOPInstanceUID -> SeriesInstanceUID of the SEGs in IDC (the view's join with
    ``dicom_metadata``); None assumes every referenced SEG is there.
    """
    out = []
    for number, group in _groups(sr):
        found: dict[str, Any] = {}
        for item in group.get("ContentSequence", []):
            concept = _concept(item)
            if item.ValueType == "TEXT" and concept == TRACKING_IDENTIFIER:
                found["trackingIdentifier"] = str(item.TextValue)
            elif item.ValueType == "UIDREF" and concept == TRACKING_UID:
                found["trackingUniqueIdentifier"] = str(item.UID)
            elif item.ValueType == "UIDREF" and concept == SOURCE_SERIES:
                found["sourceSegmentedSeriesUID"] = str(item.UID)
            elif item.ValueType == "IMAGE" and item.ReferencedSOPSequence[0].ReferencedSOPClassUID == SEG_CLASS:
                ref = item.ReferencedSOPSequence[0]
                found["segmentationInstanceUID"] = str(ref.ReferencedSOPInstanceUID)
                segment = ref.get("ReferencedSegmentNumber")  # segmentationSegmentNumber[SAFE_OFFSET(0)]
                if segment is not None and not isinstance(segment, int):
                    segment = segment[0] if len(segment) else None
                found["segmentationSegmentNumber"] = None if segment is None else int(segment)
            elif item.ValueType == "CODE" and concept == FINDING:
                found["finding"] = _code(item.ConceptCodeSequence, version=True)
            elif item.ValueType == "CODE" and concept in GROUP_FINDING_SITES:
                found["findingSite"] = _code(item.ConceptCodeSequence, version=True)
                modifiers = item.get("ContentSequence", [])
                laterality = modifiers and _concept(modifiers[0]) == LATERALITY
                found["lateralityModifier"] = _code(modifiers[0].ConceptCodeSequence if laterality else None, True)
        required = ("trackingIdentifier", "trackingUniqueIdentifier", "sourceSegmentedSeriesUID",
                    "segmentationInstanceUID", "finding", "findingSite")  # fmt: skip
        if not all(k in found for k in required):
            continue
        if seg_series is not None:
            if found["segmentationInstanceUID"] not in seg_series:
                continue
            found["segmentationSeriesUID"] = seg_series[found["segmentationInstanceUID"]]
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


def quantitative_measurements(sr: Dataset, seg_series: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of IDC's ``quantitative_measurements`` view (``segmentationSeriesUID`` only with ``seg_series``)."""
    rows = []
    for g in measurement_groups(sr, seg_series):
        site = _finding_site(g["_group"], QUANTITATIVE_FINDING_SITES)
        if site is None:
            continue
        for item in g["_group"].get("ContentSequence", []):
            if item.ValueType != "NUM":
                continue
            measured = item.get("MeasuredValueSequence", [])
            value = measured[0] if measured else Dataset()
            children = item.get("ContentSequence", [])
            derived = children and _concept(children[0]) == DERIVATION
            rows.append(
                {
                    **_base(sr, g),
                    "Quantity": _code(item.ConceptNameCodeSequence),
                    "derivationModifier": _code(children[0].ConceptCodeSequence if derived else None),
                    "Value": bigquery_numeric(value.get("NumericValue")),
                    "Units": _code(value.get("MeasurementUnitsCodeSequence"), version=True),
                }
            )
    return rows


def _qualitative_kept(item: Dataset) -> bool:
    """The view's final WHERE, as written (CodeMeaning compared with the code values)."""
    name = item.ConceptNameCodeSequence[0]
    return all(name.CodeMeaning != m and name.CodingSchemeDesignator != s for m, s in QUALITATIVE_EXCLUDED)


def qualitative_measurements(sr: Dataset, seg_series: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of IDC's ``qualitative_measurements`` view."""
    rows = []
    for g in measurement_groups(sr, seg_series):
        site = _finding_site(g["_group"], QUALITATIVE_FINDING_SITES)
        if site is None:  # the view's findingSites CTE knows SRT G-C0E3 only: the whole group is lost
            continue
        for item in g["_group"].get("ContentSequence", []):
            if item.ValueType != "CODE" or not _qualitative_kept(item):
                continue
            base = _base(sr, g)
            row = {k: base[k] for k in _QUALITATIVE_COLUMNS}
            row["Quantity"] = _code(item.ConceptNameCodeSequence)
            row["Value"] = _code(item.ConceptCodeSequence)
            row["finding"] = base["finding"]
            row["findingSite"] = _code(site.ConceptCodeSequence, version=True)
            rows.append(row)
    return rows


#: what the qualitative view selects before Quantity, Value, finding and findingSite (no SeriesDescription)
_QUALITATIVE_COLUMNS = (
    "PatientID", "SOPInstanceUID", "SeriesInstanceUID", "measurementGroup_number", "segmentationInstanceUID",
    "segmentationSegmentNumber", "sourceSegmentedSeriesUID", "trackingIdentifier", "trackingUniqueIdentifier",
)  # fmt: skip


def sr_values(sr: Dataset) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    """Every value the SR reports, as (group number, concept value, value text): its NUM items, and its
    CODE items other than the Finding and the Finding Site (the qualitative evaluations)."""
    numbers, codes = [], []
    for number, group in _groups(sr):
        for item in group.get("ContentSequence", []):
            concept = _concept(item)
            if item.ValueType == "NUM":
                measured = item.get("MeasuredValueSequence", [])
                numbers.append((number, concept[0], str(measured[0].NumericValue) if measured else ""))
            elif item.ValueType == "CODE" and concept != FINDING and concept not in GROUP_FINDING_SITES:
                codes.append((number, concept[0], str(item.ConceptCodeSequence[0].CodeValue)))
    return numbers, codes


def values_dropped(sr: Dataset, seg_series: dict[str, str] | None = None) -> list[str]:
    """What the SR reports and IDC's current views would not show (or show changed): empty when all are kept."""
    numbers, codes = sr_values(sr)
    seen_numbers = {
        (r["measurementGroup_number"], r["Quantity"]["CodeValue"]): r["Value"]
        for r in quantitative_measurements(sr, seg_series)
    }
    seen_codes = {
        (r["measurementGroup_number"], r["Quantity"]["CodeValue"], r["Value"]["CodeValue"])
        for r in qualitative_measurements(sr, seg_series)
    }
    lost = []
    for group, concept, text in numbers:
        viewed = seen_numbers.get((group, concept), "absent")
        wanted = bigquery_numeric(text)
        if viewed == "absent" or viewed is None or wanted is None or abs(viewed - float(text)) > 10**-NUMERIC_SCALE:
            lost.append(f"quantitative: group {group} {concept}={text} ({'absent' if viewed == 'absent' else viewed})")
    for group, concept, value in codes:
        if (group, concept, value) not in seen_codes:
            lost.append(f"qualitative: group {group} {concept}={value}")
    return lost


# -- the rules as read from the views' SQL text (pinned in qa/idc_views_rules.json) ------------------
_PAIR = r'CodeValue\s*=\s*"([^"]+)"\s+AND\s+[\w.\[\]\s()]*?CodingSchemeDesignator\s*=\s*"([^"]+)"'
_EXCLUDED = r'CodeMeaning\s*<>\s*"([^"]+)"\s+AND\s+[\w.\[\]\s()]*?CodingSchemeDesignator\s*<>\s*"([^"]+)"'
_CAST = r"AS\s+(NUMERIC|BIGNUMERIC|FLOAT64)\s*\)\s*AS\s+Value"


def rules_from_sql(name: str, text: str) -> dict[str, Any]:
    """The facts ``idc_views_rules.json`` records for one of the three SQL files, read from its text."""
    import re

    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # BigQuery comments start with #
    pairs = [list(p) for p in re.findall(_PAIR, body, flags=re.DOTALL)]
    out: dict[str, Any] = {"concepts": pairs}
    out["finding_sites"] = [p for p in pairs if p in (["G-C0E3", "SRT"], ["363698007", "SCT"])]
    if name == "measurement_groups.sql":
        out["seg_class"] = re.findall(r'ReferencedSOPClassUID\s*=\s*"([\d.]+)"', body)[0]
    if name == "quantitative_measurements.sql":
        out["value_cast"] = re.findall(_CAST, body)[0]
    if name == "qualitative_measurements.sql":
        out["excluded"] = [list(p) for p in re.findall(_EXCLUDED, body, flags=re.DOTALL)]
    return out


def rules_of_this_module() -> dict[str, dict[str, Any]]:
    """What this module applies, in the shape of ``idc_views_rules.json`` (order aside)."""
    group = [TRACKING_IDENTIFIER, TRACKING_UID, SOURCE_SERIES, FINDING, *sorted(GROUP_FINDING_SITES)]
    return {
        "measurement_groups.sql": {
            "concepts": group,
            "finding_sites": sorted(GROUP_FINDING_SITES),
            "seg_class": SEG_CLASS,
        },
        "quantitative_measurements.sql": {
            "concepts": [FINDING, LATERALITY, DERIVATION, *sorted(QUANTITATIVE_FINDING_SITES)],
            "finding_sites": sorted(QUANTITATIVE_FINDING_SITES),
            "value_cast": "NUMERIC",
        },
        "qualitative_measurements.sql": {
            "concepts": [FINDING, *sorted(QUALITATIVE_FINDING_SITES)],
            "finding_sites": sorted(QUALITATIVE_FINDING_SITES),
            "excluded": list(QUALITATIVE_EXCLUDED),
        },
    }
