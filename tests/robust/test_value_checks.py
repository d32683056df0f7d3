"""Issue 25, item 3: NaN, inf and negative values in ``cac_lesions`` and ``measurements``
fail QA and ``release verify`` (they passed both; only ``cac_series`` had finiteness checks)."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepcac2.qa.result import Severity
from deepcac2.qa.run import run_qa
from deepcac2.qa.table_checks import check_table
from deepcac2.release.build import build_release
from deepcac2.release.verify import verify_release
from deepcac2.schemas.registry import get_table
from tests.release.runfactory import conform, make_run, write_checks

LESION = {"SeriesInstanceUID": "1.2.3", "convention": "deepcac", "lesion_id": 1, "first_slice": 3, "last_slice": 4}
CODE = {"CodeValue": "112058", "CodingSchemeDesignator": "DCM", "CodeMeaning": "Calcium score"}
UNIT = {"CodeValue": "1", "CodingSchemeDesignator": "UCUM", "CodingSchemeVersion": None, "CodeMeaning": "no units"}
MEASUREMENT = {
    "SOPInstanceUID": "1.2.4",
    "SeriesInstanceUID": "1.2.5",
    "measurementGroup_number": 0,
    "segmentationInstanceUID": "1.2.6",
    "segmentationSegmentNumber": 1,
    "sourceSegmentedSeriesUID": "1.2.3",
    "trackingIdentifier": "Coronary calcium [deepcac]",
    "trackingUniqueIdentifier": "1.2.7",
    "Quantity": CODE,
    "Value": 12.5,
    "Units": UNIT,
    "convention": "deepcac",
}
CASES = [
    ("cac_lesions", "agatston"),
    ("cac_lesions", "area_mm2"),
    ("cac_lesions", "centroid_x_mm"),
    ("measurements", "Value"),
]


def _failed(table: str, column: str, value: float) -> list[str]:
    row = {**(LESION if table == "cac_lesions" else MEASUREMENT), column: value}
    results = check_table(conform([row], table), get_table(table))
    return [r.subject for r in results if not r.passed and r.severity is Severity.BLOCKING]


@pytest.mark.parametrize(
    ("table", "column", "bad"),
    # a centroid is a coordinate: negative is fine there, not NaN or inf
    [
        (t, c, b)
        for t, c in CASES
        for b in (math.nan, math.inf, -math.inf, -1.0)
        if not (c.startswith("cent") and b < 0)
    ],
)
def test_qa_blocks_non_finite_and_negative_values(table: str, column: str, bad: float) -> None:
    assert _failed(table, column, bad) == [f"{table}.{column}"]
    assert _failed(table, column, 1.0) == []


def test_every_float_column_of_every_table_is_checked() -> None:
    from deepcac2.schemas.registry import TABLES

    floats = [(t.name, c.name) for t in TABLES.values() for c in t.columns if pa.types.is_floating(c.type)]
    assert floats and all(get_table(t).column(c).finite for t, c in floats)


def _bad_run(tmp_path: Path) -> Path:
    run = make_run(tmp_path / "RUN", n_patients=1, images=False)
    lesions = pq.read_table(run / "tables" / "cac_lesions.parquet").to_pylist()
    lesions[0]["agatston"], lesions[0]["volume_mm3"] = math.nan, -4.0
    pq.write_table(conform(lesions, "cac_lesions"), run / "tables" / "cac_lesions.parquet")
    rows = [{**MEASUREMENT, "Value": math.inf}, {**MEASUREMENT, "measurementGroup_number": 1, "Value": -2.0}]
    pq.write_table(conform(rows, "measurements"), run / "tables" / "measurements.parquet")
    return run


def test_qa_and_verify_catch_them_in_a_run_and_a_release(tmp_path: Path) -> None:
    run = _bad_run(tmp_path)
    blocked = {r.subject for r in run_qa(run, sample=3, review_sample=0, out_dir=tmp_path / "qa").blocking_failures}
    assert {"cac_lesions.agatston", "cac_lesions.volume_mm3", "measurements.Value"} <= blocked

    write_checks(run, blocking_failure=False)  # a QA that missed them: verify must still catch them
    report = verify_release(build_release(run, "1.0.0", tmp_path / "REL", dashboard_patients=1))
    assert not report.ok
    problems = " | ".join(report.schema_problems)
    for subject in ("cac_lesions.agatston", "cac_lesions.volume_mm3", "measurements.Value"):
        assert subject in problems, report.lines()


@pytest.mark.parametrize("table", ["cac_lesions", "measurements", "cac_series"])
def test_an_empty_table_passes_its_value_checks(table: str) -> None:
    results = check_table(conform([], table), get_table(table))
    assert results and all(r.passed for r in results if r.check.endswith(".range"))
