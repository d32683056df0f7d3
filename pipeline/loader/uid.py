"""UID validation: a UID is checked before it is ever used in a path or a query."""

from __future__ import annotations

from pydicom.uid import RE_VALID_UID

from deepcac2.errors import DeepCACError, ErrorCode

#: PS3.5 §9.1: at most 64 characters.
MAX_UID_LENGTH = 64


def validate_uid(uid: object, what: str = "UID") -> str:
    """Return ``uid`` as a ``str`` when it is a valid DICOM UID, else raise E_UID_INVALID.

    Valid means: not empty, at most 64 characters, digit components joined by dots,
    no component with a leading zero (PS3.5 §9.1). This rules out every path
    character (``/``, ``..``, spaces), so a valid UID is safe as a file name.
    """
    text = "" if uid is None else str(uid)
    if not text:
        raise DeepCACError(ErrorCode.E_UID_INVALID, f"{what} is empty", uid=text)
    if len(text) > MAX_UID_LENGTH:
        raise DeepCACError(
            ErrorCode.E_UID_INVALID, f"{what} has {len(text)} characters (max {MAX_UID_LENGTH}): {text!r}", uid=text
        )
    if RE_VALID_UID.fullmatch(text) is None:  # fullmatch: "$" alone would accept a trailing newline
        raise DeepCACError(
            ErrorCode.E_UID_INVALID,
            f"{what} {text!r} is not digits and dots without leading zeros (PS3.5 §9.1)",
            uid=text,
        )
    return text
