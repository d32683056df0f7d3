"""Final tables assembled out of core: fragments -> columnar parts -> one sorted Parquet file.

Holding every row of every table as Python dicts does not fit an NLST run (129k series,
millions of lesion and measurement rows). Instead:

1. the committed fragments are read one at a time and their rows validated and written,
   a batch of about ``PART_ROWS`` rows at a time, as Parquet *parts* under
   ``tables/.parts/<table>/`` (the converter's own ``to_arrow``: same checks, same types);
2. a table bigger than ``RANGE_BYTES`` is cut into ranges of its first key column (``key_bounds``)
   and its parts' rows are split into one file per range (``split_ranges``), so that memory
   stays flat however many series the run has (one global sort of the 132-column ``cac_series``
   of 129k series needed more than 256 MB);
3. DuckDB sorts each range by the table's key (``COPY ... ORDER BY key NULLS FIRST``, spilling to
   disk past ``DUCKDB_MEMORY``), the ranges in key order, and the sorted rows are written in row
   groups of exactly ``ROW_GROUP_ROWS`` (across range boundaries) with the writer options of
   ``write_table``.

The bytes equal those ``write_table`` gives for the same rows in memory: every registered
table has a key, a duplicate key is refused (so the key alone fixes the order), Python and
DuckDB order strings the same way (by code point = by UTF-8 byte) and put None first, and
the row groups and writer options are the same. Ranges do not change the order: every
key of a range sorts before every key of the next (their first keys do), and rows with one
first key share a range. Columns derived across rows
(``cac_series.is_primary``) are set on the sorted stream, from a pass that keeps only one
small tuple per screening round.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.schemas.base import TableSchema

#: rows buffered (over all tables) before they are written as parts: a few hundred MB of dicts at most
PART_ROWS = 20_000
#: DuckDB's memory for one range's sort; beyond it the sort spills to ``tables/.parts/spill``
DUCKDB_MEMORY = "256MB"
#: rows sorted at once, in Parquet's uncompressed bytes: a range of the first key of about this size
RANGE_BYTES = 16 * 2**20
DUCKDB_THREADS = 1
#: row groups of the sorted scratch file: small, so its writer buffers little
SORTED_GROUP_ROWS = 4_096
#: columns set once every row is seen, per table
DERIVED = {"cac_series": "is_primary"}


class PartWriter:
    """Validate rows of registered tables and write them as unsorted Parquet parts."""

    def __init__(self, parts_dir: Path, schemas: dict[str, TableSchema]) -> None:
        from deepcac2.pipeline.convert.primary import PrimaryChooser

        self.dir = parts_dir
        self.schemas = schemas
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.n_pending = 0
        self.files: dict[str, list[Path]] = {}
        self.primary = PrimaryChooser()

    def add(self, table: str, rows: list[dict[str, Any]]) -> None:
        derived = DERIVED.get(table)
        if derived:  # a placeholder, so the required-column check passes; the real value is set when sorted
            for row in rows:
                self.primary.add(row)
            rows = [{**row, derived: False} for row in rows]
        self.pending.setdefault(table, []).extend(rows)
        self.n_pending += len(rows)
        if self.n_pending >= PART_ROWS:
            self.flush()

    def flush(self) -> None:
        from deepcac2.pipeline.convert.parquet_tables import to_arrow

        for table, rows in sorted(self.pending.items()):
            if not rows:
                continue
            arrow = to_arrow(self.schemas[table], rows, derive=False)
            files = self.files.setdefault(table, [])
            path = self.dir / table / f"{len(files):06d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(arrow, path, compression="zstd", compression_level=1)
            files.append(path)
        self.pending = {}
        self.n_pending = 0


def _literal(path: Path) -> str:
    """A path as a DuckDB string literal (an --out may hold a quote)."""
    return "'" + str(path).replace("'", "''") + "'"


def _column_ref(key: str) -> str:
    """``"a.b"`` (field b of struct a) as a quoted DuckDB expression."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in key.split("."))


def _connect(spill: Path) -> Any:
    import duckdb

    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET memory_limit='{DUCKDB_MEMORY}'")
    con.execute(f"SET temp_directory={_literal(spill)}")
    con.execute(f"SET threads={DUCKDB_THREADS}")
    con.execute("SET preserve_insertion_order=false")
    return con


def _source(files: list[Path]) -> str:
    return "read_parquet([" + ", ".join(_literal(p) for p in files) + "])"


def key_bounds(con: Any, schema: TableSchema, files: list[Path]) -> list[Any]:
    """Inclusive upper bounds of ranges of the first key column holding about ``RANGE_BYTES`` of rows each.

    Parquet's uncompressed size gives the bytes per row; the first key's values are counted
    by DuckDB (one small row per distinct value, streamed). A range ends only between two
    values, so rows with one first key (hence every possible duplicate) share a range.
    """
    metas = [pq.ParquetFile(p).metadata for p in files]
    rows = sum(m.num_rows for m in metas)
    size = sum(m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups))
    per_range = max(1, int(RANGE_BYTES * rows / max(size, 1)))
    if rows <= per_range:
        return []
    first = _column_ref(schema.key[0])
    reader = con.execute(
        f"SELECT {first}, count(*) FROM {_source(files)} GROUP BY ALL ORDER BY 1 ASC NULLS FIRST"
    ).to_arrow_reader(65_536)
    bounds, held = [], 0
    for batch in reader:
        for value, n in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            held += n
            if held >= per_range and value is not None:  # NULLs sort first: they stay in the first range
                bounds.append(value)
                held = 0
    return bounds


def _first_key(table: pa.Table, key: str) -> pa.ChunkedArray:
    column = table.column(key.split(".")[0])
    for field in key.split(".")[1:]:
        column = pc.struct_field(column, field)
    return column


def split_ranges(schema: TableSchema, files: list[Path], bounds: list[Any], folder: Path) -> list[list[Path]]:
    """The parts' rows, one part read at a time, split by key range (range i: bounds[i-1] < key <= bounds[i]).

    Returns the files of each range that has rows, in range order: one file per part and
    range, each closed at once. (A writer per range held open across the parts kept the
    footer entry of every row group it wrote, ~1 KB per column chunk: O(parts x ranges),
    ~0.3 GB for the ``measurements`` of 129k series.)
    """
    out: dict[int, list[Path]] = {}
    for n, file in enumerate(files):
        table = pq.read_table(file)
        key = _first_key(table, schema.key[0])
        index = np.zeros(table.num_rows, dtype=np.int32)
        for bound in bounds:  # Arrow compares strings by UTF-8 byte, as DuckDB and Python do
            above = pc.fill_null(pc.greater(key, pa.scalar(bound, key.type)), False)
            index += above.to_numpy(zero_copy_only=False)
        for i in np.unique(index).tolist():
            path = folder / f"{i:06d}" / f"{n:06d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.filter(pa.array(index == i)), path, compression="zstd", compression_level=1)
            out.setdefault(i, []).append(path)
        del table, key
        pa.default_memory_pool().release_unused()
    return [out[i] for i in sorted(out)]


def _sort_range(con: Any, schema: TableSchema, files: list[Path], scratch: Path) -> None:
    """Refuse a duplicate key among ``files``, then sort their rows into ``scratch``."""
    source = _source(files)
    keys = ", ".join(_column_ref(k) for k in schema.key)
    dup = con.execute(f"SELECT {keys}, count(*) FROM {source} GROUP BY ALL HAVING count(*) > 1 LIMIT 1").fetchone()
    if dup is not None:
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"{schema.name}: duplicate key {schema.key} in rows ({dup[:-1]})")
    order = ", ".join(f"{_column_ref(k)} ASC NULLS FIRST" for k in schema.key)
    con.execute(
        f"COPY (SELECT * FROM {source} ORDER BY {order}) TO {_literal(scratch)} "
        f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {SORTED_GROUP_ROWS})"
    )


@contextmanager
def _duckdb(schema: TableSchema, spill: Path) -> Iterator[Any]:
    """A fresh DuckDB database; its errors (out of memory, a full spill folder) become coded failures."""
    import duckdb

    con = None
    try:
        con = _connect(spill)
        yield con
    except duckdb.Error as exc:
        raise _sort_failed(schema, spill, exc) from exc
    finally:
        if con is not None:
            con.close()


def _sorted_batches(schema: TableSchema, files: list[Path], spill: Path) -> Iterator[pa.RecordBatch]:
    """The rows of ``files`` in key order, one range of the first key at a time (module doc).

    DuckDB sorts each range into a scratch file (its ``COPY`` spills to disk past
    ``DUCKDB_MEMORY``; a streamed ORDER BY result may not), read back a row group at a time.
    Each range gets a database of its own: DuckDB keeps the memory it took until it is closed.
    """
    scratch = spill / f"{schema.name}.sorted.parquet"
    with _duckdb(schema, spill) as con:
        bounds = key_bounds(con, schema, files)
    ranges = split_ranges(schema, files, bounds, spill / f"{schema.name}.ranges") if bounds else [files]
    try:
        for group in ranges:
            with _duckdb(schema, spill) as con:
                _sort_range(con, schema, group, scratch)
            if bounds:
                for file in group:
                    file.unlink()
            yield from pq.ParquetFile(scratch).iter_batches(batch_size=65_536)
            scratch.unlink()
            pa.default_memory_pool().release_unused()  # mimalloc keeps freed pages; without this RSS climbs
    finally:
        scratch.unlink(missing_ok=True)


def _sort_failed(schema: TableSchema, spill: Path, exc: Exception) -> DeepCACError:
    """Out of memory, a full or unwritable spill folder: a coded failure."""
    return DeepCACError(
        ErrorCode.E_TABLE_WRITE,
        f"{schema.name}: sorting its parts failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
        f"the committed series are kept: free memory or disk under {spill} and assemble again (--resume)",
    )


def write_sorted(schema: TableSchema, files: list[Path], path: Path, spill: Path, primary: set[str]) -> Path:
    """One final table out of its parts, with the bytes ``write_table`` gives (see the module doc)."""
    from deepcac2.pipeline.convert.parquet_tables import ROW_GROUP_ROWS, parquet_options
    from deepcac2.writable import write_atomic

    derived = DERIVED.get(schema.name)
    chosen = pa.array(sorted(primary), type=pa.string())

    def fix(batch: pa.RecordBatch) -> pa.Table:
        table = pa.Table.from_batches([batch]).cast(schema.arrow)
        if derived:
            flags = pc.is_in(pc.cast(table.column("SeriesInstanceUID"), pa.string()), value_set=chosen)
            table = table.set_column(table.schema.get_field_index(derived), schema.arrow.field(derived), flags)
        return table

    def _write(tmp: str) -> None:
        with pq.ParquetWriter(tmp, schema.arrow, **parquet_options()) as writer:
            held: list[pa.Table] = []
            n_held = 0
            for batch in _sorted_batches(schema, files, spill):
                held.append(fix(batch))
                n_held += batch.num_rows
                while n_held >= ROW_GROUP_ROWS:  # exactly the row groups of write_table
                    whole = pa.concat_tables(held)
                    writer.write_table(whole.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                    held, n_held = [whole.slice(ROW_GROUP_ROWS)], n_held - ROW_GROUP_ROWS
            if n_held:
                writer.write_table(pa.concat_tables(held), row_group_size=ROW_GROUP_ROWS)

    try:
        return write_atomic(path, _write)
    except OSError as exc:
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"cannot write {schema.name} to {path}: {exc}") from exc


def assemble_parts(
    fragments: Iterable[tuple[str, dict[str, list[dict[str, Any]]]]],
    tables_dir: Path,
    tables: Iterable[str],
) -> tuple[dict[str, Path], dict[str, list[dict[str, Any]]]]:
    """Write every registered table of the fragments' rows; return them and the rows of unregistered ones.

    ``fragments`` yields (series uid, rows by table) one at a time. ``tables`` are written
    even without rows. Unregistered tables (test stand-ins) come back as rows, for the caller.
    """
    from deepcac2.pipeline.convert.parquet_tables import write_table
    from deepcac2.schemas.registry import TABLES

    parts_dir = tables_dir / ".parts"
    shutil.rmtree(parts_dir, ignore_errors=True)  # of an assembly that was interrupted
    writer = PartWriter(parts_dir, TABLES)
    others: dict[str, list[dict[str, Any]]] = {t: [] for t in tables if t not in TABLES}
    names = {t for t in tables if t in TABLES}
    try:
        for _, rows in fragments:
            for table, table_rows in rows.items():
                if table in TABLES:
                    names.add(table)
                    writer.add(table, table_rows)
                else:
                    others.setdefault(table, []).extend(table_rows)
        writer.flush()
        written: dict[str, Path] = {}
        primary = writer.primary.chosen()
        for table in sorted(names):
            path = tables_dir / f"{table}.parquet"
            files = writer.files.get(table)
            if files:
                written[table] = write_sorted(TABLES[table], files, path, parts_dir / "spill", primary)
            else:
                written[table] = write_table(TABLES[table], [], path)
        return written, others
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
