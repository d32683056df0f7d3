"""``measurements``: IDC's ``quantitative_measurements`` shape, one row per SR measurement.

Columns, their names, order and types are those of IDC's BigQuery view
``quantitative_measurements`` (ImagingDataCommons/etl_flow,
``derived_data_views/schema/quantitative_measurements.json``): codes are structs
(``CodeValue``, ``CodingSchemeDesignator``, [``CodingSchemeVersion``,] ``CodeMeaning``),
group numbers start at 0, and ``SOPInstanceUID``/``SeriesInstanceUID``/``SeriesDescription``
are the SR's. So ``SELECT * FROM measurements UNION ALL BY NAME SELECT * FROM
<IDC's quantitative_measurements>`` works (tests/schemas/test_idc_union.py). Two columns of
our own follow IDC's: ``method`` (the measurement's method code) and ``convention``.

``Value`` is IDC's NUMERIC (decimal(38, 9)) there; here it is a double, which holds every DS
value of the SR exactly (a DS has at most 16 characters), and a union gives a double.
"""

from __future__ import annotations

import pyarrow as pa

from deepcac2.schemas.base import Column, TableSchema

#: IDC's code struct without and with the (always null here) CodingSchemeVersion
CODE = pa.struct([("CodeValue", pa.string()), ("CodingSchemeDesignator", pa.string()), ("CodeMeaning", pa.string())])
CODE_V = pa.struct(
    [
        ("CodeValue", pa.string()),
        ("CodingSchemeDesignator", pa.string()),
        ("CodingSchemeVersion", pa.string()),
        ("CodeMeaning", pa.string()),
    ]
)

TABLE = TableSchema(
    name="measurements",
    version="2.0.0",
    doc="One row per numeric measurement of the TID 1500 SRs, in the shape of IDC's quantitative_measurements "
    "view (same names, order and types, codes as structs, groups numbered from 0), plus the measurement "
    "method and the scoring convention.",
    key=("SOPInstanceUID", "measurementGroup_number", "Quantity.CodeValue"),
    columns=(
        Column("PatientID", pa.string(), "PatientID of the SR (the source's)."),
        Column("SOPInstanceUID", pa.string(), "SOPInstanceUID of the SR holding the measurement.", required=True),
        Column(
            "SeriesInstanceUID",
            pa.string(),
            "SeriesInstanceUID of the SR (IDC's shape), not of the CT: join cac_series through sourceSegmentedSeriesUID.",
            required=True,
        ),
        Column("SeriesDescription", pa.string(), "SeriesDescription of the SR."),
        Column(
            "measurementGroup_number",
            pa.int64(),
            "Measurement group number in the SR's Imaging Measurements container, from 0 (as IDC counts).",
            required=True,
            minimum=0,
        ),
        Column("segmentationInstanceUID", pa.string(), "SOPInstanceUID of the SEG measured.", required=True),
        Column("segmentationSeriesUID", pa.string(), "SeriesInstanceUID of the SEG measured."),
        Column("segmentationSegmentNumber", pa.int64(), "Segment measured.", required=True, minimum=1),
        Column(
            "sourceSegmentedSeriesUID",
            pa.string(),
            "SeriesInstanceUID of the source CT: the key to cac_series.SeriesInstanceUID.",
            required=True,
        ),
        Column("trackingIdentifier", pa.string(), "Tracking Identifier of the group.", required=True),
        Column("trackingUniqueIdentifier", pa.string(), "Tracking Unique Identifier of the group.", required=True),
        Column("Quantity", CODE, "Concept measured (the NUM item's concept name).", required=True),
        Column("derivationModifier", CODE, "Derivation modifier of the measurement; all fields null (none written)."),
        Column(
            "Value",
            pa.float64(),
            "Numeric value, as the SR's DS holds it (scores, volumes, masses, counts, thresholds: never negative).",
            required=True,
            minimum=0,
        ),
        Column("Units", CODE_V, "UCUM unit of the value.", required=True),
        Column("finding", CODE_V, "Finding of the group (TID 1411 row 3b)."),
        Column("findingSite", CODE_V, "Finding site of the group (TID 1419 row 2)."),
        Column("lateralityModifier", CODE_V, "Laterality of the finding site; all fields null (not applicable)."),
        Column("method", CODE, "Measurement method (e.g. DCM 112055 Agatston scoring method); null when none."),
        Column("convention", pa.string(), "Scoring convention of the group.", required=True),
    ),
)

#: the columns of IDC's view, in its order (ours add ``method`` and ``convention``)
IDC_COLUMNS: tuple[str, ...] = tuple(c.name for c in TABLE.columns if c.name not in ("method", "convention"))
