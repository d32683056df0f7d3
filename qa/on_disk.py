"""QA's folder-wide checks with their per-series state on disk: the walk, unreferenced objects, coverage, the samples.

At NLST size a run folder holds ~250k objects and ``cac_series`` ~129k rows. Held in
memory, the walk's records (a path and SOPInstanceUID per object, every SEG/SR path by
series) and the sets of UIDs the coverage and reference checks compare cost ~1 KB per series
(issue 23). Here the walk keeps the SEG and SR paths of the sampled series only, writes the
rest (an object's SOPInstanceUID, the series and kind it is filed under) to Parquet files, and
DuckDB compares them with ``cac_series`` and the cohort out of core. Results are those of
``integrity.check_unreferenced``, ``dicom_checks.check_files`` and ``series_checks.check_coverage``,
in their order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from deepcac2.qa.dicom_checks import UNREADABLE, RunObjects, add_object, filed_as
from deepcac2.qa.result import CheckResult, Severity
from deepcac2.qa.series_checks import coverage_results
from deepcac2.qa.series_scan import UID, SeriesTable, duckdb_connection, ident, quoted
from deepcac2.qa.sink import ResultSink
from deepcac2.qa.walk import object_input, table_inputs, walk_files

SPILL_ROWS = 8_192


class RowSpill:
    """Rows appended to a Parquet file ``SPILL_ROWS`` at a time."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self._schema = path, schema
        self._writer = pq.ParquetWriter(path, schema)
        self._rows: list[tuple] = []
        self.count = 0

    def add(self, *values: object) -> None:
        self._rows.append(values)
        self.count += 1
        if len(self._rows) >= SPILL_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            columns = list(zip(*self._rows, strict=True))
            self._writer.write_table(pa.table(dict(zip(self._schema.names, columns, strict=True)), schema=self._schema))
            self._rows = []

    def close(self) -> Path:
        self._flush()
        self._writer.close()
        return self.path


SOP_SCHEMA = pa.schema([("seq", pa.int64()), ("rel", pa.string()), ("uid", pa.string())])
FILED_SCHEMA = pa.schema([("source", pa.string()), ("kind", pa.string())])


@dataclass
class WalkedOnDisk:
    #: the SEG and SR of the kept series; every unreadable file; every series with more than one of a kind
    objects: RunObjects
    #: every run object's (walk order, path relative to the folder, SOPInstanceUID) (``Walked.sop_uids``)
    sop_uids: Path
    n_objects: int


def walk_to_disk(root: Path, keep: set[str], sink: ResultSink, folder: Path) -> WalkedOnDisk:
    """``qa.walk.walk`` with its input bindings put in ``sink`` (not listed in the report) as they are read."""
    sink.add(table_inputs(root), listed=False)
    objects = RunObjects(root)
    sops = RowSpill(folder / "sop_uids.parquet", SOP_SCHEMA)
    filed = RowSpill(folder / "filed.parquet", FILED_SCHEMA)
    for found in walk_files(root):
        if found.is_dcm:
            key = filed_as(found.ds)
            if key is not None and key != UNREADABLE:
                filed.add(*key)
            if key == UNREADABLE or (key is not None and key[0] in keep):
                add_object(objects, found.path, found.ds)
        if found.is_object:
            sops.add(sops.count, found.rel, found.sop_uid)
            if found.sha256 is not None:
                sink.add((object_input(found),), listed=False)
    with duckdb_connection() as con:
        rows = con.execute(
            f"SELECT DISTINCT source FROM (SELECT source FROM read_parquet({quoted(filed.close())})"
            " GROUP BY source, kind HAVING count(*) > 1) ORDER BY source"
        ).fetchall()
    objects.duplicates = [source for (source,) in rows]
    return WalkedOnDisk(objects, sops.close(), sops.count)


def check_unreferenced(series: SeriesTable, walked: WalkedOnDisk) -> Iterator[CheckResult]:
    """``integrity.check_unreferenced``: every object named by a ``*_sop_instance_uid`` of ``cac_series``."""
    columns = [c for c in series.names if c.endswith("_sop_instance_uid")]
    source = f"read_parquet({quoted(series.path)})" if series.exists else ""
    named = " UNION ALL ".join(
        f"SELECT CAST({ident(c)} AS VARCHAR) AS u FROM {source} WHERE coalesce(CAST({ident(c)} AS VARCHAR), '') <> ''"
        for c in columns
    )
    unnamed = f" WHERE NOT EXISTS (SELECT 1 FROM ({named}) n WHERE n.u = w.uid)" if named else ""
    stray = 0
    with duckdb_connection() as con:
        reader = con.execute(
            f"SELECT rel FROM read_parquet({quoted(walked.sop_uids)}) w{unnamed} ORDER BY seq"
        ).to_arrow_reader(SPILL_ROWS)
        for batch in reader:
            for rel in batch.column(0).to_pylist():
                stray += 1
                yield CheckResult(
                    "dicom.unreferenced",
                    rel,
                    False,
                    Severity.BLOCKING,
                    "a DICOM object no cac_series row names (stale or stray)",
                )
    yield CheckResult(
        "dicom.all_referenced", "dicom", not stray, Severity.BLOCKING,
        f"{stray} of {walked.n_objects} DICOM objects unreferenced", float(stray),
    )  # fmt: skip


def check_coverage(cohort: Path, series: SeriesTable, failed: list[str]) -> list[CheckResult]:
    """``series_checks.check_coverage`` of the cohort file, ``cac_series`` and the failed series, counted by DuckDB."""
    done = f"SELECT {ident(UID)} AS u FROM read_parquet({quoted(series.path)})" if series.exists else (
        "SELECT NULL::VARCHAR AS u WHERE false"
    )  # fmt: skip
    with duckdb_connection() as con:
        con.register("failed_uids", pa.table({"u": pa.array(failed, pa.string())}))
        con.execute(f"CREATE TEMP VIEW done AS {done}")
        con.execute(f"CREATE TEMP VIEW cohort AS SELECT {ident(UID)} AS u FROM read_parquet({quoted(cohort)})")
        con.execute("CREATE TEMP VIEW failed AS SELECT u FROM failed_uids")
        missing, first = con.execute(
            "SELECT count(*), min(u) FROM (SELECT u FROM cohort EXCEPT SELECT u FROM done EXCEPT SELECT u FROM failed)"
        ).fetchone()
        (both,) = con.execute("SELECT count(*) FROM (SELECT u FROM done INTERSECT SELECT u FROM failed)").fetchone()
        (extra,) = con.execute(
            "SELECT count(*) FROM ((SELECT u FROM done UNION SELECT u FROM failed) EXCEPT SELECT u FROM cohort)"
        ).fetchone()
        (repeated,) = con.execute(
            "SELECT (SELECT count(*) FROM done) - (SELECT count(*) FROM (SELECT DISTINCT u FROM done))"
        ).fetchone()
    return coverage_results(int(missing), first, int(both), int(extra), int(repeated))


def sample_uids(series: SeriesTable, n: int, seed: int) -> list[str]:
    """``review.sample_series`` of the table's series UIDs, drawn from their count and read back in order."""
    if not series.exists or UID not in series.names:
        return []
    source = f"read_parquet({quoted(series.path)})"
    with duckdb_connection() as con:
        (count,) = con.execute(f"SELECT count(DISTINCT {ident(UID)}) FROM {source}").fetchone()
        if not count:
            return []
        picked = set(np.random.default_rng(seed).choice(count, size=min(n, count), replace=False).tolist())
        chosen, i = [], 0
        reader = con.execute(
            f"SELECT DISTINCT {ident(UID)} AS u FROM {source} WHERE u IS NOT NULL ORDER BY u"
        ).to_arrow_reader(SPILL_ROWS)
        for batch in reader:
            for uid in batch.column(0).to_pylist():
                if i in picked:
                    chosen.append(uid)
                i += 1
    return sorted(chosen)


def locations_of(cohort: Path, uids: set[str]) -> dict[str, str]:
    """The cohort's ``location`` of each series in ``uids`` that has one (the last row's, as a dict of all rows)."""
    names = pq.read_schema(cohort).names
    columns = [UID, *(["location"] if "location" in names else [])]
    out: dict[str, str] = {}
    for batch in pq.ParquetFile(cohort).iter_batches(batch_size=SPILL_ROWS, columns=columns):
        locations = batch.column(1).to_pylist() if len(columns) > 1 else [None] * batch.num_rows
        for uid, location in zip(batch.column(0).to_pylist(), locations, strict=True):
            if location and uid in uids:
                out[uid] = location
    return out


PICTURE_SCHEMA = pa.schema([("seq", pa.int64()), ("uid", pa.string()), ("path", pa.string())])


def pictures_in_order(
    run_dir: Path, series: SeriesTable, images_dir: Path, folder: Path
) -> Iterator[tuple[str, str | None]]:
    """(series UID, its review picture or None) for every row of ``cac_series``, sorted by UID (repeats too).

    A picture is a file ``REVIEW_PICTURE`` in a folder named by its series (the last found of a name,
    as a dict of them); the pictures found go to disk, joined with the table by DuckDB.
    """
    from deepcac2.pipeline.process import REVIEW_PICTURE

    found = RowSpill(folder / "pictures.parquet", PICTURE_SCHEMA)
    for p in run_dir.rglob(REVIEW_PICTURE):
        if images_dir not in p.parents:
            found.add(found.count, p.parent.name, str(p))
    found.close()
    if not series.exists or UID not in series.names:
        return
    sql = (
        f"SELECT s.u, p.path FROM (SELECT {ident(UID)} AS u, file_row_number AS r"
        f" FROM read_parquet({quoted(series.path)}, file_row_number=true)) s"
        f" LEFT JOIN (SELECT uid, arg_max(path, seq) AS path FROM read_parquet({quoted(found.path)}) GROUP BY uid) p"
        " ON s.u = p.uid ORDER BY s.u, s.r"
    )
    with duckdb_connection() as con:
        for batch in con.execute(sql).to_arrow_reader(SPILL_ROWS):
            yield from zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True)
