"""``release verify``'s cross-check of the tables against the DICOM objects of a release.

* Every DICOM file under ``dicom/`` sits at the path its own header gives (``layout.py``) and
  is the one ``idc_manifest.csv`` names for its SOPInstanceUID.
* Every object a table names is in the release, with the SeriesInstanceUID the table pairs
  with it (:data:`REFERENCES`), and ``cac_series`` names every object (none ships unexplained).
* The SHA-256 that QA recorded for each table and object (``qa/checks.parquet``,
  ``deepcac2.qa.binding``) is the one MANIFEST.csv holds for that file: the QA shipped is
  the QA of these bytes. A release built with ``--allow-no-qa`` has no QA: a note.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from deepcac2.errors import DeepCACError
from deepcac2.location import QA_CHECKS, QA_DIR, TABLES_DIR
from deepcac2.release.layout import DICOM_DIR, read_object
from deepcac2.release.scratch import Scratch, sql_text, walk_files

#: table -> (SOPInstanceUID column, the SeriesInstanceUID column paired with it, or None)
REFERENCES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "cac_series": (
        ("seg_sop_instance_uid", "seg_series_uid"),
        ("sr_sop_instance_uid", "sr_series_uid"),
        ("vessel_seg_sop_instance_uid", "vessel_seg_series_uid"),
        ("heart_seg_sop_instance_uid", "heart_seg_series_uid"),
    ),
    "cac_lesions": (("seg_sop_instance_uid", None),),
    "measurements": (("SOPInstanceUID", "SeriesInstanceUID"), ("segmentationInstanceUID", "segmentationSeriesUID")),
}
MAX_SHOWN = 20


def _objects(root: Path, db: Scratch, problems: list[str]) -> None:
    """Every DICOM file of the release into ``objects`` (``kept``: SOPInstanceUID -> SeriesInstanceUID, the
    last file read where one repeats), checking its place and its line in idc_manifest.csv (table ``idc``)."""

    def scanned() -> Iterator[tuple[object, ...]]:
        # not ``run_objects``: in a release every file of dicom/ must be an object (no marker test) and a symlink
        # is verify's own finding (``manifest.symlinks``), never read as an object
        for i, rel in enumerate(walk_files(root / DICOM_DIR, by_component=True)):
            rel = f"{DICOM_DIR}/{rel}"
            try:
                obj = read_object(root / rel)
            except DeepCACError as exc:
                yield i, rel, exc.message, None, None, None
                continue
            yield i, rel, None, obj.release_path, obj.sop_uid, obj.series_uid

    db.create(
        "objects", row="BIGINT", path="VARCHAR", error="VARCHAR", place="VARCHAR", sop="VARCHAR", series="VARCHAR"
    )
    db.append("objects", scanned())
    db.execute(
        "CREATE TABLE idc_by_sop AS SELECT sop, path FROM idc "
        "QUALIFY row_number() OVER (PARTITION BY sop ORDER BY row DESC) = 1"
    )
    query = "SELECT o.path, o.error, o.place, o.sop, i.path FROM objects o LEFT JOIN idc_by_sop i USING (sop) ORDER BY o.row"
    for rel, error, place, sop, listed in db.rows(query):
        if error is not None:
            problems.append(f"{rel}: {error}")
            continue
        if place != rel:
            problems.append(f"{rel}: its header places it at {place}")
        if listed != rel:
            problems.append(f"{rel}: idc_manifest.csv does not name it for SOPInstanceUID {sop}")
    db.execute(
        "CREATE TABLE kept AS SELECT sop, series FROM objects WHERE error IS NULL "
        "QUALIFY row_number() OVER (PARTITION BY sop ORDER BY row DESC) = 1"
    )


def _references(root: Path, db: Scratch, problems: list[str]) -> None:
    """Check every object reference of the tables (DuckDB over each file, distinct pairs joined with ``kept``);
    the SOPInstanceUIDs cac_series names go into ``named``."""
    db.create("named", sop="VARCHAR")
    for table, pairs in REFERENCES.items():
        path = root / TABLES_DIR / f"{table}.parquet"
        if not path.is_file():
            continue
        for sop_col, series_col in pairs:
            try:
                present = set(pq.read_schema(path).names)
                if sop_col not in present:
                    continue
                given = f'"{series_col}"' if series_col and series_col in present else "NULL::VARCHAR"
                db.execute(
                    f'CREATE OR REPLACE TABLE pairs AS SELECT DISTINCT "{sop_col}" AS sop, {given} AS given '
                    f'FROM read_parquet({sql_text(path)}) WHERE "{sop_col}" IS NOT NULL AND "{sop_col}" <> \'\''
                )
            except Exception:  # unreadable: the table check reports it
                continue
            if table == "cac_series":
                db.execute("INSERT INTO named SELECT DISTINCT sop FROM pairs")
            query = (
                "SELECT p.sop, p.given, k.series, k.sop IS NULL FROM pairs p LEFT JOIN kept k USING (sop) "
                "ORDER BY p.sop, coalesce(p.given, '')"
            )
            for sop, given, series, absent in db.rows(query):
                if absent:
                    problems.append(f"{table}.{sop_col} {sop}: no such object in the release")
                elif given and given != series:
                    problems.append(f"{table}.{series_col} {given}: object {sop} is of series {series}")


def _qa_hashes(root: Path, db: Scratch, problems: list[str], notes: list[str]) -> None:
    from deepcac2.qa.binding import recorded  # QA owns the binding rows

    checks = root / QA_DIR / QA_CHECKS
    shown = f"{QA_DIR}/{QA_CHECKS}"
    if not checks.is_file():
        notes.append(f"no {shown}: a draft built without QA; QA's hashes not compared")
        return
    try:
        found = recorded(pq.read_table(checks).to_pandas())
    except Exception as exc:  # unreadable: reported here, the manifest check says whether it was altered
        problems.append(f"{shown}: unreadable ({exc})")
        return
    if found is None:
        notes.append(f"{shown} records no SHA-256 (QA of an older deepcac2); QA's hashes not compared")
        return
    tables, objects = found
    for rel, sha in sorted(tables.items()):
        if db.one("SELECT sha256 FROM recorded WHERE path = ?", [rel]) != (sha,):
            problems.append(f"{rel}: not the table QA checked (SHA-256 differs or missing)")
    query = "SELECT i.sop, i.path, r.sha256 FROM idc_by_sop i LEFT JOIN recorded r USING (path) ORDER BY i.sop"
    for sop, rel, sha in db.rows(query):
        if objects.get(sop) != sha:
            problems.append(f"{rel}: not the object QA checked (SHA-256 differs or QA never saw it)")


def check_objects(root: Path, db: Scratch, problems: list[str], notes: list[str]) -> None:
    """Append to ``problems`` every disagreement between tables, objects and QA's hashes (module doc).
    ``db`` holds verify's ``recorded`` (MANIFEST.csv) and ``idc`` (idc_manifest.csv) tables."""
    found: list[str] = []
    _objects(root, db, found)
    _references(root, db, found)
    query = "SELECT sop FROM kept ANTI JOIN named USING (sop) ORDER BY sop"
    found += [f"object {sop}: no cac_series row names it" for (sop,) in db.rows(query)]
    _qa_hashes(root, db, found, notes)
    problems += found[:MAX_SHOWN]
    if len(found) > MAX_SHOWN:
        problems.append(f"... and {len(found) - MAX_SHOWN} more")
