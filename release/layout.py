"""Where the DICOM objects of a release go: a Patient / Study / Series hierarchy.

The hierarchy follows IDC's default ``dirTemplate`` (without the collection level, a
release holds one collection)::

    dicom/<PatientID>/<StudyInstanceUID>/<Modality>_<SeriesInstanceUID>/<SOPInstanceUID>.dcm

so a SEG and an SR of the same CT study sit side by side in the study folder, and a
file's place follows from its own header alone. The run may have written its DICOM
outputs anywhere under RUN_DIR; they are found by the DICOM preamble, not by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pydicom

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.location import NOT_OBJECTS
from deepcac2.pipeline.identifiers import PATIENT_ID_PATTERN
from deepcac2.pipeline.loader.read import is_run_object, run_objects
from deepcac2.release.scratch import walk_files

DICOM_DIR = "dicom"
#: UIDs are digits and dots (PS3.5 9.1); PatientIDs are also restricted so they make safe folder names.
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class DicomObject:
    source: Path
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str

    @property
    def release_path(self) -> str:
        """Relative POSIX path inside the release."""
        return f"{DICOM_DIR}/{self.patient_id}/{self.study_uid}/{self.modality}_{self.series_uid}/{self.sop_uid}.dcm"


def _checked(value: object, pattern: re.Pattern[str], what: str, path: Path) -> str:
    text = str(value or "").strip()
    if not pattern.fullmatch(text):
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"{path}: {what} {text!r} cannot name a release folder")
    return text


def read_object(path: Path) -> DicomObject:
    """The identifiers that decide a DICOM file's place in the release."""
    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=["PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality"],
        )
    except Exception as exc:  # pydicom raises several types for broken files
        raise DeepCACError(ErrorCode.E_RELEASE_INPUT, f"{path}: unreadable DICOM ({exc})") from exc
    return DicomObject(
        source=path,
        # the rule cohort and run apply (E_PATIENT_ID), so a run that passed never fails here
        patient_id=_checked(ds.get("PatientID"), PATIENT_ID_PATTERN, "PatientID", path),
        study_uid=_checked(ds.get("StudyInstanceUID"), _UID, "StudyInstanceUID", path),
        series_uid=_checked(ds.get("SeriesInstanceUID"), _UID, "SeriesInstanceUID", path),
        sop_uid=_checked(ds.get("SOPInstanceUID"), _UID, "SOPInstanceUID", path),
        modality=_checked(ds.get("Modality"), _SAFE, "Modality", path),
    )


def referenced_sop_uids(cac_series: pd.DataFrame) -> set[str]:
    """The SOPInstanceUIDs of the objects the table names: every ``*_sop_instance_uid`` column."""
    columns = [c for c in cac_series.columns if c.endswith("_sop_instance_uid")]
    return {str(v) for c in columns for v in cac_series[c].dropna()}


def scan_run_objects(run_dir: Path) -> Iterator[DicomObject]:
    """Every DICOM object of ``run_dir`` in the order of :func:`loader.read.run_objects` (the ones QA checked),
    one at a time: a walk that holds one folder's names, never the run's file list (its state holds a
    fragment per series)."""
    for rel in walk_files(run_dir, by_component=True, links=True, skip=NOT_OBJECTS):
        path = run_dir / rel
        if is_run_object(run_dir, path):
            yield read_object(path)


def find_dicom_objects(run_dir: Path, *, keep: set[str] | None = None) -> list[DicomObject]:
    """Every DICOM object of ``run_dir`` (``loader.read.run_objects``: the ones QA checked), sorted by
    release path; with ``keep``, only those whose SOPInstanceUID is in it.

    Two kept files with one SOPInstanceUID are refused: IDC keys instances by it.
    """
    found: dict[str, DicomObject] = {}
    for path in run_objects(run_dir):
        obj = read_object(path)
        if keep is not None and obj.sop_uid not in keep:
            continue
        if obj.sop_uid in found:
            raise DeepCACError(
                ErrorCode.E_RELEASE_INPUT,
                f"SOPInstanceUID {obj.sop_uid} appears twice: {found[obj.sop_uid].source} and {path}",
            )
        found[obj.sop_uid] = obj
    return sorted(found.values(), key=lambda o: o.release_path)
