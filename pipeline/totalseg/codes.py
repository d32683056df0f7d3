"""TotalSegmentator v1 classes by SegmentedPropertyType code, as IDC's SEGs of NLST carry them.

A SEG's segments are numbered 1..n in the order dcmqi met them (not by label ID) and
their labels are free text, so segments are found by their SegmentedPropertyType code
(with its laterality modifier, when the code alone names two structures). The codes of
the classes we read come from IDC's dcmqi metadata file, shipped beside this module
(``dicomseg_metadata_whole_slicerAsRef.json``, Apache-2.0, see NOTICE.md).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

#: IDC's dcmqi metadata for TotalSegmentator v1.5.6 (label IDs 1-104)
METADATA_JSON = Path(__file__).with_name("dicomseg_metadata_whole_slicerAsRef.json")
#: the version IDC's SEGs were made with (SegmentAlgorithmName "TotalSegmentator v1.5.6")
TOTALSEG_VERSION = "TotalSegmentator v1.5.6"


@dataclass(frozen=True)
class SegmentCode:
    """A segment's identity: (scheme, value) of its property type, and of its modifier when it has one."""

    scheme: str
    value: str
    modifier: tuple[str, str] | None = None

    @classmethod
    def of(cls, item) -> SegmentCode:  # noqa: ANN001 - a pydicom SegmentSequence item or a metadata dict
        """The code of a pydicom segment item or of a dcmqi metadata ``segmentAttributes`` entry."""
        if isinstance(item, dict):
            t = item["SegmentedPropertyTypeCodeSequence"]
            m = item.get("SegmentedPropertyTypeModifierCodeSequence")
            mod = (m["CodingSchemeDesignator"], m["CodeValue"]) if m else None
            return cls(t["CodingSchemeDesignator"], t["CodeValue"], mod)
        t = item.SegmentedPropertyTypeCodeSequence[0]
        mod = None
        seq = getattr(t, "SegmentedPropertyTypeModifierCodeSequence", None) or getattr(
            item, "SegmentedPropertyTypeModifierCodeSequence", None
        )
        if seq:
            mod = (str(seq[0].CodingSchemeDesignator), str(seq[0].CodeValue))
        return cls(str(t.CodingSchemeDesignator), str(t.CodeValue), mod)


@functools.lru_cache(maxsize=1)
def metadata() -> dict:
    """IDC's dcmqi metadata document."""
    return json.loads(METADATA_JSON.read_text())


@functools.lru_cache(maxsize=1)
def classes() -> dict[str, tuple[int, SegmentCode]]:
    """TotalSegmentator class name (``heart_myocardium``) -> (label ID, code)."""
    out = {}
    for seg in metadata()["segmentAttributes"][0]:
        name = seg["SegmentDescription"].split(":", 1)[1].strip()
        out[name] = (int(seg["labelID"]), SegmentCode.of(seg))
    return out


#: the masks every provider gives, from these classes (the heart is the union of its five)
REQUIRED: dict[str, tuple[str, ...]] = {
    "heart": (
        "heart_myocardium",
        "heart_atrium_left",
        "heart_ventricle_left",
        "heart_atrium_right",
        "heart_ventricle_right",
    ),
    "aorta": ("aorta",),
    "pulmonary_artery": ("pulmonary_artery",),
}

#: ``Anatomy.structures`` name -> the classes it unites (by name prefix where there are many)
STRUCTURE_CLASSES: dict[str, tuple[str, ...]] = {
    "myocardium": ("heart_myocardium",),
    "atrium_left": ("heart_atrium_left",),
    "atrium_right": ("heart_atrium_right",),
    "ventricle_left": ("heart_ventricle_left",),
    "ventricle_right": ("heart_ventricle_right",),
    "lungs": ("lung_",),
    "trachea": ("trachea",),
    "esophagus": ("esophagus",),
    "vertebrae": ("vertebrae_",),
    "ribs": ("rib_",),
}

#: structures read by default besides the heart parts (which come with the heart), over the cardiac
#: slab (the ribs near the heart, ``provider.NEAR_HEART_MM``): the ribs because bone in front of the
#: heart is otherwise taken for coronary calcium
#: (TotalSegmentator v1 has no sternum and no costal cartilage); ``lungs`` are large segments,
#: read only when asked for
DEFAULT_STRUCTURES: tuple[str, ...] = ("trachea", "esophagus", "vertebrae", "ribs")


def codes_of(names: tuple[str, ...]) -> frozenset[SegmentCode]:
    """The codes of the named classes; a name ending in ``_`` stands for every class it prefixes."""
    table = classes()
    out = set()
    for name in names:
        hits = [c for n, (_, c) in table.items() if (n.startswith(name) if name.endswith("_") else n == name)]
        if not hits:
            raise KeyError(f"no TotalSegmentator class {name!r}")
        out.update(hits)
    return frozenset(out)
