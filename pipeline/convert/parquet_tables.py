"""Rows to Parquet, the same bytes every time.

Determinism: rows are sorted by the table's key, columns follow the schema, no pandas
index or metadata (tables are built from Python lists), one fixed codec and level,
row groups of a fixed number of rows (``ROW_GROUP_ROWS``: a reader of 130k series or
4M measurements skips groups by their statistics and never holds one huge group), and
nothing that varies per run in the file metadata (pyarrow's ``created_by`` names only its
version; the schema metadata names table and version). Columns derived across rows
(``cac_series.is_primary``) are set here, so every writer of the table gets them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.schemas.base import TableSchema, key_value
from deepcac2.writable import write_atomic

COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3
#: rows per row group: ~64k rows is a few MB for the widest table, and thousands of groups never arise
ROW_GROUP_ROWS = 65_536


def _derived(table: TableSchema, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if table.name == "cac_series" and rows and "is_primary" in {c.name for c in table.columns}:
        from deepcac2.pipeline.convert.primary import mark_primary

        return mark_primary(rows)
    return rows


def _sort_key(table: TableSchema, row: dict[str, Any]) -> tuple:
    # None sorts first; mixed types inside one key column cannot happen (schema types)
    values = [key_value(row, k) for k in table.key]
    return tuple((v is not None, v if v is not None else 0) for v in values)


def to_arrow(table: TableSchema, rows: list[dict[str, Any]], *, derive: bool = True) -> pa.Table:
    """Validate rows against the schema and build the Arrow table in key order.

    ``derive=False`` leaves the columns derived across rows as given (a streaming writer
    sets them once it has seen every row: ``store_parts``).

    Unknown keys, missing required values, NaN in required floats, NaN or inf in any
    float column (``Column.finite``) and values of the wrong type are E_TABLE_WRITE
    errors, never silently dropped or coerced.
    """
    names = {c.name for c in table.columns}
    if derive:
        rows = _derived(table, rows)
    for i, row in enumerate(rows):
        extra = set(row) - names
        if extra:
            raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"{table.name} row {i}: unknown columns {sorted(extra)}")
        for c in table.columns:
            v = row.get(c.name)
            if c.required and (v is None or (isinstance(v, float) and math.isnan(v))):
                raise DeepCACError(
                    ErrorCode.E_TABLE_WRITE, f"{table.name} row {i}: required column {c.name!r} is empty"
                )
            if c.finite and isinstance(v, float) and not math.isfinite(v):
                raise DeepCACError(
                    ErrorCode.E_TABLE_WRITE, f"{table.name} row {i}: {c.name} = {v} (must be a finite number)"
                )
    ordered = sorted(rows, key=lambda r: _sort_key(table, r))
    keys = [tuple(key_value(r, k) for k in table.key) for r in ordered]
    if table.key and len(set(keys)) != len(keys):
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"{table.name}: duplicate key {table.key} in rows")
    try:
        columns = [pa.array([r.get(c.name) for r in ordered], type=c.type) for c in table.columns]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"{table.name}: a value does not fit its column: {exc}") from exc
    return pa.Table.from_arrays(columns, schema=table.arrow)


def parquet_options() -> dict[str, Any]:
    """The writer options of every final table (a streaming writer must use the same to give the same bytes)."""
    return {
        "compression": COMPRESSION,
        "compression_level": COMPRESSION_LEVEL,
        "use_dictionary": True,
        "write_statistics": True,
        "store_schema": True,
    }


def write_table(
    table: TableSchema, rows: list[dict[str, Any]], path: str | os.PathLike[str], *, row_group_rows: int = 0
) -> Path:
    """Write ``rows`` as one deterministic Parquet file (atomically); ``row_group_rows`` 0 = ``ROW_GROUP_ROWS``."""
    arrow = to_arrow(table, rows)
    group = row_group_rows or ROW_GROUP_ROWS

    def _write(tmp: str) -> None:
        pq.write_table(arrow, tmp, row_group_size=group, **parquet_options())

    try:
        return write_atomic(path, _write)
    except OSError as exc:
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"cannot write {table.name} to {path}: {exc}") from exc


def read_table(table: TableSchema, path: str | os.PathLike[str], *, unmarked_ok: bool = False) -> pa.Table:
    """Read a file written by ``write_table``; refuses files of another table or major version.

    ``unmarked_ok``: a file without the toolkit's marks (a table edited with pandas) is read
    too; the release reads such files and ``release verify`` reports their schema problems.
    """
    check_marks(table, path, unmarked_ok=unmarked_ok)
    return pq.read_table(path)


def check_marks(table: TableSchema, path: str | os.PathLike[str], *, unmarked_ok: bool = False) -> None:
    """:func:`read_table`'s refusal of a file of another table or major version, from the footer alone."""
    got = pq.read_schema(path).metadata or {}
    name = got.get(b"table", b"").decode()
    version = got.get(b"schema_version", b"").decode()
    if unmarked_ok and not name and not version:
        return
    if name != table.name or version.split(".")[0] != table.version.split(".")[0]:
        raise DeepCACError(
            ErrorCode.E_TABLE_SCHEMA,
            f"{path}: holds {name or '?'} v{version or '?'}, expected {table.name} v{table.version}",
        )
