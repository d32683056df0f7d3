"""Out-of-core bookkeeping for ``release build`` and ``release verify`` (issue 23).

An NLST release holds ~250k files. Held as Python objects (the manifest's entries, the list of
objects, sets of UIDs from the tables), they grew build and verify by ~10 KB per series: 1.6 and
1.2 GB at 129k series. They go instead into a DuckDB database in a temporary folder, with a small
memory limit (DuckDB spills to disk beyond it), and come back a batch at a time in the order the
outputs need. Files are listed by :func:`walk_files`, a walk that yields in sorted order without
holding the list.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import duckdb
import pyarrow as pa

#: DuckDB's limits here (it spills to the scratch folder beyond); rows moved per batch either way
MEMORY, THREADS, ROWS = "64MB", 1, 10_000


def walk_files(
    root: Path, *, by_component: bool = False, links: bool = False, skip: Iterable[str] = ()
) -> Iterator[str]:
    """Relative POSIX paths of the regular files under ``root``; linked folders are never followed, linked
    files are listed with ``links`` only; the top-level names in ``skip`` are left out unread.

    Yielded in ``sorted()`` order of the path strings, or with ``by_component`` in the order of sorted
    ``Path`` objects (part by part), one folder's names in memory at a time. A folder's name sorts as
    ``name/`` among its siblings: every path under it starts so, which gives the strings' order.
    """
    left_out = set(skip)

    def visit(folder: str, prefix: str) -> Iterator[str]:  # strings: pathlib would intern every name
        with os.scandir(folder) as found:
            entries = [
                (e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=links))
                for e in found
                if prefix or e.name not in left_out
            ]
        entries.sort(key=lambda e: e[0] if by_component or not e[1] else e[0] + "/")
        for name, is_dir, is_file in entries:
            if is_dir:
                yield from visit(os.path.join(folder, name), f"{prefix}{name}/")
            elif is_file:
                yield prefix + name

    if root.is_dir():
        yield from visit(str(root), "")


def sql_text(value: str | Path) -> str:
    """A string literal for DuckDB (paths inside ``read_parquet``)."""
    return "'" + str(value).replace("'", "''") + "'"


class Scratch:
    """A DuckDB database in a temporary folder; ``with Scratch() as db``. Tables are created with
    :meth:`create`, filled from row iterators with :meth:`append` and read with :meth:`rows`."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="deepcac2-release-")
        self.con = duckdb.connect(str(Path(self._dir.name) / "scratch.duckdb"))
        for setting in (
            f"memory_limit='{MEMORY}'",
            f"temp_directory={sql_text(Path(self._dir.name) / 'spill')}",
            f"threads={THREADS}",
            "preserve_insertion_order=false",
        ):
            self.con.execute(f"SET {setting}")
        self._columns: dict[str, list[str]] = {}

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *_: object) -> None:
        self.con.close()
        self._dir.cleanup()

    def create(self, table: str, **columns: str) -> None:
        """``create("t", path="VARCHAR", row="BIGINT")``: an empty table."""
        self._columns[table] = list(columns)
        self.con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})")

    def append(self, table: str, rows: Iterable[tuple[object, ...]]) -> int:
        """Insert ``rows`` (tuples in the table's column order), :data:`ROWS` at a time; returns how many."""
        names, it, n = self._columns[table], iter(rows), 0
        while batch := list(islice(it, ROWS)):
            arrow = pa.table({c: [r[i] for r in batch] for i, c in enumerate(names)})  # noqa: F841 (DuckDB reads it)
            self.con.execute(f"INSERT INTO {table} SELECT * FROM arrow")
            n += len(batch)
        self.con.execute("CHECKPOINT")  # into the database file: blocks DuckDB may drop from memory
        return n

    def execute(self, sql: str, params: list[object] | None = None) -> None:
        self.con.execute(sql, params or [])
        self.con.execute("CHECKPOINT")

    def rows(self, sql: str, params: list[object] | None = None) -> Iterator[tuple[object, ...]]:
        """The result of ``sql``, fetched :data:`ROWS` at a time (its own cursor: several may be open)."""
        cursor = self.con.cursor()
        cursor.execute(sql, params or [])
        while batch := cursor.fetchmany(ROWS):
            yield from batch
        cursor.close()

    def one(self, sql: str, params: list[object] | None = None) -> tuple[object, ...]:
        return self.con.execute(sql, params or []).fetchone() or ()
