"""A table's rows as read-only mappings over its columns: what QA's row checks read, without a dict per row.

QA's checks take rows (``row["SeriesInstanceUID"]``, ``row.get("agatston_deepcac")``). As
Python dicts, NLST's 129k ``cac_series`` rows of 100+ columns weigh gigabytes. Here the
table stays in Arrow, a column becomes a Python list the first time a row is asked for it
(the checks read a few dozen of the columns), and a row is a small view (table, index)
made as it is iterated. A row reads, compares and iterates as the dict ``to_pylist`` gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import pyarrow as pa
import pyarrow.parquet as pq


class TableRows(Sequence["Row"]):
    """The rows of ``table``, in order."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self.names: tuple[str, ...] = tuple(table.column_names)
        self._known = frozenset(self.names)
        self._columns: dict[str, list[Any]] = {}

    @classmethod
    def read(cls, path: Path, columns: Sequence[str] | None = None, *, missing_ok: bool = True) -> TableRows:
        """The rows of a Parquet file (only ``columns``, those of them it has, when given); none when it is absent."""
        if missing_ok and not path.exists():
            return cls(pa.table({}))
        if columns is not None:
            present = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in present]
        return cls(pq.read_table(path, columns=columns))

    def column(self, name: str) -> list[Any]:
        values = self._columns.get(name)
        if values is None:
            values = self._columns[name] = self._table.column(name).to_pylist()
        return values

    def has(self, name: str) -> bool:
        return name in self._known

    def __len__(self) -> int:
        return self._table.num_rows

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [Row(self, i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return Row(self, index)

    def __iter__(self) -> Iterator[Row]:
        for i in range(len(self)):
            yield Row(self, i)


class Row(Mapping[str, Any]):
    """One row: its columns' values, read from the table's column lists."""

    __slots__ = ("_rows", "_i")

    def __init__(self, rows: TableRows, i: int) -> None:
        self._rows = rows
        self._i = i

    def __getitem__(self, name: str) -> Any:
        if not self._rows.has(name):
            raise KeyError(name)
        return self._rows.column(name)[self._i]

    def get(self, name: str, default: Any = None) -> Any:
        return self._rows.column(name)[self._i] if self._rows.has(name) else default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._rows.has(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows.names)

    def __len__(self) -> int:
        return len(self._rows.names)

    def __repr__(self) -> str:
        return repr(dict(self))
