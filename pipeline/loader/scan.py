"""Fast header-only inventory of a folder, grouped by series (for ``cohort --from-dir``)."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from deepcac2.errors import DeepCACError
from deepcac2.pipeline.loader.read import (
    StrayFile,
    image_type,
    list_files,
    parse_series_attributes,
    read_header,
    uid_text,
)


@dataclass(frozen=True)
class HeaderSummary:
    """What one file's header says; ``error`` is set (and most fields None) when it is unreadable."""

    path: str
    file_size: int
    series_uid: str | None = None
    study_uid: str | None = None
    patient_id: str | None = None
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    modality: str | None = None
    image_type: tuple[str, ...] = ()
    rows: int | None = None
    cols: int | None = None
    position: tuple[float, float, float] | None = None
    orientation: tuple[float, ...] | None = None
    transfer_syntax: str | None = None
    series_description: str | None = None
    number_of_frames: int | None = None
    #: "E_CODE: message" when the file could not be read
    error: str | None = None

    @property
    def readable(self) -> bool:
        return self.error is None


def _floats(value: object, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def summarize(path: str) -> HeaderSummary:
    """One file's HeaderSummary; unreadable files give a summary with ``error`` set."""
    size = os.path.getsize(path)
    try:
        ds = read_header(path, stop_before_pixels=True)
        parse_series_attributes(ds, Path(path))
    except DeepCACError as exc:
        return HeaderSummary(path=path, file_size=size, error=f"{exc.code.value}: {exc.message}")
    except StrayFile as exc:
        return HeaderSummary(path=path, file_size=size, error=str(exc))
    meta = getattr(ds, "file_meta", None)
    frames = ds.get("NumberOfFrames")
    return HeaderSummary(
        path=path,
        file_size=size,
        series_uid=uid_text(ds, "SeriesInstanceUID") or None,
        study_uid=uid_text(ds, "StudyInstanceUID") or None,
        patient_id=str(ds.get("PatientID", "")).strip() or None,
        sop_instance_uid=uid_text(ds, "SOPInstanceUID") or None,
        sop_class_uid=uid_text(ds, "SOPClassUID") or None,
        modality=str(ds.get("Modality", "")).strip() or None,
        image_type=image_type(ds),
        rows=int(ds.Rows) if ds.get("Rows") is not None else None,
        cols=int(ds.Columns) if ds.get("Columns") is not None else None,
        position=_floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        transfer_syntax=str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None,
        series_description=str(ds.get("SeriesDescription", "")).strip() or None,
        number_of_frames=int(frames) if frames not in (None, "") else None,
    )


def scan_headers(folder: str | os.PathLike[str]) -> list[HeaderSummary]:
    """Summaries of every file under ``folder``, ordered by series UID then path.

    Reads headers only (stops before Pixel Data). Unreadable files are returned with
    ``error`` set, never raised, so one bad file does not hide a folder's series.
    """
    summaries = [summarize(str(p)) for p in list_files(folder)]
    return sorted(summaries, key=lambda s: (s.series_uid or "", s.path))


def group_by_series(summaries: list[HeaderSummary]) -> dict[str, list[HeaderSummary]]:
    """Readable summaries keyed by SeriesInstanceUID ('' for files whose UID is empty)."""
    groups: dict[str, list[HeaderSummary]] = defaultdict(list)
    for s in summaries:
        if s.readable:
            groups[s.series_uid or ""].append(s)
    return dict(groups)
