"""``measurements`` unions BY NAME with a frame in IDC's ``quantitative_measurements`` shape."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2.pipeline.convert import convert_series
from deepcac2.pipeline.convert.series import write_series_tables
from deepcac2.pipeline.sr.content import ds_value

from . import synthetic


def _code(version: bool = False) -> pa.DataType:
    names = ["CodeValue", "CodingSchemeDesignator", *(["CodingSchemeVersion"] if version else []), "CodeMeaning"]
    return pa.struct([(n, pa.string()) for n in names])


#: IDC's view as published (ImagingDataCommons/etl_flow, derived_data_views/schema/quantitative_measurements.json);
#: NUMERIC is BigQuery's decimal(38, 9). Written out here, not taken from our schema, so a drift on our side fails.
IDC_QUANTITATIVE = pa.schema(
    [
        ("PatientID", pa.string()),
        ("SOPInstanceUID", pa.string()),
        ("SeriesInstanceUID", pa.string()),
        ("SeriesDescription", pa.string()),
        ("measurementGroup_number", pa.int64()),
        ("segmentationInstanceUID", pa.string()),
        ("segmentationSeriesUID", pa.string()),
        ("segmentationSegmentNumber", pa.int64()),
        ("sourceSegmentedSeriesUID", pa.string()),
        ("trackingIdentifier", pa.string()),
        ("trackingUniqueIdentifier", pa.string()),
        ("Quantity", _code()),
        ("derivationModifier", _code()),
        ("Value", pa.decimal128(38, 9)),
        ("Units", _code(True)),
        ("finding", _code(True)),
        ("findingSite", _code(True)),
        ("lateralityModifier", _code(True)),
    ]
)


def _idc_row() -> dict:
    code = {"CodeValue": "118565006", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Volume"}
    return {
        "PatientID": "100002",
        "SOPInstanceUID": "1.2.3.4",
        "SeriesInstanceUID": "1.2.3",
        "SeriesDescription": "TotalSegmentator(v1.5.6) Radiomics of Series 2",
        "measurementGroup_number": 0,
        "segmentationInstanceUID": "1.2.3.5",
        "segmentationSeriesUID": "1.2.3.6",
        "segmentationSegmentNumber": 1,
        "sourceSegmentedSeriesUID": "1.2.3.7",
        "trackingIdentifier": "heart",
        "trackingUniqueIdentifier": "1.2.3.8",
        "Quantity": code,
        "derivationModifier": {"CodeValue": None, "CodingSchemeDesignator": None, "CodeMeaning": None},
        "Value": 612000,
        "Units": {
            "CodeValue": "mm3",
            "CodingSchemeDesignator": "UCUM",
            "CodingSchemeVersion": None,
            "CodeMeaning": "mm3",
        },
        "finding": None,
        "findingSite": None,
        "lateralityModifier": None,
    }


def test_union_all_by_name_with_idc_quantitative_measurements(ct, tmp_path: Path) -> None:
    pred = synthetic.prediction(ct.shape)
    converted = convert_series(ct, pred, {"deepcac": synthetic.scores("deepcac")}, tmp_path / "out")
    path = write_series_tables([converted], tmp_path / "tables")["measurements"]
    ours = pq.read_table(path)
    assert ours.schema.names[: len(IDC_QUANTITATIVE)] == IDC_QUANTITATIVE.names  # IDC's order, then ours
    for field in IDC_QUANTITATIVE:
        if field.name != "Value":  # NUMERIC there, double here (union gives double)
            assert ours.schema.field(field.name).type == field.type, field.name
    idc = pa.Table.from_pylist([_idc_row()], schema=IDC_QUANTITATIVE)
    con = duckdb.connect()
    con.register("ours", ours)
    con.register("idc", idc)
    union = con.sql("SELECT * FROM ours UNION ALL BY NAME SELECT * FROM idc")
    got = union.fetchall()
    assert len(got) == ours.num_rows + 1
    # the union is usable as one table: quantity codes, values and group numbers from both sides
    rows = con.sql(
        "SELECT Quantity.CodeValue, Value, measurementGroup_number, convention FROM "
        "(SELECT * FROM ours UNION ALL BY NAME SELECT * FROM idc) ORDER BY SOPInstanceUID, measurementGroup_number"
    ).fetchall()
    assert ("118565006", 612000.0, 0, None) in rows
    s = synthetic.scores("deepcac")
    score = [r[1] for r in rows if r[0] == "112058"]  # DCM Calcium score: all calcium, LAD, RCA groups
    want = [s.agatston, s.per_vessel["LAD"].agatston, s.per_vessel["RCA"].agatston]
    assert sorted(score) == sorted(ds_value(v) for v in want)
    assert min(r[2] for r in rows) == 0  # groups from 0 on both sides
