"""Reading one file's header, and listing the files of a source (and their fingerprint)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VM
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import NOT_OBJECTS
from deepcac2.pipeline.loader.values import ValueCache, Values

#: Attributes the loader reads from every slice. They are parsed while the file is read,
#: so a corrupt value is E_UNREADABLE_FILE for that file, not an exception somewhere later.
SLICE_KEYWORDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "ImageType",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "RescaleSlope",
    "RescaleIntercept",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "NumberOfFrames",
    "PlanarConfiguration",
)

#: Attributes read from one slice per series only (parsed there, with the same error mapping).
SERIES_KEYWORDS = (
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "PatientID",
    "SeriesDescription",
    "SliceThickness",
    "KVP",
    "GantryDetectorTilt",
    "CalciumScoringMassFactorPatient",
    "CalciumScoringMassFactorDevice",
)

DEFLATED = DeflatedExplicitVRLittleEndian

#: Values larger than this are not read with the header but on demand (Pixel Data of any
#: real CT slice). Small enough for pixels, large enough that private headers stay in memory.
DEFER_SIZE = 64 * 1024


#: file name endings that claim a file is DICOM: such a file that does not parse is damaged, not stray
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")


class StrayFile(Exception):
    """A file that is not DICOM and does not claim to be (notes.txt, Thumbs.db): skipped with a note."""


def walk_files(root: Path) -> list[Path]:
    """Every file under ``root`` (any depth, hidden entries skipped, sorted), symlinked folders followed.

    A folder reached twice (a symlink loop, or two links to one folder) is walked once:
    folders are recognised by device and inode, not by path.
    """
    seen: set[tuple[int, int]] = set()
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and path.is_file():  # a dangling link is not a file
                files.append(path)
    return files


def folder_fingerprint(folder: str | os.PathLike[str]) -> str:
    """``"<files>:<sha256>"`` over the relative path, size and mtime (ns) of every file the loader would list.

    Cheap (``stat`` only, no file is opened) and strict: a file added, deleted, renamed,
    rewritten or touched changes it. When several series share a folder, a change to any
    of them changes the fingerprint of all.
    """
    root = Path(folder)
    digest = hashlib.sha256()
    files = walk_files(root)
    for path in files:
        st = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"{len(files)}:{digest.hexdigest()}"


def list_files(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files of a folder (see :func:`walk_files`) or the given list."""
    if isinstance(source, str | os.PathLike):
        root = Path(source)
        if root.is_file():
            return [root]
        if not root.is_dir():
            raise DeepCACError(ErrorCode.E_NO_IMAGES, f"{root} is neither a folder nor a file", path=str(root))
        return walk_files(root)
    return [Path(p) for p in source]


def has_dicom_marker(path: Path) -> bool:
    """A Part 10 file: 128-byte preamble, then ``DICM``."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_run_object(root: Path, path: Path) -> bool:
    """A DICOM object of a run folder: a Part 10 file (a symlink to one too) outside ``NOT_OBJECTS``."""
    return path.relative_to(root).parts[0] not in NOT_OBJECTS and has_dicom_marker(path)


def run_objects(root: Path) -> Iterator[Path]:
    """Every DICOM object of a run folder (:func:`is_run_object`), sorted by path."""
    return (p for p in sorted(p for p in root.rglob("*") if p.is_file()) if is_run_object(root, p))


def claims_dicom(path: Path) -> bool:
    """The file says it is DICOM: the Part 10 marker, or a DICOM file name ending."""
    return path.suffix.lower() in DICOM_SUFFIXES or has_dicom_marker(path)


def read_dataset(path: Path, **kwargs: Any) -> Dataset:
    """``pydicom.dcmread``, accepting raw datasets without the Part 10 header (old exports).

    A file that is neither a Part 10 file nor a parsable raw dataset raises
    :class:`StrayFile` when nothing about it claims DICOM (see :func:`claims_dicom`),
    else the parse error: a ``.dcm`` file of random bytes is damaged, not stray.
    """
    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError as exc:
        first = exc
    try:
        ds = pydicom.dcmread(path, force=True, **kwargs)
    except Exception as exc:
        if not claims_dicom(path):
            raise StrayFile(f"{path.name}: not a DICOM file") from exc
        raise
    if "Modality" not in ds and "SOPClassUID" not in ds:
        if not claims_dicom(path):
            raise StrayFile(f"{path.name}: not a DICOM file") from first
        raise InvalidDicomError("no DICOM preamble and no recognisable DICOM attributes") from None
    _set_transfer_syntax(ds)
    return ds


def read_header(path: Path, *, stop_before_pixels: bool = False) -> Dataset:
    """Read a DICOM header once; Pixel Data is left on disk (deferred) or skipped."""
    return read_slice(path, stop_before_pixels=stop_before_pixels)[0]


def read_slice(
    path: Path, *, stop_before_pixels: bool = False, cache: ValueCache | None = None
) -> tuple[Dataset, Values]:
    """One file's header and the values of ``SLICE_KEYWORDS`` the loader checks.

    Files without the 128-byte preamble (old raw datasets) are accepted when they still
    parse into something with a Modality or SOP Class. A file that is not DICOM and does
    not claim to be raises :class:`StrayFile`. Any other failure, including a corrupt
    value of one of the keywords, is E_UNREADABLE_FILE. ``cache`` shares conversions of
    identical raw values between the files of one load.
    """
    kwargs = {"stop_before_pixels": stop_before_pixels, "defer_size": None if stop_before_pixels else DEFER_SIZE}
    try:
        ds = read_dataset(path, **kwargs)
        meta = getattr(ds, "file_meta", None)
        if kwargs["defer_size"] is not None and meta is not None and meta.get("TransferSyntaxUID") == DEFLATED:
            # deferred offsets point into the inflated stream, not the file: read it all now
            ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
        values = (cache or ValueCache()).values(ds, SLICE_KEYWORDS)
        _check_multiplicity(values)
    except (DeepCACError, StrayFile):
        raise
    except Exception as exc:  # pydicom raises many types on corrupt input; all mean "unreadable"
        raise DeepCACError(
            ErrorCode.E_UNREADABLE_FILE, f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})", path=path
        ) from exc
    return ds, values


def _check_multiplicity(values: Values) -> None:
    """A single-valued attribute holding several values is corrupt."""
    for keyword, value in values.items():
        if isinstance(value, MultiValue | list) and dictionary_VM(keyword) == "1":
            raise ValueError(f"{keyword} holds {len(value)} values, the standard allows 1")


def parse_series_attributes(ds: Dataset, path: Path) -> None:
    """Parse the per-series attributes of the one slice they are read from; E_UNREADABLE_FILE if corrupt."""
    try:
        _check_multiplicity({keyword: ds.get(keyword) for keyword in SERIES_KEYWORDS})
    except Exception as exc:
        raise DeepCACError(ErrorCode.E_UNREADABLE_FILE, f"{path}: corrupt header value ({exc})", path=path) from exc


def load_deferred(ds: Dataset) -> None:
    """Read any other element left on disk by ``DEFER_SIZE`` (rare: > 64 KB, e.g. private data).

    Kept headers must not need their file: the cache deletes a series once it is loaded.
    A deferred element is a raw element with no value but a file offset; ``values()``
    shows the elements as stored, without converting any.
    """
    deferred = [
        e.tag
        for e in ds.values()
        if isinstance(e, RawDataElement) and e.value is None and getattr(e, "value_tell", None) is not None
    ]
    for tag in deferred:
        ds[tag]  # noqa: B018 - the access reads the value into the dataset


def _set_transfer_syntax(ds: Dataset) -> None:
    """A raw dataset has no file meta; record the encoding pydicom detected while parsing."""
    if "TransferSyntaxUID" in getattr(ds, "file_meta", Dataset()):
        return
    implicit, little = ds.original_encoding
    if not little:
        return  # big endian raw datasets are left without a syntax and rejected later
    ds.file_meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def image_type(ds: Dataset | Values) -> tuple[str, ...]:
    value = ds.get("ImageType")
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip().upper() for v in value.split("\\"))
    return tuple(str(v).strip().upper() for v in value)


def is_localizer(ds: Dataset | Values) -> bool:
    return "LOCALIZER" in image_type(ds)


def object_kind(ds: Dataset) -> str:
    """ "image", "other" (a known non-image object: DICOMDIR, SR, ...) or "unknown".

    Image attributes or an image SOP class (from the dataset, else the file meta) make an
    image, so an image file truncated or damaged before Rows fails instead of vanishing.
    """
    if "PixelData" in ds or "Rows" in ds:
        return "image"
    meta = getattr(ds, "file_meta", None) or Dataset()
    sop_class = str(ds.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID") or "").strip()
    name = UID(sop_class).name if sop_class else ""
    if not name or name == sop_class:  # pydicom names only the UIDs it knows
        return "unknown"
    return "image" if "Image Storage" in name else "other"


def uid_text(ds: Dataset | Values, keyword: str) -> str:
    """A UID attribute as stripped text; '' when absent or empty."""
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def iter_readable(paths: Iterable[Path], skip_unreadable: bool, notes: list[str]) -> list[tuple[Path, Dataset, Values]]:
    """Every DICOM file read; stray files (not DICOM, see :func:`read_dataset`) skipped with one note."""
    out = []
    stray = []
    cache = ValueCache()
    for path in paths:
        try:
            out.append((path, *read_slice(path, cache=cache)))
        except StrayFile:
            stray.append(path.name)
        except DeepCACError as exc:
            if not skip_unreadable:
                raise
            notes.append(f"skipped unreadable file {path.name}: {exc.message}")
    if stray:
        shown = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
        notes.append(f"skipped {len(stray)} file(s) that are not DICOM: {shown}")
    return out
