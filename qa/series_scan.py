"""``cac_series`` read a batch at a time, in file order or sorted out of core: QA's row checks never hold the table.

An NLST ``cac_series`` (129k rows, 132 columns) weighed ~350 MiB in Arrow and more as the
column lists the checks read (issue 23). The checks keep their signatures (rows in, results
out) and run on one batch at a time, in the order they read the whole table in:

* file order: ``pyarrow.parquet.ParquetFile.iter_batches``, only the columns a check reads;
* sorted by series (or by study, then series): DuckDB's ``ORDER BY`` with the row's place in the
  file as the last key (the stable sort of the checks), capped at ``DUCKDB_MEMORY`` and spilling
  beyond; batches by study end on a study's last row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deepcac2.qa.row_views import TableRows
from deepcac2.qa.table_checks import duckdb_connection as connect_capped

#: rows per batch a check gets (QA's table checks read as many at once)
BATCH_ROWS = 8_192
#: rows per batch when every column is read (the sampled series' rows)
WIDE_BATCH_ROWS = 1_024
#: DuckDB's cap in QA (it spills to disk beyond): a few sorts and distinct counts, one at a time
DUCKDB_MEMORY = "32MB"
UID, STUDY = "SeriesInstanceUID", "StudyInstanceUID"


def duckdb_connection() -> AbstractContextManager[Any]:
    """A DuckDB connection capped at ``DUCKDB_MEMORY`` that spills to a temporary folder."""
    return connect_capped(DUCKDB_MEMORY)


def quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _file(path: Path) -> pq.ParquetFile:
    """The file, read a batch at a time (not a whole row group's columns buffered ahead)."""
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 16)


class SeriesTable:
    """The rows of a ``cac_series`` file (none when it is absent), a batch at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.exists = path.exists()
        self.names: tuple[str, ...] = tuple(pq.read_schema(path).names) if self.exists else ()
        self.num_rows = pq.ParquetFile(path).metadata.num_rows if self.exists else 0

    def __len__(self) -> int:
        return self.num_rows

    def present(self, columns: Sequence[str]) -> list[str]:
        return [c for c in dict.fromkeys(columns) if c in self.names]

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[TableRows]:
        """The rows in file order (only ``columns``, those the file has, when given)."""
        if not self.exists:
            return
        wanted = None if columns is None else self.present(columns)
        for batch in _file(self.path).iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            yield TableRows(pa.Table.from_batches([batch]))

    def column_values(self, name: str) -> Iterator[list]:
        for rows in self.batches([name]):
            yield rows.column(name) if rows.has(name) else [None] * len(rows)

    def sorted_batches(self, columns: Sequence[str], by: Sequence[str], where: str = "") -> Iterator[pa.Table]:
        """The rows (``columns`` the file has) sorted by ``by`` and then their place in the file."""
        if not self.exists or self.num_rows == 0:
            return
        select = ", ".join(ident(c) for c in self.present([*by, *columns]))
        order = ", ".join([*(ident(c) for c in by), "file_row_number"])
        sql = (
            f"SELECT {select} FROM read_parquet({quoted(self.path)}, file_row_number=true)"
            f"{f' WHERE {where}' if where else ''} ORDER BY {order}"
        )
        with duckdb_connection() as con:
            reader = con.execute(sql).to_arrow_reader(BATCH_ROWS)
            for batch in reader:
                if batch.num_rows:
                    yield pa.Table.from_batches([batch])

    def by_series(self, columns: Sequence[str]) -> Iterator[TableRows]:
        """The rows sorted by series UID (stable), a batch at a time."""
        for table in self.sorted_batches(columns, [UID]):
            yield TableRows(table)

    def by_study(self, columns: Sequence[str]) -> Iterator[TableRows]:
        """The rows with a study UID, sorted by study then series (stable), in batches of whole studies."""
        if STUDY not in self.names:
            return
        carry: pa.Table | None = None
        for table in self.sorted_batches(columns, [STUDY, UID], where=f"coalesce({ident(STUDY)}, '') <> ''"):
            if carry is not None:
                table = pa.concat_tables([carry, table])
            studies = table.column(STUDY)
            last = studies[-1]
            changes = np.flatnonzero(pc.not_equal(studies, last).to_numpy(zero_copy_only=False))
            cut = int(changes[-1]) + 1 if changes.size else 0
            carry = table.slice(cut)
            if cut:
                yield TableRows(table.slice(0, cut))
        if carry is not None and carry.num_rows:
            yield TableRows(carry)

    def rows_where_uid_in(self, uids: set[str], columns: Sequence[str] | None = None) -> TableRows:
        """The rows (file order) of the series in ``uids``: every column unless ``columns`` are given."""
        if not self.exists:
            return TableRows(pa.table({}))
        wanted = None if columns is None else self.present(columns)
        keep = pa.array(sorted(uids), pa.string())
        parts = []
        parquet = _file(self.path)
        read = wanted if wanted is None or UID in wanted else [*wanted, UID]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS if wanted else WIDE_BATCH_ROWS, columns=read):
            table = pa.Table.from_batches([batch])
            parts.append(table.filter(pc.is_in(table.column(UID), value_set=keep)))
        table = pa.concat_tables(parts) if parts else parquet.schema_arrow.empty_table()
        return TableRows(table.select(wanted) if wanted is not None else table)
