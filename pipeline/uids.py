"""DICOM UIDs: the one validation rule, and deterministic UIDs (the same inputs give the same UID).

``validate_uid`` is the toolkit's only UID check (loader, sources, cohort, writers): PS3.5
§9.1, so a valid UID is always safe as a file name or an S3 key.


A rerun of the pipeline on the same inputs must overwrite its earlier objects instead of
adding duplicates to IDC, and different content must never reuse a UID. So every UID we
write is *derived*, never random: SEG and SR UIDs from the series' ``ContentKey``
(``pipeline/dicomout/content_key.py``), tracking and device UIDs from ``output_uid`` and
``device_uid`` here.

Derivation (documented in ``docs/outputs.md``): ``2.25.<int>``, where ``<int>`` is
the integer value of a name-based (SHA-1, version 5) UUID, as PS3.5 §B.2 allows for
the ``2.25`` root. The UUID's name is the JSON list of the inputs, so ``["ab", "c"]``
and ``["a", "bc"]`` never collide (``pydicom.uid.generate_uid(entropy_srcs=...)``
joins its inputs without a separator and produces a ``2.25`` suffix that is not a
UUID, so it is not used here).
"""

from __future__ import annotations

import json
import uuid

from pydicom.uid import RE_VALID_UID, UID

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import ModelCard

#: PS3.5 §9.1: at most 64 characters.
MAX_UID_LENGTH = 64


def is_valid_uid(uid: object) -> bool:
    """Not empty, at most 64 characters, digit components joined by dots, no leading zeros (PS3.5 §9.1)."""
    text = "" if uid is None else str(uid)
    return 0 < len(text) <= MAX_UID_LENGTH and RE_VALID_UID.fullmatch(text) is not None


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


#: Fixed namespace of all deepcac2 UIDs (uuid5 of the project's name in the URL namespace).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/deepcac2/deepcac2/uids")


def derive_uid(*parts: str) -> UID:
    """``2.25.<uuid5 int>`` of the ordered, non-empty string ``parts``."""
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise DeepCACError(ErrorCode.E_UID_INVALID, f"UID derivation needs non-empty strings, got {parts!r}")
    name = json.dumps(list(parts), ensure_ascii=True, separators=(",", ":"))
    return UID(f"2.25.{uuid.uuid5(NAMESPACE, name).int}")


def output_uid(
    kind: str,
    source_series_uid: str,
    card: ModelCard,
    *extra: str,
    toolkit_version: str = __version__,
) -> UID:
    """The UID of one output object of one source series.

    ``kind`` names the object and the attribute, e.g. ``"seg-series"``, ``"seg-sop"``,
    ``"sr-sop"``; ``extra`` carries whatever else changes the object's content (the SEG
    encoding, the scoring conventions), so different content never shares a UID.
    """
    return derive_uid(
        kind,
        source_series_uid,
        card.name,
        card.version,
        card.weights_sha256 or "noweights",
        toolkit_version,
        *extra,
    )


def device_uid(card: ModelCard) -> UID:
    """The UID that identifies the model as an observer device in SRs (the same for every series)."""
    return derive_uid("device", card.name, card.version, card.weights_sha256 or "noweights")
