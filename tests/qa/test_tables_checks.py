from __future__ import annotations

import pyarrow as pa

from deepcac2.qa.result import Severity, results_table
from deepcac2.qa.table_checks import check_table
from deepcac2.schemas.base import Column, TableSchema

SCHEMA = TableSchema(
    name="demo",
    version="1.0.0",
    doc="test table",
    columns=(
        Column("id", pa.string(), "key", required=True),
        Column("score", pa.float64(), "a score", minimum=0.0),
        Column("band", pa.string(), "a category", allowed=("low", "high")),
    ),
    key=("id",),
)


def _by_check(results):
    return {(r.check.split(".")[-1], r.subject): r for r in results}


def test_good_table_passes_everything() -> None:
    t = pa.table({"id": ["a", "b"], "score": [0.0, 3.5], "band": ["low", "high"]}, schema=SCHEMA.arrow)
    results = check_table(t, SCHEMA)
    assert results and all(r.passed for r in results)


def test_nulls_are_not_out_of_range() -> None:
    """An optional column may be null; only the required check speaks about nulls."""
    t = pa.table({"id": ["a", "b"], "score": [None, 1.0], "band": [None, "low"]}, schema=SCHEMA.arrow)
    assert all(r.passed for r in check_table(t, SCHEMA))


def test_each_defect_fails_its_check() -> None:
    t = pa.table(
        {"id": ["a", "a", None], "score": [-1.0, 2.0, None], "band": ["low", "mid", None]}, schema=SCHEMA.arrow
    )
    got = _by_check(check_table(t, SCHEMA))
    assert not got[("unique_key", "demo")].passed
    assert not got[("required", "demo.id")].passed and got[("required", "demo.id")].value == 1
    assert not got[("range", "demo.score")].passed and got[("range", "demo.score")].value == 1
    assert not got[("range", "demo.band")].passed
    assert all(r.severity is Severity.BLOCKING for r in got.values())


def test_schema_drift_is_reported() -> None:
    t = pa.table({"id": ["a"], "score": pa.array([1], pa.int64()), "extra": [1]})
    (result,) = [r for r in check_table(t, SCHEMA) if r.check.endswith(".schema")]
    assert not result.passed
    assert "missing column band" in result.message and "unexpected column extra" in result.message
    assert "score is int64" in result.message


def test_results_table_is_sorted_and_typed() -> None:
    t = pa.table({"id": ["a", "a"], "score": [1.0, 1.0], "band": ["low", "low"]}, schema=SCHEMA.arrow)
    table = results_table(list(reversed(check_table(t, SCHEMA))))
    checks = table.column("check").to_pylist()
    assert checks == sorted(checks)
    failed = [r for r in table.to_pylist() if not r["passed"]]
    assert [r["check"] for r in failed] == ["table.demo.unique_key"]
    assert failed[0]["blocking"] is True


def _both(t: pa.Table, schema: TableSchema, tmp_path, monkeypatch, batch: int = 2):
    import pyarrow.parquet as pq

    from deepcac2.qa import table_checks as tables

    path = tmp_path / f"{schema.name}.parquet"
    pq.write_table(t, path, row_group_size=3)
    monkeypatch.setattr(tables, "BATCH_ROWS", batch)  # several batches, across row groups
    return check_table(pq.read_table(path), schema), tables.check_table_file(path, schema)


def test_a_file_checked_in_batches_gives_the_results_of_the_whole_table(tmp_path, monkeypatch) -> None:
    """Streaming over record batches (DuckDB for the key) finds exactly what the whole table does."""
    ids = ["a", "a", None, "c", "d", "d", "d", "e"]
    scores = [-1.0, 2.0, None, float("nan"), float("inf"), 1.0, 5.0, 0.0]
    bands = ["low", "mid", None, "high", "high", "x", "low", None]
    nullable = pa.schema([f.with_nullable(True) for f in SCHEMA.arrow])  # a file may hold what the schema forbids
    t = pa.table({"id": ids, "score": scores, "band": bands}, schema=nullable)
    whole, batched = _both(t, SCHEMA, tmp_path, monkeypatch)
    assert batched == whole
    assert not all(r.passed for r in batched)  # the defects are found, not only matched
    clean = pa.table({"id": ["a", "b"], "score": [0.0, 3.5], "band": ["low", "high"]}, schema=SCHEMA.arrow)
    whole, batched = _both(clean, SCHEMA, tmp_path, monkeypatch)
    assert batched == whole and all(r.passed for r in batched)
    drifted = pa.table({"id": ["a"], "score": pa.array([1], pa.int64()), "extra": [1]})
    whole, batched = _both(drifted, SCHEMA, tmp_path, monkeypatch)
    assert batched == whole and not batched[0].passed
    whole, batched = _both(SCHEMA.arrow.empty_table(), SCHEMA, tmp_path, monkeypatch)
    assert batched == whole


def test_a_struct_key_is_counted_in_a_file(tmp_path, monkeypatch) -> None:
    """A key field inside a struct (measurements' Quantity.CodeValue) is a key column for DuckDB too."""
    code = pa.struct([("CodeValue", pa.string()), ("CodingSchemeDesignator", pa.string())])
    schema = TableSchema(
        name="nested",
        version="1.0.0",
        doc="struct key",
        columns=(Column("uid", pa.string(), "key", required=True), Column("Quantity", code, "a code")),
        key=("uid", "Quantity.CodeValue"),
    )
    quantities = [{"CodeValue": v, "CodingSchemeDesignator": "DCM"} for v in ["1", "2", "1", "1", None, None]]
    t = pa.table({"uid": ["u", "u", "u", "v", "v", "v"], "Quantity": quantities}, schema=schema.arrow)
    assert t.column("uid").null_count == 0
    whole, batched = _both(t, schema, tmp_path, monkeypatch)
    assert batched == whole
    (key,) = [r for r in batched if r.check.endswith("unique_key")]
    assert key.value == 2  # (u, 1) twice, (v, null) twice
