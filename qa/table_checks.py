"""Table checks that follow from a schema declaration alone.

Schema conformance, unique keys, required columns and declared value rules (range,
allowed values, and finiteness of every floating-point column) are derived from :class:`deepcac2.schemas.base.TableSchema`, so a column added to a schema
is checked without touching QA.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deepcac2.qa.result import CheckResult, Severity
from deepcac2.schemas.base import Column, TableSchema

B = Severity.BLOCKING


def check_schema(table: pa.Table, schema: TableSchema) -> list[CheckResult]:
    name = f"table.{schema.name}.schema"
    expected = {f.name: f.type for f in schema.arrow}
    got = {f.name: f.type for f in table.schema}
    problems = [f"missing column {c}" for c in expected if c not in got]
    problems += [f"unexpected column {c}" for c in got if c not in expected]
    problems += [f"{c} is {got[c]}, schema says {t}" for c, t in expected.items() if c in got and got[c] != t]
    return [CheckResult(name, schema.name, not problems, B, "; ".join(problems) or "matches the schema")]


def check_unique_key(table: pa.Table, schema: TableSchema) -> list[CheckResult]:
    flat = table.flatten() if any("." in k for k in schema.key) else table  # struct fields as "a.b"
    if not schema.key or any(k not in flat.column_names for k in schema.key):
        return []
    keys = flat.select(list(schema.key))
    n_unique = keys.group_by(list(schema.key)).aggregate([]).num_rows
    return [_unique_result(schema, table.num_rows - n_unique)]


def _unique_result(schema: TableSchema, dupes: int) -> CheckResult:
    msg = f"{dupes} duplicate rows on key {schema.key}" if dupes else f"key {schema.key} is unique"
    return CheckResult(f"table.{schema.name}.unique_key", schema.name, dupes == 0, B, msg, float(dupes))


def check_required(table: pa.Table, schema: TableSchema) -> list[CheckResult]:
    out = []
    for col in schema.required:
        if col not in table.column_names:
            continue  # reported by check_schema
        out.append(_required_result(schema, col, table.column(col).null_count))
    return out


def _required_result(schema: TableSchema, col: str, nulls: int) -> CheckResult:
    return CheckResult(
        f"table.{schema.name}.required", f"{schema.name}.{col}", nulls == 0, B, f"{nulls} nulls", float(nulls)
    )


def check_ranges(table: pa.Table, schema: TableSchema) -> list[CheckResult]:
    out = []
    for col in schema.columns:
        if col.name not in table.column_names or not col.checked:
            continue
        out.append(_range_result(schema, col, _out_of_rule(table.column(col.name), col, table.num_rows)))
    return out


def _out_of_rule(values: pa.ChunkedArray, col: Column, rows: int) -> int:
    """How many of ``values`` break the column's declared rule (bounds, allowed set, finiteness)."""
    bad = pa.array([False] * rows, pa.bool_())  # typed: an empty table gives null otherwise
    if col.finite:  # NaN compares false with every bound: count it (and inf) as out of range
        bad = pc.or_(bad, pc.fill_null(pc.invert(pc.is_finite(values)), False))
    if col.minimum is not None:
        bad = pc.or_(bad, pc.fill_null(pc.less(values, col.minimum), False))
    if col.maximum is not None:
        bad = pc.or_(bad, pc.fill_null(pc.greater(values, col.maximum), False))
    if col.allowed:
        # nulls are the required-column check's business, not a value outside the allowed set
        outside = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, pa.array(col.allowed))))
        bad = pc.or_(bad, pc.fill_null(outside, False))
    return pc.sum(pc.cast(bad, pa.int64())).as_py() or 0


def _range_result(schema: TableSchema, col: Column, n_bad: int) -> CheckResult:
    return CheckResult(
        f"table.{schema.name}.range",
        f"{schema.name}.{col.name}",
        n_bad == 0,
        B,
        f"{n_bad} values outside {col.rule()}",
        float(n_bad),
    )


def check_table(table: pa.Table, schema: TableSchema) -> list[CheckResult]:
    """Every schema-derived check on one table."""
    return [
        *check_schema(table, schema),
        *check_unique_key(table, schema),
        *check_required(table, schema),
        *check_ranges(table, schema),
    ]


#: rows read at once by :func:`check_table_file` (a Parquet file of any size is checked in bounded memory)
BATCH_ROWS = 65_536
#: DuckDB's limits for the unique-key count of a file (it spills to disk beyond)
DUCKDB_MEMORY, DUCKDB_THREADS = "256MB", 1


@contextmanager
def duckdb_connection(memory: str = DUCKDB_MEMORY) -> Iterator[Any]:
    """A DuckDB connection capped at ``memory``, ``DUCKDB_THREADS`` threads, spilling to a temporary folder."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="deepcac2-qa-") as spill:
        con = duckdb.connect()
        try:
            con.execute(f"SET memory_limit='{memory}'")
            con.execute(f"SET temp_directory='{spill}'")
            con.execute(f"SET threads={DUCKDB_THREADS}")
            yield con
        finally:
            con.close()


def check_table_file(
    path: Path, schema: TableSchema, *, batch_rows: int | None = None, memory: str | None = None
) -> list[CheckResult]:
    """The results of :func:`check_table` on the table in ``path``, read ``batch_rows`` (``BATCH_ROWS``) rows at a
    time; DuckDB capped at ``memory`` (``DUCKDB_MEMORY``).

    Schema from the file's footer, unique key counted by DuckDB over the file, nulls and
    values outside the rules summed over batches: never the whole table in memory (the
    ``measurements`` of an NLST run hold millions of rows).
    """
    parquet = pq.ParquetFile(path)
    empty = parquet.schema_arrow.empty_table()
    names = set(empty.column_names)
    required = [c for c in schema.required if c in names]
    ranged = [c for c in schema.columns if c.name in names and c.checked]
    nulls = dict.fromkeys(required, 0)
    bad = {c.name: 0 for c in ranged}
    rules = {c.name: c for c in ranged}
    # a column at a time: a batch of every column decodes a page of each (a row group's worth at NLST size)
    for name in sorted(set(required) | set(bad)):
        for batch in parquet.iter_batches(batch_size=batch_rows or BATCH_ROWS, columns=[name]):
            values = pa.chunked_array([batch.column(0)])
            if name in nulls:
                nulls[name] += values.null_count
            if name in rules:
                bad[name] += _out_of_rule(values, rules[name], batch.num_rows)
    rows = parquet.metadata.num_rows
    results = [*check_schema(empty, schema), *_unique_key_of_file(path, empty, schema, rows, memory or DUCKDB_MEMORY)]
    results += [_required_result(schema, col, n) for col, n in nulls.items()]
    results += [_range_result(schema, col, bad[col.name]) for col in ranged]
    return results


def _unique_key_of_file(path: Path, empty: pa.Table, schema: TableSchema, rows: int, memory: str) -> list[CheckResult]:
    """``check_unique_key`` of the file's rows: its distinct keys counted by DuckDB (struct fields as "a.b")."""
    flat = empty.flatten() if any("." in k for k in schema.key) else empty
    if not schema.key or any(k not in flat.column_names for k in schema.key):
        return []
    columns = ", ".join(".".join(f'"{part}"' for part in k.split(".")) for k in schema.key)
    source = "'" + str(path).replace("'", "''") + "'"
    with duckdb_connection(memory) as con:
        con.execute("SET preserve_insertion_order=false")
        (n_unique,) = con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM read_parquet({source}))"
        ).fetchone()
    return [_unique_result(schema, rows - int(n_unique))]
