"""``deepcac2 query "SQL" [--release DIR]``: run SQL against a release's tables.

CSV and JSON round-trip: lists and structs are JSON (``["a","b"]``, not Python reprs),
timestamps are ISO 8601 with their offset (``2024-05-01T12:00:00+00:00``), and an output
file must end in .parquet, .csv or .json (anything else is refused, not written as CSV).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json"}


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sql", help='SQL over the release tables, e.g. "SELECT count(*) FROM cac_series"')
    parser.add_argument(
        "--release",
        type=Path,
        default=Path(os.environ.get("DEEPCAC2_RELEASE", ".")),
        help="release folder (default: $DEEPCAC2_RELEASE, else the current folder)",
    )
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    parser.add_argument("--out", type=Path, help="write the result to this file (.parquet, .csv or .json)")


def _plain(value: Any) -> Any:
    """A value JSON can hold: times as ISO 8601 with their offset, decimals as numbers."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def json_text(table: Any) -> str:
    """Records of an Arrow table as JSON (nested values stay nested)."""
    return json.dumps([_plain(r) for r in table.to_pylist()], indent=1, ensure_ascii=False) + "\n"


def csv_text(table: Any) -> str:
    """An Arrow table as CSV: nested values as JSON, times as ISO 8601 with their offset."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        cells = []
        for value in row.values():
            value = _plain(value)
            cells.append(json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value)
        writer.writerow(cells)
    return buf.getvalue()


def output_format(path: Path) -> str:
    from deepcac2.errors import DeepCACError, ErrorCode

    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DeepCACError(
            ErrorCode.E_QUERY_OUTPUT, f"--out {path}: unknown suffix {path.suffix!r}; use {', '.join(FORMATS)}"
        )
    return fmt


def main(args: argparse.Namespace) -> int:
    """Run the SQL; print or write its rows.

    The SQL is DuckDB's, unrestricted on purpose: it may read the user's own files
    (``read_csv('mine.csv')`` joined with ``cac_series``) and write results with ``COPY``.
    A statement that returns no rows (``COPY``, ``CREATE``, ``SET``) is reported as done.
    """
    import duckdb
    import pyarrow.parquet as pq

    from deepcac2.errors import DeepCACError, ErrorCode
    from deepcac2.release.query import open_release
    from deepcac2.writable import output_error, writable_file

    if not args.sql.strip().strip(";").strip():
        raise DeepCACError(
            ErrorCode.E_RELEASE_INPUT, 'the SQL is empty: give a statement, e.g. "SELECT * FROM cac_series"'
        )
    fmt = output_format(args.out) if args.out else args.format
    if args.out:
        writable_file(args.out, "the query result (--out)")
    with open_release(args.release) as rel:
        try:
            relation = rel.sql(args.sql)
            table = relation.arrow() if relation is not None else None
        except duckdb.Error as exc:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"query failed: {exc}") from exc
    if table is None:
        print("statement executed; it returns no rows", file=sys.stderr)
        if args.out:
            raise DeepCACError(
                ErrorCode.E_RELEASE_INPUT, f"the statement returns no rows: nothing to write to {args.out}"
            )
        return 0
    if hasattr(table, "read_all"):  # DuckDB may hand over a record batch reader
        table = table.read_all()
    if args.out:
        try:
            if fmt == "parquet":
                pq.write_table(table, args.out)
            else:
                args.out.write_text(json_text(table) if fmt == "json" else csv_text(table), encoding="utf-8")
        except OSError as exc:
            raise output_error(exc, f"the query result {args.out}") from exc
        print(f"{table.num_rows} rows written to {args.out}")
    elif fmt == "csv":
        sys.stdout.write(csv_text(table))
    elif fmt == "json":
        sys.stdout.write(json_text(table))
    else:
        print(table.to_pandas().to_string(index=False))
    return 0
