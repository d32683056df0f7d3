"""Index a local folder of DICOM files (any layout, any number of series) into the cohort schema.

Reads headers only. Files are found and judged by the loader's rules, so ``cohort`` and
``run`` agree on them: the same listing (symlinked folders followed, each folder once,
hidden entries skipped), and a file that is not DICOM and does not claim to be is stray.
Stray files, non-image DICOM objects (SR, SEG, DICOMDIR), damaged files, and files whose
series/study UID is missing or not a valid UID are reported and left out: a series
without a usable UID cannot be tracked.

Each series row records what the run will compare before loading it: the number of its
files (``instanceCount``) and a fingerprint of every file under its ``location``
(``source_fingerprint``, see :func:`deepcac2.pipeline.loader.read.folder_fingerprint`).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pydicom

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader.read import StrayFile, folder_fingerprint, object_kind, read_dataset, walk_files
from deepcac2.pipeline.loader.warnings_notes import collect_warnings, summarize
from deepcac2.pipeline.uids import is_valid_uid

#: the only attributes read from each file (SOPClassUID and Rows tell images from other objects)
HEADER_TAGS: tuple[str, ...] = (
    "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Modality",
    "SeriesDescription", "ImageType", "Manufacturer", "ManufacturerModelName", "ConvolutionKernel",
    "SliceThickness", "KVP", "XRayTubeCurrent", "ReconstructionDiameter", "Rows",
)  # fmt: skip

#: the reason given for a stray file (the loader skips such a file with a note too)
NOT_DICOM = "not a DICOM file"
NON_IMAGE = "non-image DICOM object"


@dataclass
class FolderIndex:
    """The series found in a folder (one frame row each) and the files left out, with why.

    TotalSegmentator SEG files are not series to process: they are listed in ``segs``
    (SeriesInstanceUID, location, referenced_series) and become their CT's candidates.
    """

    frame: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    segs: list[dict[str, object]] = field(default_factory=list)
    #: pydicom's warnings while reading the headers, one per distinct message
    notes: list[str] = field(default_factory=list)


#: a SEG is recognised from its file meta (MediaStorageSOPClassUID), in the first bytes
_SEG_STORAGE = b"1.2.840.10008.5.1.4.1.1.66.4"


def seg_fields(path: str) -> dict[str, object] | str | None:
    """A TotalSegmentator SEG's identity and the series it references, from its header by ranges
    (a 90 MB SEG's per-frame groups are not parsed); None when the file is not a SEG."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError as exc:
        return f"{ErrorCode.E_UNREADABLE_FILE.value}: {exc}"
    if _SEG_STORAGE not in head:
        return None
    from deepcac2.pipeline.cohort.seg_candidates import is_totalsegmentator
    from deepcac2.pipeline.totalseg.byte_ranges import LocalFile
    from deepcac2.pipeline.totalseg.seg_reader import read_header

    try:
        header = read_header(LocalFile(path))
    except DeepCACError as exc:
        return f"{exc.code.value}: {exc.message}"[:300]
    if not is_totalsegmentator(header.series_description, header.algorithm):
        return "a SEG that is not TotalSegmentator's (not an anatomy candidate)"
    return {
        "SeriesInstanceUID": header.series_uid,
        "location": os.path.abspath(path),
        "referenced_series": list(header.referenced_series),
    }


def reason_kind(why: str) -> str:
    """The reason's category, for summaries: the error code, or the reason without its detail."""
    head = why.split(":", 1)[0].strip()
    return head if head.startswith("E_") else why.split(" (", 1)[0]


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


def file_fields(path: str) -> dict[str, object] | str:
    """What the cohort needs from one file's header, or why it is left out.

    Damaged headers fail in many ways inside pydicom (wrong value lengths, bad numbers,
    broken meta groups), often only when a value is first read; so all values are read
    here, and any failure skips the file with its reason instead of stopping the scan.
    """
    try:
        ds = read_dataset(Path(path), stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
    except StrayFile:
        return NOT_DICOM
    except Exception as exc:  # noqa: BLE001 - a damaged file is skipped with its reason, never a crash
        return f"{ErrorCode.E_UNREADABLE_FILE.value}: {type(exc).__name__}: {exc}"[:300]
    try:
        if object_kind(ds) == "other":
            return f"{NON_IMAGE} ({_text(ds, 'Modality') or 'no Modality'})"
        meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
        fields: dict[str, object] = {
            "SeriesInstanceUID": _text(ds, "SeriesInstanceUID"),
            "StudyInstanceUID": _text(ds, "StudyInstanceUID"),
            "PatientID": _text(ds, "PatientID") or "",
            "TransferSyntaxUID": str(meta.TransferSyntaxUID) if "TransferSyntaxUID" in meta else None,
            "image_type": image_type_code(ds),
            "kernel": _text(ds, "ConvolutionKernel"),
            "fov_mm": _number(ds, "ReconstructionDiameter"),
            "slice_thickness_mm": _number(ds, "SliceThickness"),
            "kvp": _number(ds, "KVP"),
            "ma": _number(ds, "XRayTubeCurrent"),
        }
        for keyword in ("Modality", "SeriesDescription", "Manufacturer", "ManufacturerModelName"):
            fields[keyword] = _text(ds, keyword)
    except Exception as exc:  # noqa: BLE001 - any damaged header is a skipped file, never a crash
        return f"{ErrorCode.E_UNREADABLE_FILE.value}: {type(exc).__name__}: {exc}"[:300]
    series, study = fields["SeriesInstanceUID"], fields["StudyInstanceUID"]
    if not isinstance(series, str) or not isinstance(study, str):
        return f"{ErrorCode.E_UID_INVALID.value}: series/study UID missing"
    if not is_valid_uid(series) or not is_valid_uid(study):
        return f"{ErrorCode.E_UID_INVALID.value}: series/study UID is not a valid DICOM UID (PS3.5 9.1)"
    return fields


def index_folder(folder: str | Path) -> FolderIndex:
    """One row per series: identifiers, file count and bytes, the series folder and DICOM parameters."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"{folder} is not a folder")
    groups: dict[str, list[tuple[str, dict[str, object]]]] = defaultdict(list)
    skipped: list[tuple[str, str]] = []
    segs: list[dict[str, object]] = []
    with collect_warnings() as caught:
        for path in map(str, walk_files(Path(folder))):
            seg = seg_fields(path)  # a TotalSegmentator SEG: its CT's anatomy candidate, not a series
            if isinstance(seg, dict):
                segs.append(seg)
                continue
            fields = seg if isinstance(seg, str) else file_fields(path)
            if isinstance(fields, str):
                skipped.append((path, fields))
            else:
                groups[str(fields["SeriesInstanceUID"])].append((path, fields))
    fingerprints: dict[str, str] = {}  # one walk per folder, however many series it holds
    rows = [_series_row(files, fingerprints) for files in groups.values()]
    return FolderIndex(pd.DataFrame(rows, columns=_COLUMNS), skipped, segs, summarize(caught))


_COLUMNS = (
    "collection_id", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "crdc_series_uuid", "series_aws_url",
    "location", "series_size_bytes", "instanceCount", "Modality", "SeriesDescription", "TransferSyntaxUID",
    "Manufacturer", "ManufacturerModelName", "image_type", "kernel", "fov_mm", "slice_thickness_mm", "kvp", "ma",
    "source_fingerprint",
)  # fmt: skip


def _series_row(files: list[tuple[str, dict[str, object]]], fingerprints: dict[str, str]) -> dict[str, object]:
    """Series-level values come from the first file (sorted by path); sizes and syntaxes from all."""
    row = dict(files[0][1])
    # the series' image type is its files' most common one (ties: the first file's): a stray
    # localizer slice inside a chest series must not make the whole series a localizer
    types = [f["image_type"] for _, f in files]
    row["image_type"] = max(dict.fromkeys(types), key=types.count)
    syntaxes = sorted({str(f["TransferSyntaxUID"]) for _, f in files if f["TransferSyntaxUID"]})
    # the deepest folder holding all the series' files; it may hold other series too
    location = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p, _ in files])
    row.update(
        collection_id=None,
        crdc_series_uuid=None,
        series_aws_url=None,
        location=location,
        source_fingerprint=fingerprints.get(location)
        or fingerprints.setdefault(location, folder_fingerprint(location)),
        series_size_bytes=sum(os.path.getsize(p) for p, _ in files),
        # files, as IDC counts instances; the loader deals with duplicate SOP instances
        instanceCount=len(files),
        TransferSyntaxUID=",".join(syntaxes) or None,
    )
    return row
