"""One walk of a folder for QA: each DICOM object read once, its header parsed once.

QA needs three things of every object: its SHA-256 and SOPInstanceUID (the input binding,
``qa.binding``), its SOP Class and source series (``dicom_checks.add_object``) and its
SOPInstanceUID again (``integrity.check_unreferenced``). This is the one walk that finds
them all (at NLST size ~260k objects): no other QA code walks a run folder's objects.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from deepcac2.location import TABLES_DIR
from deepcac2.pipeline.stage_values import sha256_file
from deepcac2.qa.binding import OBJECT_INPUT, TABLE_INPUT
from deepcac2.qa.dicom_checks import RunObjects, add_object
from deepcac2.qa.result import CheckResult, Severity


@dataclass
class Walked:
    """What QA reads of a folder's files."""

    #: the input binding (``qa.binding``): a row per table, then per DICOM object (no symlink), with its SHA-256
    inputs: list[CheckResult] = field(default_factory=list)
    #: the SEG and SR files (``*.dcm``, symlinks too) by source series (``dicom_checks.add_object``)
    objects: RunObjects | None = None
    #: every DICOM object outside ``NOT_OBJECTS`` (path relative to the folder, sorted) -> its
    #: SOPInstanceUID ("" when unreadable): what ``check_unreferenced`` looks for in ``cac_series``
    sop_uids: dict[str, str] = field(default_factory=dict)


def _header(data: bytes) -> pydicom.Dataset | None:
    try:
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception:
        return None


def _sop_uid(ds: pydicom.Dataset | None, data: bytes) -> str:
    """The SOPInstanceUID ("" when unreadable: QA's file checks report it; the binding names it by its path)."""
    try:
        if ds is None:  # a header that breaks after this tag still names it, as a read of this tag alone finds
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        return str(ds.SOPInstanceUID)
    except Exception:
        return ""


def files_sorted(folder: Path) -> Iterator[Path]:
    """The files under ``folder`` in ``sorted(folder.rglob("*"))``'s order, found one folder at a time.

    As rglob: symlinks to files are files, symlinked folders are not entered. The sorted list
    of every path of an NLST run (~260k objects, ~130k state files) held ~150 MiB for the
    whole walk; here only the names of the folders being listed are held.
    """
    try:
        with os.scandir(folder) as it:
            # a folder's children sorted (the paths' sort order), as (name, kind): a DirEntry holds its path too,
            # ~300 bytes per series in the run's dicom/ folder
            entries = sorted(
                (e.name, "d" if e.is_dir(follow_symlinks=False) else "f" if e.is_file() else "") for e in it
            )
    except PermissionError:
        return
    for name, kind in entries:
        if kind == "d":
            yield from files_sorted(folder / name)
        elif kind == "f":
            yield folder / name


@dataclass(frozen=True, slots=True)
class Found:
    """One file the walk read: a run object (``is_object``), a ``*.dcm`` file, or both."""

    path: Path
    rel: str
    ds: pydicom.Dataset | None
    is_object: bool
    is_dcm: bool
    #: SOPInstanceUID ("" when unreadable; "" too for a ``*.dcm`` file that is no run object)
    sop_uid: str
    #: SHA-256 of a run object that is no symlink (an input of the binding), else None
    sha256: str | None


def table_inputs(root: Path) -> list[CheckResult]:
    """The binding's row of every table (``qa.input.table``)."""
    return [
        CheckResult(TABLE_INPUT, p.relative_to(root).as_posix(), True, Severity.INFO, "", sha256=sha256_file(str(p)))
        for p in sorted((root / TABLES_DIR).glob("*.parquet"))
    ]


def object_input(found: Found) -> CheckResult:
    """The binding's row of one object (``qa.input.object``)."""
    return CheckResult(OBJECT_INPUT, found.sop_uid or found.rel, True, Severity.INFO, found.rel, sha256=found.sha256)


def walk_files(root: Path) -> Iterator[Found]:
    """Every run object and ``*.dcm`` file of ``root``, in sorted path order, each read once."""
    from deepcac2.pipeline.loader.read import is_run_object

    for path in files_sorted(root):
        is_object = is_run_object(root, path)  # the set ``release build`` reads (``run_objects``)
        is_dcm = fnmatch.fnmatchcase(path.name, "*.dcm")
        if not (is_object or is_dcm):
            continue
        data = path.read_bytes()
        ds = _header(data)
        uid = _sop_uid(ds, data) if is_object else ""
        digest = hashlib.sha256(data).hexdigest() if is_object and not path.is_symlink() else None
        yield Found(path, path.relative_to(root).as_posix(), ds, is_object, is_dcm, uid, digest)


def walk(root: str | Path) -> Walked:
    """Every table and DICOM file of ``root``, each file read once, all held (``qa.walked`` keeps less)."""
    root = Path(root)
    out = Walked(objects=RunObjects(root))
    out.inputs = table_inputs(root)
    for found in walk_files(root):
        if found.is_dcm:
            add_object(out.objects, found.path, found.ds)
        if found.is_object:
            out.sop_uids[found.rel] = found.sop_uid
            if found.sha256 is not None:
                out.inputs.append(object_input(found))
    return out
