"""Table checks that follow from a schema declaration alone.

Schema conformance, unique keys, required columns and declared value rules (range,
allowed values, and finiteness of every floating-point column) are derived from :class:`deepcac2.schemas.base.TableSchema`, so a column added to a schema
is checked without touching QA.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from deepcac2.qa.result import CheckResult, Severity
from deepcac2.schemas.base import TableSchema

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
    dupes = table.num_rows - n_unique
    msg = f"{dupes} duplicate rows on key {schema.key}" if dupes else f"key {schema.key} is unique"
    return [CheckResult(f"table.{schema.name}.unique_key", schema.name, dupes == 0, B, msg, float(dupes))]


def check_required(table: pa.Table, schema: TableSchema) -> list[CheckResult]:
    out = []
    for col in schema.required:
        if col not in table.column_names:
            continue  # reported by check_schema
        nulls = table.column(col).null_count
        out.append(
            CheckResult(
                f"table.{schema.name}.required", f"{schema.name}.{col}", nulls == 0, B, f"{nulls} nulls", float(nulls)
            )
        )
    return out


def check_ranges(table: pa.Table, schema: TableSchema) -> list[CheckResult]:
    out = []
    for col in schema.columns:
        if col.name not in table.column_names or not col.checked:
            continue
        values = table.column(col.name)
        bad = pa.array([False] * table.num_rows, pa.bool_())  # typed: an empty table gives null otherwise
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
        n_bad = pc.sum(pc.cast(bad, pa.int64())).as_py() or 0
        rule = col.rule()
        out.append(
            CheckResult(
                f"table.{schema.name}.range",
                f"{schema.name}.{col.name}",
                n_bad == 0,
                B,
                f"{n_bad} values outside {rule}",
                float(n_bad),
            )
        )
    return out


def check_table(table: pa.Table, schema: TableSchema) -> list[CheckResult]:
    """Every schema-derived check on one table."""
    return [
        *check_schema(table, schema),
        *check_unique_key(table, schema),
        *check_required(table, schema),
        *check_ranges(table, schema),
    ]
