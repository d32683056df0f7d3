"""The cohort table on disk: build it from a frame, write, read with validation, turn into SeriesRefs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort.nlst import NLST_FIELDS
from deepcac2.pipeline.stage_values import SeriesRef
from deepcac2.schemas.cohort import TABLE

#: nullable columns added after version 1.0.0 of the cohort schema; a file without them is still read
ADDED_LATER: tuple[str, ...] = ("source_fingerprint",)

#: deterministic row order
SORT_KEYS: tuple[str, ...] = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID")


def frame_to_table(df: pd.DataFrame, metadata: dict[str, str] | None = None) -> pa.Table:
    """Cast a frame with (at least) the cohort columns to the declared schema, rows sorted."""
    schema = TABLE.arrow
    df = df.sort_values(list(SORT_KEYS), kind="mergesort")
    columns = {}
    for field in schema:
        values = df[field.name] if field.name in df.columns else pd.Series([None] * len(df), dtype=object)
        values = values.astype(object).where(values.notna(), None)
        columns[field.name] = pa.array(values.tolist(), type=field.type)
    table = pa.table(columns, schema=schema)
    if metadata:
        merged = dict(schema.metadata or {})
        merged.update({k.encode(): str(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    _check_required(table, "built cohort")
    return table


def _check_required(table: pa.Table, where: str) -> None:
    for name in TABLE.required:
        if table.column(name).null_count:
            raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"{where}: required column {name} has null values")


def write_cohort(table: pa.Table, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _family(t: pa.DataType) -> str | None:
    """What a column holds, whatever the writer's encoding: text, integer, float, or a list of one."""
    if pa.types.is_dictionary(t):
        return _family(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"list of {_family(t.value_type)}"
    return None


def _as_declared(column: pa.ChunkedArray, declared: pa.DataType) -> pa.ChunkedArray | None:
    """``column`` cast to the declared type when only its encoding differs, else None.

    pandas and DuckDB write text as ``large_string`` or dictionary-encoded, integers as int64 (or
    float64 once a null appears), lists as ``large_list`` and a column of nulls as ``null``: the same values. A safe cast keeps
    every value or fails (an overflow, a fraction where an integer belongs), and a struct or a
    different kind of value (text for a number) is refused as before.
    """
    if pa.types.is_null(column.type):  # a column with no value at all (pandas writes it as null)
        return pa.chunked_array([pa.nulls(len(column), declared)])
    got, want = _family(column.type), _family(declared)
    if got is None or want is None:
        return None
    lists = got.startswith("list") and want.startswith("list")  # their items are checked by the cast
    if not (got == want or {got, want} <= {"integer", "float"} or lists):
        return None
    try:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        return column.cast(declared, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def exclusions_path(cohort_path: str | Path) -> Path:
    """Where the ``exclusions`` table of a cohort file lives: beside it, ``<stem>.exclusions.parquet``."""
    path = Path(cohort_path)
    return path.with_name(f"{path.stem}.exclusions.parquet")


def write_exclusions(table: pa.Table, cohort_path: str | Path) -> Path:
    """Write the cohort's ``exclusions`` table beside the cohort file."""
    out = exclusions_path(cohort_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return out


def read_cohort(path: str | Path) -> pa.Table:
    """Read a cohort Parquet file and check it against ``schemas.cohort.TABLE``."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"cannot read cohort {path}: {exc}") from exc
    return _conform(table, path)


def read_cohort_batches(path: str | Path, rows: int | None = None) -> Iterator[pa.Table]:
    """The cohort file ``rows`` rows at a time, each batch checked as ``read_cohort`` checks the whole."""
    path = Path(path)
    try:
        parquet = pq.ParquetFile(path)
        any_rows = False
        for batch in parquet.iter_batches(batch_size=rows or REF_BATCH_ROWS):
            any_rows = True
            yield _conform(pa.Table.from_batches([batch]), path)
        if not any_rows:  # no rows: its columns are still checked
            _conform(parquet.schema_arrow.empty_table(), path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"cannot read cohort {path}: {exc}") from exc


def _conform(table: pa.Table, path: Path) -> pa.Table:
    """``table`` (read from ``path``) in the declared columns and types; E_COHORT_INVALID when it cannot be."""
    expected = TABLE.arrow
    missing = [f.name for f in expected if f.name not in table.schema.names]
    if set(missing) - set(ADDED_LATER):
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"cohort {path} lacks columns {missing}")
    for name in missing:  # an older file lacks the columns added since: they read as null
        table = table.append_column(expected.field(name), pa.nulls(table.num_rows, expected.field(name).type))
    wrong = []
    for f in expected:
        got = table.schema.field(f.name).type
        if got.equals(f.type):
            continue
        cast = _as_declared(table.column(f.name), f.type)
        if cast is None:
            wrong.append(f"{f.name}: {got} (expected {f.type})")
        else:
            table = table.set_column(table.schema.get_field_index(f.name), f, cast)
    if wrong:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"cohort {path} has wrong column types: {'; '.join(wrong)}")
    _check_required(table, f"cohort {path}")
    return table.select(expected.names)


#: cohort rows turned into dicts at once (an NLST cohort's 129k rows of 29 columns as dicts weigh ~0.4 GB)
REF_BATCH_ROWS = 10_000


def cohort_to_refs(table: pa.Table) -> list[SeriesRef]:
    """One SeriesRef per row, in table order. ``location`` is the local folder or the S3 URL."""
    params = [name for name, _ in NLST_FIELDS] + ["SeriesDescription", "TransferSyntaxUID", "Modality"]
    params.append("source_fingerprint")  # checked before a local series is loaded
    refs = []
    for row in (row for batch in table.to_batches(REF_BATCH_ROWS) for row in batch.to_pylist()):
        refs.append(
            SeriesRef(
                series_uid=row["SeriesInstanceUID"],
                study_uid=row["StudyInstanceUID"],
                patient_id=row["PatientID"],
                collection_id=row["collection_id"],
                location=row["location"] or row["series_aws_url"],
                crdc_series_uuid=row["crdc_series_uuid"],
                instance_count=row["instanceCount"],
                size_bytes=row["series_size_bytes"],
                params={
                    **{k: row[k] for k in params if row.get(k) is not None},
                    # the anatomy stage's candidate TotalSegmentator SEGs, in the order to try them
                    **({"totalseg": row["totalseg_candidate_series"]} if row.get("totalseg_candidate_series") else {}),
                },
            )
        )
    return refs
