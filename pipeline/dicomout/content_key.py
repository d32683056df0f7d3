"""What determines a series' output objects, as one digest their UIDs derive from.

A UID names content: IDC keys objects by SOPInstanceUID, so different content under the
same UID would overwrite (or collide with) an earlier release. Every Series and SOP
Instance UID of a SEG or SR is therefore derived from a ``ContentKey`` of all that
determines the object (recipe in ``docs/outputs.md``, "UIDs"):

- the source series UID and its input fingerprint (the source instances, geometry and HU);
- the model: name, version and weights SHA-256;
- the anatomy: provider, its version and the UID of its SEG (IDC's TotalSegmentator);
- the masks written (a digest of every mask the objects encode);
- the toolkit version;
- per object: the SEG kind and encoding; for the SR, its SEGs' UIDs and the conventions
  with every value it reports.

Same inputs give the same key, hence the same UIDs and bytes; any change gives new UIDs.
StudyInstanceUID is the source CT's (derived objects belong to the source study, as IDC
and PS3.3 expect), so it is never derived.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from deepcac2._version import __version__
from deepcac2.pipeline.dicomout.references import anatomy_reference
from deepcac2.pipeline.stage_values import CTVolume, Prediction

NO_ANATOMY = "none"


@dataclass(frozen=True)
class ContentKey:
    """All that determines the objects of one series; ``parts()`` feeds ``uids.derive_uid``."""

    source_series_uid: str
    input_fingerprint: str
    model_name: str
    model_version: str
    weights_sha256: str
    #: "provider|version|SEG SOPInstanceUID" ("none" parts where absent)
    anatomy: str
    masks: str
    toolkit_version: str

    def digest(self) -> str:
        """SHA-256 (hex) of the key's canonical JSON."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def parts(self) -> tuple[str, str]:
        """The series UID (readable in the derivation) and the digest of everything."""
        return self.source_series_uid, self.digest()


def input_fingerprint(ct: CTVolume) -> str:
    """SHA-256 of the source as the toolkit read it: sorted SOPInstanceUIDs, grid and HU voxels.

    Content only (no paths or file times): the same series copied elsewhere keeps its
    fingerprint; a slice added, removed or changed gives a new one.
    """
    h = hashlib.sha256()
    sops = sorted(str(x.get("SOPInstanceUID", "")) for x in ct.headers)
    g = ct.geometry
    grid = [list(ct.hu.shape), str(ct.hu.dtype), *(list(map(float, v)) for v in (g.spacing, g.origin, g.direction))]
    h.update(json.dumps([sops, grid], separators=(",", ":")).encode())
    h.update(np.ascontiguousarray(ct.hu).tobytes())
    return h.hexdigest()


def masks_digest(prediction: Prediction) -> str:
    """SHA-256 of every mask the SEGs encode (heart, calcium, vessel labels, aortic calcium)."""
    h = hashlib.sha256()
    for name in ("heart", "cac", "vessels", "aortic"):
        mask = getattr(prediction, name)
        h.update(f"{name}:{'none' if mask is None else list(mask.shape)}\n".encode())
        if mask is not None:
            data = np.packbits(mask) if mask.dtype == bool else np.ascontiguousarray(mask, dtype=np.uint8)
            h.update(data.tobytes())
    return h.hexdigest()


def anatomy_identity(prediction: Prediction) -> str:
    """``provider|version|SEG UID`` of the anatomy the model was given."""
    provenance = getattr(prediction.anatomy, "provenance", None)
    if provenance is None:
        return NO_ANATOMY
    ref = anatomy_reference(prediction)
    seg = ref.sop_instance_uid if ref is not None else (provenance.seg_sop_instance_uid or NO_ANATOMY)
    return f"{provenance.provider}|{provenance.version or NO_ANATOMY}|{seg}"


def content_key(ct: CTVolume, prediction: Prediction, toolkit_version: str = __version__) -> ContentKey:
    """The key of ``prediction`` on ``ct`` (computed once per series, shared by its SEGs and SR)."""
    card = prediction.card
    return ContentKey(
        source_series_uid=ct.series_uid,
        input_fingerprint=input_fingerprint(ct),
        model_name=card.name,
        model_version=card.version,
        weights_sha256=card.weights_sha256 or "noweights",
        anatomy=anatomy_identity(prediction),
        masks=masks_digest(prediction),
        toolkit_version=toolkit_version,
    )
