"""``verify_release``: does a release folder still match its manifest and its schemas?

Checks, each reported separately:
- every file in MANIFEST.csv exists with the recorded size, MD5, CRC32C and SHA-256;
- no file is present that the manifest does not list, and no symbolic link at all (a link
  is not a file of the release: it would serve whatever it points to, unchecked);
- the root hash (MANIFEST.csv's SHA-256, printed) is the one the dataset card shows, and the card,
  with that hash written as zeros, has the SHA-256 ``provenance.json`` seals it with (manifest.py);
  provenance.json and zenodo.json are listed in the manifest, so a forged toolkit version,
  licence or creator is a modified file; and they agree with each other, with LICENSE and the card;
- idc_manifest.csv names only files the manifest lists, with the same MD5;
- every table in ``tables/`` reads as Parquet and passes the schema-derived QA checks
  (``deepcac2.qa.table_checks.check_table_file``, a batch at a time) of its schema in ``deepcac2.schemas.registry``;
- tables against objects (``objects.py``): every DICOM file sits where its header puts it and
  is in idc_manifest.csv, every object a table names is in the release with the series UID the
  table gives, every object is named by ``cac_series``, and the SHA-256 that QA recorded for
  each table and object (``qa/checks.parquet``, ``deepcac2.qa.binding``) is the file's.

Memory stays flat with the release's size (issue 23): the manifest, idc_manifest.csv and the objects'
identifiers go into a DuckDB scratch database (``scratch.py``) and come back sorted, a batch at a time;
the files are listed by a sorted walk, never as one list.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import astuple, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.release import manifest
from deepcac2.release.objects import check_objects
from deepcac2.release.run_tables import TABLES_DIR
from deepcac2.release.scratch import Scratch, walk_files
from deepcac2.schemas.base import TableSchema


@dataclass
class VerifyReport:
    root: str
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    #: "path: what differs"
    modified: list[str] = field(default_factory=list)
    #: "table: problem"
    schema_problems: list[str] = field(default_factory=list)
    #: symbolic links found in the release (never allowed)
    links: list[str] = field(default_factory=list)
    #: "what: problem" where tables, DICOM objects and QA's recorded hashes disagree
    objects: list[str] = field(default_factory=list)
    #: the release's root hash: SHA-256 of MANIFEST.csv (None when it is missing)
    root_hash: str | None = None
    #: worth knowing, not a failure (e.g. a table with no registered schema)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.modified or self.schema_problems or self.links or self.objects)

    def lines(self) -> list[str]:
        out = [f"{self.root}: {self.checked} files checked: {'OK' if self.ok else 'PROBLEMS FOUND'}"]
        out.append(f"  root hash (SHA-256 of MANIFEST.csv): {self.root_hash or 'none'}")
        for label, items in (
            ("missing", self.missing),
            ("extra", self.extra),
            ("modified", self.modified),
            ("schema", self.schema_problems),
            ("symlink", self.links),
            ("objects", self.objects),
            ("note", self.notes),
        ):
            out += [f"  {label}: {item}" for item in items]
        return out


def schema_for(table: str) -> TableSchema | None:
    """The registered schema of a table (``deepcac2.schemas.registry``), None when there is none."""
    from deepcac2.schemas.registry import TABLES

    return TABLES.get(table)


def _load_manifest(root: Path, db: Scratch, report: VerifyReport) -> bool:
    """MANIFEST.csv into ``recorded`` (one row per path, the last where a path repeats), a row at a time;
    False when it is missing or unreadable (``recorded`` is then empty)."""
    loaded = True
    db.create(
        "listed", path="VARCHAR", size_bytes="BIGINT", md5="VARCHAR", crc32c="VARCHAR", sha256="VARCHAR", row="BIGINT"
    )
    try:
        db.append("listed", ((*astuple(e), i) for i, e in enumerate(manifest.iter_manifest(root))))
    except FileNotFoundError:
        report.missing.append(manifest.MANIFEST_NAME)
        loaded = False
    except (ValueError, KeyError) as exc:
        report.modified.append(f"{manifest.MANIFEST_NAME}: unreadable ({exc})")
        db.execute("DELETE FROM listed")
        loaded = False
    db.execute(
        "CREATE TABLE recorded AS SELECT * EXCLUDE (row) FROM listed "
        "QUALIFY row_number() OVER (PARTITION BY path ORDER BY row DESC) = 1"
    )
    return loaded


def _check_files(root: Path, db: Scratch, report: VerifyReport) -> None:
    """Every file the manifest lists, hashed and compared; files it does not list; symbolic links."""
    if not _load_manifest(root, db, report):
        return
    report.links += manifest.symlinks(root)
    # a merge of two sorted streams, the manifest's rows (DuckDB sorts them) and the walk: no join to hold
    listed = db.rows("SELECT * FROM recorded ORDER BY path")
    present = (p for p in walk_files(root) if p != manifest.MANIFEST_NAME)
    want, have = next(listed, None), next(present, None)
    while want is not None or have is not None:
        if have is not None and (want is None or have < str(want[0])):
            if have not in manifest.QUOTES_MANIFEST:
                report.extra.append(have)
            have = next(present, None)
        elif want is not None and (have is None or str(want[0]) < have):
            report.missing.append(str(want[0]))
            want = next(listed, None)
        else:
            _compare(root, want, report)
            want, have = next(listed, None), next(present, None)


def _compare(root: Path, want: tuple[object, ...], report: VerifyReport) -> None:
    path, *recorded = want
    got = astuple(manifest.hash_file(root, str(path)))[1:]
    report.checked += 1
    diffs = [f for f, a, b in zip(("size_bytes", "md5", "crc32c", "sha256"), got, recorded, strict=True) if a != b]
    if diffs:
        report.modified.append(f"{path}: {', '.join(diffs)} differ")


def _check_idc_manifest(root: Path, db: Scratch, report: VerifyReport) -> None:
    """idc_manifest.csv into ``idc`` (its rows in order); each names a listed file with the manifest's MD5."""
    db.create("idc", sop="VARCHAR", path="VARCHAR", md5="VARCHAR", row="BIGINT")
    path = root / manifest.IDC_MANIFEST_NAME
    if not path.exists():
        return  # reported as missing by the file check when the manifest lists it
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f)
        db.append(
            "idc", ((r.get("SOPInstanceUID", ""), r.get("path", ""), r.get("md5"), i) for i, r in enumerate(rows))
        )
    query = "SELECT i.path, i.md5, r.md5, r.path IS NULL FROM idc i LEFT JOIN recorded r USING (path) ORDER BY i.row"
    for listed, md5, recorded_md5, unknown in db.rows(query):
        if unknown:
            report.modified.append(f"{manifest.IDC_MANIFEST_NAME}: {listed} is not in the manifest")
        elif recorded_md5 != md5:
            report.modified.append(f"{manifest.IDC_MANIFEST_NAME}: MD5 of {listed} disagrees")


def _check_tables(root: Path, report: VerifyReport) -> None:
    from deepcac2.qa.table_checks import check_table_file  # QA owns the schema checks

    for path in sorted((root / TABLES_DIR).glob("*.parquet")):
        name = path.stem
        schema = schema_for(name)
        try:
            if schema is None:
                pq.ParquetFile(path)  # its footer: readable at all
                report.notes.append(f"{name}: no registered schema, not validated")
                continue
            # a batch at a time: an NLST release's measurements hold millions of rows (was 2.9 GB read whole)
            results = check_table_file(path, schema)
        except Exception as exc:  # pyarrow and DuckDB raise several types for corrupt files
            report.schema_problems.append(f"{name}: not readable as Parquet ({exc})")
            continue
        for result in results:
            if not result.passed:
                report.schema_problems.append(f"{name}: {result.check} on {result.subject}: {result.message}")


def _quoted_root(root: Path) -> str | None:
    """The root hash the dataset card shows, or None when it shows none."""
    text = (root / manifest.CARD_NAME).read_text(encoding="utf-8", errors="replace")
    found = re.search(r"Root hash \(SHA-256 of MANIFEST\.csv\): `?([0-9a-f]{64})", text)
    return found.group(1) if found else None


def _json(root: Path, name: str) -> dict:
    try:
        data = json.loads((root / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _check_root(root: Path, report: VerifyReport) -> None:
    """The card shows the root hash and is sealed by provenance.json (manifest.py)."""
    if not (root / manifest.MANIFEST_NAME).is_file():
        return  # reported as missing already
    actual = report.root_hash = manifest.manifest_sha256(root)
    card = root / manifest.CARD_NAME
    if not card.is_file():
        report.missing.append(manifest.CARD_NAME)
        return
    quoted = _quoted_root(root)
    if quoted != actual:
        said = f"shows root hash {quoted}" if quoted else "shows no root hash"
        report.modified.append(f"{manifest.CARD_NAME}: {said}, MANIFEST.csv has {actual}")
        return
    seal = _json(root, "provenance.json").get("card_sha256")
    if manifest.sealed_card_sha256(card.read_text(encoding="utf-8", errors="replace"), actual) != seal:
        report.modified.append(f"{manifest.CARD_NAME}: differs from the card provenance.json seals (card_sha256)")


def _check_statements(root: Path, report: VerifyReport) -> None:
    """provenance.json, zenodo.json, LICENSE and the card say the same version, toolkit and licence."""
    from deepcac2.release.metadata import LICENSE_URL

    prov, zen = _json(root, "provenance.json"), _json(root, "zenodo.json").get("metadata", {})
    problems = []
    if (prov.get("toolkit") or {}).get("name") != "deepcac2":
        problems.append("provenance.json does not name deepcac2 as the toolkit")
    if prov.get("release_version") != zen.get("version"):
        problems.append("provenance.json and zenodo.json give different release versions")
    if zen.get("license") != "cc-by-4.0":
        problems.append(f"zenodo.json gives licence {zen.get('license')!r}, the release is CC BY 4.0")
    license_text = (root / "LICENSE").read_text(errors="replace") if (root / "LICENSE").is_file() else ""
    if LICENSE_URL not in license_text:
        problems.append("LICENSE is not the CC BY 4.0 notice")
    card = (root / manifest.CARD_NAME).read_text(errors="replace") if (root / manifest.CARD_NAME).is_file() else ""
    version = (prov.get("toolkit") or {}).get("version")
    if card and f"deepcac2 {version}**" not in card:
        problems.append(f"the dataset card does not name toolkit deepcac2 {version} of provenance.json")
    report.modified += [f"statements: {p}" for p in problems]


def verify_release(rel_dir: str | Path) -> VerifyReport:
    """Recompute hashes and validate tables. Never raises for a damaged release: it reports."""
    root = Path(rel_dir)
    if not root.is_dir():
        raise DeepCACError(ErrorCode.E_RELEASE_VERIFY, f"release folder {root} does not exist")
    report = VerifyReport(str(root))
    with Scratch() as db:  # the manifest, idc_manifest.csv and the objects out of core (scratch.py)
        _check_files(root, db, report)
        _check_root(root, report)
        _check_statements(root, report)
        _check_idc_manifest(root, db, report)
        _check_tables(root, report)
        check_objects(root, db, report.objects, report.notes)
    return report
