"""Release manifests: one row per file with size and three hashes, plus IDC's SOP list.

``MANIFEST.csv`` lists every file of a release except itself and the dataset card, sorted by relative POSIX
path, with size, MD5 (what IDC and Google Cloud Storage check at ingestion), CRC32C
(what ``gsutil``/GCS compare, written here as 8 lowercase hex digits of the Castagnoli
checksum) and SHA-256 (what Zenodo and downstream users pin). Sorting and fixed
formatting make the file byte-identical for identical inputs.

``idc_manifest.csv`` is the shape IDC submissions use: one row per DICOM instance with
its SOPInstanceUID, relative path and MD5, sorted by SOPInstanceUID.

**Root hash.** The SHA-256 of ``MANIFEST.csv`` is the release's one root hash: the
manifest lists every file but itself and the dataset card, ``provenance.json`` and
``zenodo.json`` included, so the root hash pins each of them byte for byte.

**The sealed card.** ``DATASET_CARD.md`` shows the root hash, so the manifest cannot list
it (a file cannot hold the hash of a file that holds its hash). It is sealed instead:
``provenance.json`` (listed, so under the root hash) records ``card_sha256``, the SHA-256 of
the card with the root hash written as 64 zeros (:data:`ROOT_PLACEHOLDER`). ``verify``
checks that the card shows the root hash of the manifest present, puts the zeros back and
compares. Every byte of the release is then pinned by the root hash alone.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import crc32c

MANIFEST_NAME = "MANIFEST.csv"
IDC_MANIFEST_NAME = "idc_manifest.csv"
CARD_NAME = "DATASET_CARD.md"
#: the one file that shows MANIFEST.csv's SHA-256, and so cannot be listed in it (it is sealed instead)
QUOTES_MANIFEST = (CARD_NAME,)
#: how the card is sealed: the root hash is replaced by this before hashing
ROOT_PLACEHOLDER = "0" * 64
MANIFEST_COLUMNS = ("path", "size_bytes", "md5", "crc32c", "sha256")
IDC_COLUMNS = ("SOPInstanceUID", "path", "md5")


@dataclass(frozen=True)
class FileEntry:
    """One file of a release; ``path`` is relative to the release root, POSIX style."""

    path: str
    size_bytes: int
    md5: str
    crc32c: str
    sha256: str


def hash_file(root: Path, rel_path: str, chunk: int = 1 << 20) -> FileEntry:
    """Size, MD5, CRC32C and SHA-256 of one file, read once in chunks."""
    md5, sha, crc, size = hashlib.md5(), hashlib.sha256(), 0, 0
    with open(os.path.join(root, rel_path), "rb") as f:  # no Path per file: pathlib interns every part
        while block := f.read(chunk):
            md5.update(block)
            sha.update(block)
            crc = crc32c.crc32c(block, crc)
            size += len(block)
    return FileEntry(rel_path, size, md5.hexdigest(), f"{crc:08x}", sha.hexdigest())


def list_files(root: Path, exclude: tuple[str, ...] = (MANIFEST_NAME, *QUOTES_MANIFEST)) -> list[str]:
    """Relative POSIX paths of all regular files under ``root``, sorted, minus ``exclude`` (symlinks never)."""
    paths = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return sorted(p for p in paths if p not in exclude)


def symlinks(root: Path) -> list[str]:
    """Relative POSIX paths of every symbolic link under ``root`` (to files or folders), not followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def manifest_sha256(root: Path) -> str:
    """SHA-256 of the release's MANIFEST.csv: the root hash, the one value that pins every file."""
    return hash_file(root, MANIFEST_NAME).sha256


def sealed_card_sha256(card_text: str, root_hash: str) -> str:
    """SHA-256 of the card with its root hash written as :data:`ROOT_PLACEHOLDER` (UTF-8)."""
    return hashlib.sha256(card_text.replace(root_hash, ROOT_PLACEHOLDER).encode("utf-8")).hexdigest()


def _csv_text(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_manifest(root: Path, entries: list[FileEntry]) -> Path:
    rows = [(e.path, e.size_bytes, e.md5, e.crc32c, e.sha256) for e in sorted(entries, key=lambda e: e.path)]
    out = root / MANIFEST_NAME
    out.write_text(_csv_text(MANIFEST_COLUMNS, rows), encoding="utf-8")
    return out


def read_manifest(root: Path) -> list[FileEntry]:
    return list(iter_manifest(root))


def iter_manifest(root: Path) -> Iterator[FileEntry]:
    """MANIFEST.csv's rows, one at a time (ValueError for a header or size it cannot read)."""
    with open(root / MANIFEST_NAME, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
            raise ValueError(f"{MANIFEST_NAME} header is {reader.fieldnames}, expected {list(MANIFEST_COLUMNS)}")
        for r in reader:
            yield FileEntry(r["path"], int(r["size_bytes"]), r["md5"], r["crc32c"], r["sha256"])


def write_manifest_rows(root: Path, entries: Iterable[FileEntry]) -> Path:
    """MANIFEST.csv from entries already sorted by path, written a row at a time (the bytes of
    :func:`write_manifest`); an entry out of order is refused (ValueError)."""
    out, last = root / MANIFEST_NAME, None
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for e in entries:
            if last is not None and e.path <= last:
                raise ValueError(f"{MANIFEST_NAME}: {e.path} comes after {last}")
            writer.writerow((e.path, e.size_bytes, e.md5, e.crc32c, e.sha256))
            last = e.path
    return out


def write_idc_rows(root: Path, rows: Iterable[tuple[str, str, str]]) -> Path:
    """idc_manifest.csv from (SOPInstanceUID, path, MD5) rows already sorted by SOPInstanceUID, a row at a time."""
    out = root / IDC_MANIFEST_NAME
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(IDC_COLUMNS)
        writer.writerows(rows)
    return out


def write_idc_manifest(root: Path, sop_paths: dict[str, str], md5_by_path: dict[str, str]) -> Path:
    """``sop_paths``: SOPInstanceUID -> relative path of the DICOM file in the release."""
    rows = [(uid, path, md5_by_path[path]) for uid, path in sorted(sop_paths.items())]
    out = root / IDC_MANIFEST_NAME
    out.write_text(_csv_text(IDC_COLUMNS, rows), encoding="utf-8")
    return out
