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

import csv
from pathlib import Path

import pyarrow.parquet as pq

from deepcac2.errors import DeepCACError
from deepcac2.location import QA_CHECKS, QA_DIR, TABLES_DIR
from deepcac2.release import manifest
from deepcac2.release.layout import DICOM_DIR, read_object

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


def _idc_paths(root: Path) -> dict[str, str]:
    path = root / manifest.IDC_MANIFEST_NAME
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row.get("SOPInstanceUID", ""): row.get("path", "") for row in csv.DictReader(f)}


def _objects(root: Path, problems: list[str]) -> dict[str, str]:
    """SOPInstanceUID -> SeriesInstanceUID of every DICOM file in the release, checking its place."""
    idc = _idc_paths(root)
    series: dict[str, str] = {}
    # not ``run_objects``: in a release every file of dicom/ must be an object (no marker test) and a symlink is
    # verify's own finding (``manifest.symlinks``), never read as an object
    for path in sorted(p for p in (root / DICOM_DIR).rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        try:
            obj = read_object(path)
        except DeepCACError as exc:
            problems.append(f"{rel}: {exc.message}")
            continue
        if obj.release_path != rel:
            problems.append(f"{rel}: its header places it at {obj.release_path}")
        if idc.get(obj.sop_uid) != rel:
            problems.append(f"{rel}: idc_manifest.csv does not name it for SOPInstanceUID {obj.sop_uid}")
        series[obj.sop_uid] = obj.series_uid
    return series


def _pairs(path: Path, sop_col: str, series_col: str | None) -> list[tuple[str, str | None]]:
    """Distinct (SOPInstanceUID, SeriesInstanceUID) pairs a table names (millions of rows: grouped in Arrow)."""
    present = set(pq.read_schema(path).names)
    if sop_col not in present:
        return []
    cols = [sop_col, *([series_col] if series_col and series_col in present else [])]
    table = pq.read_table(path, columns=cols).group_by(cols).aggregate([])
    sops = table.column(sop_col).to_pylist()
    series = table.column(cols[1]).to_pylist() if len(cols) > 1 else [None] * len(sops)
    return sorted(((a, b) for a, b in zip(sops, series, strict=True) if a), key=lambda p: (p[0], p[1] or ""))


def _references(root: Path, series: dict[str, str], problems: list[str]) -> set[str]:
    """Check every object reference of the tables; return the SOPInstanceUIDs cac_series names."""
    named: set[str] = set()
    for table, pairs in REFERENCES.items():
        path = root / TABLES_DIR / f"{table}.parquet"
        if not path.is_file():
            continue
        for sop_col, series_col in pairs:
            try:
                found = _pairs(path, sop_col, series_col)
            except Exception:  # unreadable: the table check reports it
                continue
            for sop, given in found:
                if table == "cac_series":
                    named.add(sop)
                if sop not in series:
                    problems.append(f"{table}.{sop_col} {sop}: no such object in the release")
                elif given and given != series[sop]:
                    problems.append(f"{table}.{series_col} {given}: object {sop} is of series {series[sop]}")
    return named


def _qa_hashes(root: Path, sha_by_path: dict[str, str], problems: list[str], notes: list[str]) -> None:
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
    idc = _idc_paths(root)
    for rel, sha in sorted(tables.items()):
        if sha_by_path.get(rel) != sha:
            problems.append(f"{rel}: not the table QA checked (SHA-256 differs or missing)")
    for sop, rel in sorted(idc.items()):
        if objects.get(sop) != sha_by_path.get(rel):
            problems.append(f"{rel}: not the object QA checked (SHA-256 differs or QA never saw it)")


def check_objects(root: Path, sha_by_path: dict[str, str], problems: list[str], notes: list[str]) -> None:
    """Append to ``problems`` every disagreement between tables, objects and QA's hashes (module doc)."""
    found: list[str] = []
    series = _objects(root, found)
    named = _references(root, series, found)
    found += [f"object {sop}: no cac_series row names it" for sop in sorted(set(series) - named)]
    _qa_hashes(root, sha_by_path, found, notes)
    problems += found[:MAX_SHOWN]
    if len(found) > MAX_SHOWN:
        problems.append(f"... and {len(found) - MAX_SHOWN} more")
