"""``measurements``: IDC's quantitative-measurements shape, one row per SR measurement.

Column names follow IDC's ``quantitative_measurements`` (Quantity, Value, Units,
finding, findingSite, segmentationInstanceUID, segmentationSegmentNumber,
sourceSegmentedSeriesUID, ...), so rows union with IDC's own tables. IDC stores coded
values as structs; plain Parquet types only here, so each code is three columns:
``X`` (CodeMeaning), ``X_CodeValue`` and ``X_CodingSchemeDesignator``.
"""

from __future__ import annotations

import pyarrow as pa

from deepcac2.schemas.base import Column, TableSchema


def _coded(name: str, doc: str, required: bool = False) -> tuple[Column, ...]:
    return (
        Column(name, pa.string(), f"{doc} (CodeMeaning).", required=required),
        Column(f"{name}_CodeValue", pa.string(), f"{doc} (CodeValue).", required=required),
        Column(f"{name}_CodingSchemeDesignator", pa.string(), f"{doc} (CodingSchemeDesignator).", required=required),
    )


TABLE = TableSchema(
    name="measurements",
    version="1.0.0",
    doc="One row per numeric measurement of the TID 1500 SRs, in IDC's quantitative-measurements "
    "shape, plus the scoring convention.",
    key=("sourceSegmentedSeriesUID", "convention", "segmentationSegmentNumber", "Quantity_CodeValue"),
    columns=(
        Column("PatientID", pa.string(), "PatientID of the source."),
        Column("SOPInstanceUID", pa.string(), "SOPInstanceUID of the SR holding the measurement.", required=True),
        Column("sourceSegmentedSeriesUID", pa.string(), "SeriesInstanceUID of the source CT.", required=True),
        Column("segmentationInstanceUID", pa.string(), "SOPInstanceUID of the SEG.", required=True),
        Column("segmentationSegmentNumber", pa.int32(), "Segment measured.", required=True),
        Column("measurementGroup_number", pa.int32(), "1-based group number in the SR.", required=True),
        Column("trackingIdentifier", pa.string(), "Tracking Identifier of the group.", required=True),
        Column("trackingUniqueIdentifier", pa.string(), "Tracking Unique Identifier of the group.", required=True),
        *_coded("Quantity", "Concept measured", required=True),
        Column("Value", pa.float64(), "Numeric value.", required=True),
        *_coded("Units", "UCUM unit", required=True),
        *_coded("finding", "Finding type"),
        *_coded("findingSite", "Finding site"),
        *_coded("method", "Measurement method"),
        Column("convention", pa.string(), "Scoring convention of the group.", required=True),
    ),
)
