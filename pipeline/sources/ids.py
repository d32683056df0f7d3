"""Identifiers checked before they are used in a path, an S3 key or a subprocess argument.

UIDs are checked by the toolkit's one rule, ``deepcac2.pipeline.uids.validate_uid`` (re-exported here).
"""

from __future__ import annotations

import re

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.uids import validate_uid

#: IDC crdc_series_uuid: a lower-case hex UUID
CRDC_UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: S3 bucket name rules (lower-case letters, digits, dots, dashes; 3 to 63 characters)
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


__all__ = ["validate_bucket", "validate_crdc_uuid", "validate_uid"]


def validate_crdc_uuid(value: object) -> str:
    text = "" if value is None else str(value)
    if not CRDC_UUID_PATTERN.fullmatch(text):
        raise DeepCACError(ErrorCode.E_UID_INVALID, f"crdc_series_uuid {text!r} is not a lower-case hex UUID")
    return text


def validate_bucket(bucket: str) -> str:
    if not BUCKET_PATTERN.fullmatch(bucket or ""):
        raise DeepCACError(ErrorCode.E_FETCH_FAILED, f"bucket name {bucket!r} is not a valid S3 bucket name")
    return bucket
