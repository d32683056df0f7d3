"""``open_release``: a release's tables as DuckDB relations and pandas frames.

Each ``tables/<name>.parquet`` becomes a DuckDB view named ``<name>``, so plain SQL
works (``SELECT ... FROM cac_series``). When ``idc-index-data`` is installed, its
offline IDC ``index`` table is a view too, under the name IDC's own ``sql_query`` uses,
for joins on ``SeriesInstanceUID`` (scanner details, download URLs).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.release.run_tables import TABLES_DIR

IDC_INDEX_VIEW = "index"


def idc_index_parquet() -> Path | None:
    """The IDC ``index`` Parquet shipped by idc-index-data, None when not installed."""
    try:
        import idc_index_data
    except ImportError:
        return None
    path = Path(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)
    return path if path.exists() else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def table_files(path: Path) -> list[Path]:
    """A release's ``tables/*.parquet``, or the Parquet files of a flat folder (a Zenodo download)."""
    files = sorted((path / TABLES_DIR).glob("*.parquet")) or sorted(path.glob("*.parquet"))
    if not files:
        raise DeepCACError(
            ErrorCode.E_RELEASE_INPUT, f"{path} holds no Parquet tables (neither {TABLES_DIR}/*.parquet nor *.parquet)"
        )
    return files


class Release:
    """An opened release folder, or a flat folder of its Parquet files. ``tables`` lists its table names."""

    def __init__(self, path: str | Path, *, idc_index: bool = True) -> None:
        self.path = Path(path)
        files = table_files(self.path)
        self.con = duckdb.connect()
        self.tables = tuple(f.stem for f in files)
        for f in files:
            self.con.execute(f"CREATE VIEW {_quote(f.stem)} AS SELECT * FROM read_parquet({_literal(f)})")
        self.idc_index = idc_index_parquet() if idc_index else None
        if self.idc_index is not None:
            self.con.execute(
                f"CREATE VIEW {_quote(IDC_INDEX_VIEW)} AS SELECT * FROM read_parquet({_literal(self.idc_index)})"
            )

    def sql(self, query: str) -> duckdb.DuckDBPyRelation | None:
        """A lazy DuckDB relation; ``.df()``, ``.arrow()`` or ``.fetchall()`` run it.

        A statement without a result (``COPY``, ``CREATE``, ``SET``) runs at once and gives
        None. Nothing is sandboxed, on purpose: SQL may join the user's own files.
        """
        if not query.strip().strip(";").strip():
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, "the SQL is empty")
        try:
            return self.con.sql(query)
        except duckdb.Error as exc:
            raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"query failed: {exc}") from exc

    def table(self, name: str) -> duckdb.DuckDBPyRelation:
        if name not in self.tables:
            raise DeepCACError(
                ErrorCode.E_RELEASE_INPUT, f"no table {name!r}; this release has {', '.join(self.tables)}"
            )
        return self.con.table(name)

    def df(self, name: str) -> pd.DataFrame:
        return self.table(name).df()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Release:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Release({str(self.path)!r}, tables={list(self.tables)})"


def open_release(path: str | Path, *, idc_index: bool = True) -> Release:
    """Open a release folder (``tables/*.parquet``) or a flat folder of Parquet tables for querying."""
    return Release(path, idc_index=idc_index)
