"""Make written objects byte-identical across reruns: a creation stamp given once, derived UIDs.

highdicom stamps ``ContentDate``/``ContentTime``, ``InstanceCreation*`` and
``ContributionDateTime`` with the wall clock and draws a random
``DimensionOrganizationUID``. We overwrite those after construction:

- the dates and times are the **creation's**, taken from one stamp given once per run and
  recorded (``SOURCE_DATE_EPOCH``, the reproducible-builds.org convention: seconds since
  1970 UTC). ``deepcac2 run`` sets it when the output folder is first used, keeps it in
  ``state/created`` and reuses it on ``--resume``, so a rerun writes the same bytes. Without a
  stamp (a library call, ``convert`` without the variable) they fall back to the source's
  study date and time, which is reproducible too;
- the UIDs derive from the content (``content_key``), never from the stamp: the same inputs
  keep their UIDs whenever they are written. ``release diff`` compares objects with these
  stamps blanked, so a new stamp alone is not a content change.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydicom.dataset import Dataset

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.writable import write_atomic

#: Used when the source has neither StudyDate nor SeriesDate (documented in docs/outputs.md).
FALLBACK_DATE = "19000101"
FALLBACK_TIME = "000000"

_DATE_KEYWORDS = ("ContentDate", "InstanceCreationDate")
_TIME_KEYWORDS = ("ContentTime", "InstanceCreationTime")
#: every attribute ``freeze`` writes from the stamp (``release diff`` blanks them to compare content)
STAMP_KEYWORDS = (*_DATE_KEYWORDS, *_TIME_KEYWORDS, "ContributionDateTime")
#: the creation stamp, seconds since 1970-01-01 UTC (https://reproducible-builds.org/specs/source-date-epoch/)
STAMP_VARIABLE = "SOURCE_DATE_EPOCH"


def creation_datetime() -> tuple[str, str] | None:
    """(DA, TM) in UTC of ``SOURCE_DATE_EPOCH``; None when it is not set (or not a number)."""
    value = os.environ.get(STAMP_VARIABLE, "").strip()
    if not value.isdigit():
        return None
    stamp = time.gmtime(int(value))
    return time.strftime("%Y%m%d", stamp), time.strftime("%H%M%S", stamp)


def object_datetime(headers: list[Dataset]) -> tuple[str, str]:
    """What our objects' ContentDate/Time carry: the creation stamp, else the source's study date and time."""
    return creation_datetime() or source_datetime(headers)


def source_datetime(headers: list[Dataset]) -> tuple[str, str]:
    """(DA, TM) for our objects: the source's StudyDate/StudyTime, else SeriesDate/SeriesTime."""
    first = headers[0] if headers else Dataset()
    for date_kw, time_kw in (("StudyDate", "StudyTime"), ("SeriesDate", "SeriesTime")):
        date = str(first.get(date_kw, "") or "")
        if len(date) == 8 and date.isdigit():
            time = str(first.get(time_kw, "") or "") or FALLBACK_TIME
            return date, time
    return FALLBACK_DATE, FALLBACK_TIME


def freeze(ds: Dataset, date: str, time: str, dimension_organization_uid: str | None = None) -> None:
    """Overwrite wall-clock stamps (and the random dimension organization UID) in place, recursively."""
    for kw in _DATE_KEYWORDS:
        if kw in ds:
            setattr(ds, kw, date)
    for kw in _TIME_KEYWORDS:
        if kw in ds:
            setattr(ds, kw, time)
    if "ContributionDateTime" in ds:
        ds.ContributionDateTime = date + time
    if dimension_organization_uid is not None and "DimensionOrganizationUID" in ds:
        ds.DimensionOrganizationUID = dimension_organization_uid
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                freeze(item, date, time, dimension_organization_uid)


def drop_broken_references(ds: Dataset) -> None:
    """Remove items of ``ReferencedStudySequence`` that lack a Type 1 attribute.

    highdicom copies the General Study module from the source; de-identified sources
    (e.g. TCIA's) often keep a ReferencedStudySequence item without its
    ReferencedSOPClassUID, which would make our own object fail dciodvfy. The sequence
    is Type 3, so an incomplete item is dropped, never repaired with a guess.
    """
    if "ReferencedStudySequence" not in ds:
        return
    kept = [i for i in ds.ReferencedStudySequence if "ReferencedSOPClassUID" in i and "ReferencedSOPInstanceUID" in i]
    if kept:
        ds.ReferencedStudySequence = kept
    else:
        del ds.ReferencedStudySequence


def write_object(ds: Dataset, path: str | os.PathLike[str], code: ErrorCode, kind: str) -> Path:
    """Write a SEG or SR atomically (``deepcac2.writable.write_atomic``); an OS error is ``code``."""
    try:
        return write_atomic(path, lambda tmp: ds.save_as(tmp, enforce_file_format=True))
    except OSError as exc:
        raise DeepCACError(code, f"cannot write {kind} to {path}: {exc}") from exc
