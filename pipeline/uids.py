"""Deterministic DICOM UIDs: the same inputs always give the same UID.

A rerun of the pipeline on the same series, with the same model weights and the same
toolkit version, must overwrite its earlier objects instead of adding duplicates to
IDC. So every UID we write is *derived*, never random.

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

from pydicom.uid import UID

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.types import ModelCard

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
