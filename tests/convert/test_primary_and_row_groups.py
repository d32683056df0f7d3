"""``cac_series.is_primary`` (one series per patient and round, DeepCAC's preference) and row groups."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2.pipeline.convert.parquet_tables import ROW_GROUP_ROWS, write_table
from deepcac2.pipeline.convert.primary import mark_primary
from deepcac2.pipeline.orchestrate.records import idc_index_version
from deepcac2.schemas.base import Column, TableSchema
from deepcac2.schemas.registry import get_table


def _row(uid: str, patient: str, year: int | None, kernel: str | None, thickness: float | None, study: str = "s"):
    return {"SeriesInstanceUID": uid, "PatientID": patient, "study_year": year, "kernel": kernel,
            "slice_thickness_mm": thickness, "StudyInstanceUID": study}  # fmt: skip


def _chosen(rows) -> set[str]:
    return {r["SeriesInstanceUID"] for r in mark_primary(rows) if r["is_primary"]}


def test_one_primary_per_patient_and_year_by_deepcac_preference() -> None:
    rows = [
        _row("1.1", "p1", 0, "LUNG", 2.5),  # listed thickness, hard kernel
        _row("1.2", "p1", 0, "B30f", 2.5),  # listed thickness, soft kernel: chosen
        _row("1.3", "p1", 0, "B31f", 3.2),  # the softest kernel, but 3.2 mm is not a DeepCAC spacing
        _row("1.4", "p1", 1, "LUNG", 1.0),  # alone in T1: chosen
        _row("2.1", "p2", 0, "STANDARD", 1.25),  # 1.25 vs 2.0, both listed: closer to 2.5 wins
        _row("2.2", "p2", 0, "STANDARD", 2.0),
        _row("3.1", "p3", None, "B30f", 2.5, study="a"),  # no study year: the study is the round
        _row("3.2", "p3", None, "B30f", 2.5, study="b"),
        _row("4.2", "p4", 2, "FC51", 2.5),  # equal in every way: the smaller UID
        _row("4.1", "p4", 2, "FC51", 2.5),
    ]
    assert _chosen(rows) == {"1.2", "1.4", "2.2", "3.1", "3.2", "4.1"}
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    assert _chosen(shuffled) == _chosen(rows)  # never depends on row order


def test_missing_thickness_uses_the_loaders_spacing() -> None:
    rows = [_row("1.1", "p", 0, "B30f", None) | {"slice_spacing_mm": 5.0}, _row("1.2", "p", 0, "B70f", 2.5)]
    assert _chosen(rows) == {"1.2"}  # 2.5 mm listed beats a measured 5 mm


def test_write_table_sets_primary(tmp_path: Path) -> None:
    table = get_table("cac_series")
    rows = [
        {**_row(uid, "p", 0, kernel, 2.5), "qa_flags": [], "loader_notes": [], "model_name": "m",
         "model_version": "1", "model_id": "m:1:x", "toolkit_version": "0", "conventions_json": "{}"}
        for uid, kernel in (("1.1", "LUNG"), ("1.2", "B31f"))
    ]  # fmt: skip
    got = pq.read_table(write_table(table, rows, tmp_path / "s.parquet")).to_pylist()
    assert {r["SeriesInstanceUID"]: r["is_primary"] for r in got} == {"1.1": False, "1.2": True}


def test_row_groups_have_a_fixed_size(tmp_path: Path) -> None:
    schema = TableSchema("t", "1.0.0", "t", (Column("k", pa.int64(), "k", required=True),), key=("k",))
    rows = [{"k": i} for i in range(25)]
    small = pq.ParquetFile(write_table(schema, rows, tmp_path / "a.parquet", row_group_rows=10))
    assert [small.metadata.row_group(i).num_rows for i in range(small.num_row_groups)] == [10, 10, 5]
    default = pq.ParquetFile(write_table(schema, rows, tmp_path / "b.parquet"))
    assert default.num_row_groups == 1 and ROW_GROUP_ROWS == 65_536


def test_the_run_records_the_cohorts_idc_index_version(tmp_path: Path) -> None:
    cohort = tmp_path / "cohort.parquet"
    table = pa.table({"x": [1]}).replace_schema_metadata({"idc_index_data": "23.1.0"})
    pq.write_table(table, cohort)
    assert idc_index_version(cohort) == "23.1.0"
    import idc_index_data

    assert idc_index_version(tmp_path / "absent.parquet") == idc_index_data.__version__
