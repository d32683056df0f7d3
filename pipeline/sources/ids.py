"""Identifiers checked before they are used in a path, an S3 key or a subprocess argument."""

from __future__ import annotations

import re

from deepcac2.errors import DeepCACError, ErrorCode

#: DICOM UID: digits and dots, at most 64 characters (PS3.5 section 9.1)
UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")
#: IDC crdc_series_uuid: a lower-case hex UUID
CRDC_UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: S3 bucket name rules (lower-case letters, digits, dots, dashes; 3 to 63 characters)
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def validate_uid(uid: object, what: str = "UID") -> str:
    text = "" if uid is None else str(uid)
    if len(text) > 64 or not UID_PATTERN.fullmatch(text):
        raise DeepCACError(ErrorCode.E_UID_INVALID, f"{what} {text!r} is not a DICOM UID (digits and dots, <= 64)")
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
