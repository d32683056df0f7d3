"""``verify_release``: does a release folder still match its manifest and its schemas?

Checks, each reported separately:
- every file in MANIFEST.csv exists with the recorded size, MD5, CRC32C and SHA-256;
- no file is present that the manifest does not list, and no symbolic link at all (a link
  is not a file of the release: it would serve whatever it points to, unchecked);
- the dataset card, provenance.json and zenodo.json quote the SHA-256 of this MANIFEST.csv;
- idc_manifest.csv names only files the manifest lists, with the same MD5;
- every table in ``tables/`` reads as Parquet and passes the schema-derived QA checks
  (``deepcac2.qa.tables.check_table``) of its schema in ``deepcac2.schemas.registry``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.release import manifest
from deepcac2.release.tables import TABLES_DIR
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
    #: worth knowing, not a failure (e.g. a table with no registered schema)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.modified or self.schema_problems or self.links)

    def lines(self) -> list[str]:
        out = [f"{self.root}: {self.checked} files checked: {'OK' if self.ok else 'PROBLEMS FOUND'}"]
        for label, items in (
            ("missing", self.missing),
            ("extra", self.extra),
            ("modified", self.modified),
            ("schema", self.schema_problems),
            ("symlink", self.links),
            ("note", self.notes),
        ):
            out += [f"  {label}: {item}" for item in items]
        return out


def schema_for(table: str) -> TableSchema | None:
    """The registered schema of a table (``deepcac2.schemas.registry``), None when there is none."""
    from deepcac2.schemas.registry import TABLES

    return TABLES.get(table)


def _check_files(root: Path, report: VerifyReport) -> dict[str, manifest.FileEntry]:
    try:
        recorded = {e.path: e for e in manifest.read_manifest(root)}
    except FileNotFoundError:
        report.missing.append(manifest.MANIFEST_NAME)
        return {}
    except (ValueError, KeyError) as exc:
        report.modified.append(f"{manifest.MANIFEST_NAME}: unreadable ({exc})")
        return {}
    report.links += manifest.symlinks(root)
    present = set(manifest.list_files(root, (manifest.MANIFEST_NAME,)))
    report.extra += sorted(present - recorded.keys() - set(manifest.QUOTES_MANIFEST))
    for path, want in sorted(recorded.items()):
        if path not in present:
            report.missing.append(path)
            continue
        got = manifest.hash_file(root, path)
        report.checked += 1
        diffs = [f for f in ("size_bytes", "md5", "crc32c", "sha256") if getattr(got, f) != getattr(want, f)]
        if diffs:
            report.modified.append(f"{path}: {', '.join(diffs)} differ")
    return recorded


def _check_idc_manifest(root: Path, recorded: dict[str, manifest.FileEntry], report: VerifyReport) -> None:
    path = root / manifest.IDC_MANIFEST_NAME
    if not path.exists():
        return  # reported as missing by the file check when the manifest lists it
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            entry = recorded.get(row.get("path", ""))
            if entry is None:
                report.modified.append(f"{manifest.IDC_MANIFEST_NAME}: {row.get('path')} is not in the manifest")
            elif entry.md5 != row.get("md5"):
                report.modified.append(f"{manifest.IDC_MANIFEST_NAME}: MD5 of {entry.path} disagrees")


def _check_tables(root: Path, report: VerifyReport) -> None:
    from deepcac2.qa.tables import check_table  # QA owns the schema checks

    for path in sorted((root / TABLES_DIR).glob("*.parquet")):
        name = path.stem
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            report.schema_problems.append(f"{name}: not readable as Parquet ({exc})")
            continue
        schema = schema_for(name)
        if schema is None:
            report.notes.append(f"{name}: no registered schema, not validated")
            continue
        for result in check_table(table, schema):
            if not result.passed:
                report.schema_problems.append(f"{name}: {result.check} on {result.subject}: {result.message}")


def _quoted_sha(root: Path, name: str) -> str | None:
    """The manifest SHA-256 a file quotes, or None when it quotes none."""
    text = (root / name).read_text(encoding="utf-8", errors="replace")
    if name == "provenance.json":
        try:
            return json.loads(text).get("manifest_sha256")
        except ValueError:
            return None
    found = re.search(r"MANIFEST\.csv SHA-256: `?([0-9a-f]{64})", text)
    return found.group(1) if found else None


def _check_manifest_quoted(root: Path, report: VerifyReport) -> None:
    """The card, provenance.json and zenodo.json each quote the SHA-256 of the MANIFEST.csv present."""
    if not (root / manifest.MANIFEST_NAME).is_file():
        return  # reported as missing already
    actual = manifest.manifest_sha256(root)
    for name in manifest.QUOTES_MANIFEST:
        if not (root / name).is_file():
            report.missing.append(name)
            continue
        quoted = _quoted_sha(root, name)
        if quoted != actual:
            said = f"quotes {quoted}" if quoted else "quotes no manifest SHA-256"
            report.modified.append(f"{name}: {said}, MANIFEST.csv has {actual}")


def verify_release(rel_dir: str | Path) -> VerifyReport:
    """Recompute hashes and validate tables. Never raises for a damaged release: it reports."""
    root = Path(rel_dir)
    if not root.is_dir():
        raise DeepCACError(ErrorCode.E_RELEASE_VERIFY, f"release folder {root} does not exist")
    report = VerifyReport(str(root))
    recorded = _check_files(root, report)
    _check_manifest_quoted(root, report)
    _check_idc_manifest(root, recorded, report)
    _check_tables(root, report)
    return report
