"""Identifiers checked before they are used in a path, an S3 key or a subprocess argument.

UIDs are checked by the toolkit's one rule, ``deepcac2.pipeline.uids.validate_uid`` (re-exported here).
PatientIDs by ``validate_patient_id``: the rule the release applies to its folder names, checked
as early as ``cohort`` (an exclusion rule) and ``run`` (the load step), so a series never passes
``run`` and ``qa`` only to be refused by ``release build``.
"""

from __future__ import annotations

import re

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.uids import validate_uid

#: IDC crdc_series_uuid: a lower-case hex UUID
CRDC_UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: S3 bucket name rules (lower-case letters, digits, dots, dashes; 3 to 63 characters)
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: a PatientID the release can use as a folder (IDC's dirTemplate ``%PatientID`` level): not empty,
#: letters, digits, ``.``, ``_`` and ``-``, not starting with a dot or dash, at most 64 (LO)
PATIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


__all__ = ["is_valid_patient_id", "validate_bucket", "validate_crdc_uuid", "validate_patient_id", "validate_uid"]


def is_valid_patient_id(value: object) -> bool:
    """True when ``value`` (spaces around it ignored) matches ``PATIENT_ID_PATTERN``."""
    text = "" if value is None else str(value).strip()
    return PATIENT_ID_PATTERN.fullmatch(text) is not None


def validate_patient_id(value: object, series: str | None = None) -> str:
    """The PatientID, stripped; E_PATIENT_ID when it is empty, missing or cannot name a release folder."""
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
    if PATIENT_ID_PATTERN.fullmatch(text) is None:
        why = "is empty or missing" if not text else f"{text!r} is not letters, digits, '.', '_' and '-' (<= 64)"
        raise DeepCACError(
            ErrorCode.E_PATIENT_ID,
            f"series {series or '?'}: PatientID {why}; the release files objects under dicom/<PatientID>/, "
            "so set a PatientID in the source (de-identification tools can) and make the cohort again",
            series=series,
        )
    return text


def validate_crdc_uuid(value: object) -> str:
    text = "" if value is None else str(value)
    if not CRDC_UUID_PATTERN.fullmatch(text):
        raise DeepCACError(ErrorCode.E_UID_INVALID, f"crdc_series_uuid {text!r} is not a lower-case hex UUID")
    return text


def validate_bucket(bucket: str) -> str:
    if not BUCKET_PATTERN.fullmatch(bucket or ""):
        raise DeepCACError(ErrorCode.E_FETCH_FAILED, f"bucket name {bucket!r} is not a valid S3 bucket name")
    return bucket
