"""Read the IDC ``index`` table that idc-index-data ships offline (a Parquet file).

We query the Parquet with duckdb directly: ``fetch_index()`` tables download at run time
and fail offline, and ``IDCClient()`` does more at construction than we need.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from deepcac2.errors import DeepCACError, ErrorCode

#: index columns the cohort needs, all present in idc-index-data's ``index`` table
INDEX_COLUMNS: tuple[str, ...] = (
    "collection_id",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "crdc_series_uuid",
    "series_aws_url",
    "series_size_MB",
    "instanceCount",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "TransferSyntaxUID",
    "Manufacturer",
    "ManufacturerModelName",
)

_COLLECTION = re.compile(r"[a-z0-9_]+")


def default_index_path() -> Path:
    """The ``index`` Parquet file inside the installed idc-index-data package."""
    import idc_index_data

    path = idc_index_data.IDC_INDEX_PARQUET_FILEPATH
    if path is None or not Path(path).exists():
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, "idc-index-data has no offline index Parquet file")
    return Path(path)


def index_version() -> str:
    """The idc-index-data version, recorded with each cohort (it fixes the IDC release)."""
    import idc_index_data

    return str(idc_index_data.__version__)


def _path(collection: str, index_path: str | Path | None) -> Path:
    if not _COLLECTION.fullmatch(collection):
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"collection id {collection!r} is not a lower-case IDC id")
    path = Path(index_path) if index_path is not None else default_index_path()
    if not path.exists():
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"index file {path} does not exist")
    return path


def _query(path: Path, sql: str, params: list[object]) -> pa.Table:
    con = duckdb.connect()
    try:
        return con.execute(sql, [str(path), *params]).to_arrow_table()
    except duckdb.Error as exc:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"cannot read the index {path}: {exc}") from exc
    finally:
        con.close()


def load_collection(collection: str, index_path: str | Path | None = None, modality: str | None = None) -> pd.DataFrame:
    """The series of one collection (of one modality, when given) with the columns in ``INDEX_COLUMNS``."""
    path = _path(collection, index_path)
    cols = ", ".join(f'"{c}"' for c in INDEX_COLUMNS)
    where = "collection_id = ?" + (" AND Modality = ?" if modality is not None else "")
    params: list[object] = [collection] + ([modality] if modality is not None else [])
    df = _query(path, f"SELECT {cols} FROM read_parquet(?) WHERE {where}", params).to_pandas()
    if df.empty and modality is None:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"collection {collection!r} is not in the index {path}")
    return df


def collection_totals(collection: str, index_path: str | Path | None = None) -> tuple[int, int, int, int]:
    """(series, studies, patients, bytes) of a whole collection, every modality: where ``explain`` starts."""
    path = _path(collection, index_path)
    row = _query(
        path,
        "SELECT count(*), count(DISTINCT StudyInstanceUID), count(DISTINCT PatientID), "
        "coalesce(sum(round(coalesce(series_size_MB, 0) * 1e6)), 0) FROM read_parquet(?) WHERE collection_id = ?",
        [collection],
    ).to_pylist()[0]
    series, studies, patients, size = row.values()
    if not series:
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"collection {collection!r} is not in the index {path}")
    return int(series), int(studies), int(patients), int(size)
