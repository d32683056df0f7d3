"""Index a local folder of DICOM files (any layout, any number of series) into the cohort schema.

Reads headers only. Files that are not DICOM, or whose series/study UID is missing or not a
valid UID, are reported and left out: a series without a usable UID cannot be tracked.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.sources.ids import UID_PATTERN

#: the only attributes read from each file
HEADER_TAGS: tuple[str, ...] = (
    "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality", "SeriesDescription",
    "ImageType", "Manufacturer", "ManufacturerModelName", "ConvolutionKernel", "SliceThickness", "KVP",
    "XRayTubeCurrent", "ReconstructionDiameter",
)  # fmt: skip


@dataclass
class FolderIndex:
    """The series found in a folder (one frame row each) and the files left out, with why."""

    frame: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)


def read_header(path: str) -> pydicom.Dataset | None:
    """The listed header attributes of one file, or None when it is not DICOM."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
    except (InvalidDicomError, EOFError, OSError, ValueError, TypeError):
        return None


def list_files(folder: str | Path) -> list[str]:
    """Every regular file under ``folder``, sorted, symlinked folders not followed."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        out.extend(os.path.join(root, f) for f in sorted(files) if os.path.isfile(os.path.join(root, f)))
    return out


def _text(ds: pydicom.Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).strip() or None


def _number(ds: pydicom.Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def image_type_code(ds: pydicom.Dataset) -> str | None:
    """NLST-style code from DICOM ImageType: ORIGINAL\\PRIMARY\\AXIAL -> OPA, ...\\LOCALIZER -> OPL."""
    values = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if len(values) < 3 or not values[0] or not values[1] or not values[2]:
        return None
    return values[0][0] + values[1][0] + values[2][0]


def index_folder(folder: str | Path) -> FolderIndex:
    """One row per series: identifiers, file count and bytes, the series folder and DICOM parameters."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"{folder} is not a folder")
    groups: dict[str, list[tuple[str, pydicom.Dataset]]] = defaultdict(list)
    skipped: list[tuple[str, str]] = []
    for path in list_files(folder):
        ds = read_header(path)
        if ds is None:
            skipped.append((path, "not a DICOM file"))
            continue
        series, study = _text(ds, "SeriesInstanceUID"), _text(ds, "StudyInstanceUID")
        if not series or not study or not UID_PATTERN.fullmatch(series) or not UID_PATTERN.fullmatch(study):
            skipped.append((path, f"{ErrorCode.E_UID_INVALID.value}: series/study UID missing or invalid"))
            continue
        groups[series].append((path, ds))
    rows = [_series_row(series, files) for series, files in groups.items()]
    return FolderIndex(pd.DataFrame(rows, columns=_COLUMNS), skipped)


_COLUMNS = (
    "collection_id", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "crdc_series_uuid", "series_aws_url",
    "location", "series_size_bytes", "instanceCount", "Modality", "SeriesDescription", "TransferSyntaxUID",
    "Manufacturer", "ManufacturerModelName", "image_type", "kernel", "fov_mm", "slice_thickness_mm", "kvp", "ma",
)  # fmt: skip


def _series_row(series: str, files: list[tuple[str, pydicom.Dataset]]) -> dict[str, object]:
    first = files[0][1]
    syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for _, ds in files if "TransferSyntaxUID" in ds.file_meta})
    location = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p, _ in files])
    return {
        "collection_id": None,
        "PatientID": _text(first, "PatientID") or "",
        "StudyInstanceUID": _text(first, "StudyInstanceUID"),
        "SeriesInstanceUID": series,
        "crdc_series_uuid": None,
        "series_aws_url": None,
        # the deepest folder holding all the series' files; it may hold other series too
        "location": location,
        "series_size_bytes": sum(os.path.getsize(p) for p, _ in files),
        # files, as IDC counts instances; the loader deals with duplicate SOP instances
        "instanceCount": len(files),
        "Modality": _text(first, "Modality"),
        "SeriesDescription": _text(first, "SeriesDescription"),
        "TransferSyntaxUID": ",".join(syntaxes) or None,
        "Manufacturer": _text(first, "Manufacturer"),
        "ManufacturerModelName": _text(first, "ManufacturerModelName"),
        "image_type": image_type_code(first),
        "kernel": _text(first, "ConvolutionKernel"),
        "fov_mm": _number(first, "ReconstructionDiameter"),
        "slice_thickness_mm": _number(first, "SliceThickness"),
        "kvp": _number(first, "KVP"),
        "ma": _number(first, "XRayTubeCurrent"),
    }
