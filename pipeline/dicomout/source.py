"""What our SEGs and SRs take from a source CT header: named attributes, nothing else.

highdicom copies the Patient and Study modules (and, as contributing equipment, the
General Equipment module) from the first source image, and reads the image's identity and
geometry. We hand it a *clean* copy of every source header holding only:

* the root attributes of the modules our objects carry from the source, as the DICOM
  standard (highdicom's tables) lists them for the CT Image IOD: Patient, Clinical Trial
  Subject, General Study, Patient Study, Clinical Trial Study, General Equipment and
  Frame of Reference;
* the few image attributes that identify a slice and place it (``IMAGE``).

No private element and no other attribute travels: a vendor's private block (Philips
(01F1,1026) holds the text ``0.15`` where pydicom's private dictionary says FD, which
raises ``BytesLengthException`` in Implicit VR) can then never break a writer. A value
that does not parse is left out (Type 3) or written empty (Type 2). A Type 2 attribute
the source lacks (de-identification often removes PatientSex) is written empty, as
PS3.3 allows; highdicom refuses a source without it.
"""

from __future__ import annotations

import copy
import logging
from functools import cache

from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.valuerep import validate_value

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.stage_values import CTVolume

log = logging.getLogger(__name__)

#: highdicom's module keys of what our objects carry from the source (CT Image IOD)
MODULES = (
    "patient",
    "clinical-trial-subject",
    "general-study",
    "patient-study",
    "clinical-trial-study",
    "general-equipment",
    "frame-of-reference",
)
#: slice identity, size and position: what highdicom and our references read of each image
IMAGE = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDate",
    "SeriesTime",
    "ImageType",
    "InstanceNumber",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "SliceThickness",
)
#: Type 2 attributes of the modules our objects carry: present in every output, empty when unknown
TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "Manufacturer",
    "PositionReferenceIndicator",
    "SeriesNumber",
)
#: Type 1 attributes our objects cannot be written without (identity of the slice and its frame)
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


@cache
def carried_keywords() -> tuple[str, ...]:
    """Every keyword a clean header may hold, in a fixed order."""
    import highdicom.base as hd_base

    modules = hd_base.get_module_attribute_map()
    names = [a["keyword"] for key in MODULES for a in modules[key] if not a["path"]]
    return tuple(dict.fromkeys([*IMAGE, *names]))


@cache
def carried_tags() -> frozenset[int]:
    return frozenset(int(tag_for_keyword(k)) for k in carried_keywords() if tag_for_keyword(k) is not None)


#: VRs whose text must parse (a number, a date): pydicom keeps a malformed one as text, a writer may not
_CHECKED_VRS = frozenset({"DS", "IS", "DA", "TM", "DT", "AS"})


def _readable(ds: Dataset, tag: int) -> DataElement | None:
    """A copy of the element, parsed, or None when its value does not parse under its VR."""
    try:
        elem = ds[tag]
        value = elem.value  # parse now: a broken value must fail here, not inside a writer
        if elem.VR in _CHECKED_VRS:  # parsed numbers are valid; text left as text did not parse
            for v in value if isinstance(value, MultiValue) else [value]:
                if type(v) is str and v:
                    validate_value(elem.VR, v, config.RAISE)
    except Exception as exc:  # pydicom raises several types for malformed values
        log.warning("source attribute %s left out: %s: %s", Tag(tag), type(exc).__name__, exc)
        return None
    if elem.VR == "SQ":
        return copy.deepcopy(elem)
    return DataElement(elem.tag, elem.VR, copy.copy(value))


def source_header(ds: Dataset) -> Dataset:
    """A clean copy of one source header: the carried attributes only, Type 2 ones always present."""
    out = Dataset()
    carried = carried_tags()
    for tag in ds.keys():  # tags only: an element is parsed only when carried
        if int(tag) in carried and (elem := _readable(ds, tag)) is not None:
            out.add(elem)
    for keyword in TYPE2:
        if keyword not in out:
            out.add(DataElement(tag_for_keyword(keyword), dictionary_VR(keyword), None))
    out.remove_private_tags()  # items of carried sequences may hold private elements too
    _deidentification_method(out)
    missing = [k for k in REQUIRED if not str(out.get(k, "") or "")]
    if missing:
        raise DeepCACError(
            ErrorCode.E_NO_FRAME_OF_REFERENCE if missing == ["FrameOfReferenceUID"] else ErrorCode.E_UID_INVALID,
            f"source header without {', '.join(missing)}: our SEG and SR cannot reference it",
            missing=",".join(missing),
        )
    return out


#: written when a source says its identity was removed but not how (documented in docs/outputs.md)
DEIDENTIFICATION_NOT_STATED = "not stated in the source series"


def _deidentification_method(out: Dataset) -> None:
    """PatientIdentityRemoved YES makes DeidentificationMethod (or its code sequence) Type 1C.

    De-identified sources often say YES and leave the method empty or out; copied as they
    are, our objects would fail dciodvfy. Empty ones are removed and, when neither is left,
    the method is written as ``DEIDENTIFICATION_NOT_STATED``: what the source says, no guess.
    """
    for keyword in ("DeidentificationMethod", "DeidentificationMethodCodeSequence"):
        if keyword in out and not out[keyword].value:
            del out[keyword]
    removed = str(out.get("PatientIdentityRemoved", "") or "").upper() == "YES"
    if removed and "DeidentificationMethod" not in out and "DeidentificationMethodCodeSequence" not in out:
        out.DeidentificationMethod = DEIDENTIFICATION_NOT_STATED


def source_headers(ct: CTVolume) -> list[Dataset]:
    """Clean copies of every header of ``ct``, in slice order (about 2 ms a slice: make them once per series)."""
    return [source_header(h) for h in ct.headers]


def require_frame_of_reference(ct: CTVolume) -> None:
    """Refuse a series without a FrameOfReferenceUID before any work: a SEG cannot be placed without it."""
    uid = ct.frame_of_reference_uid
    if not uid and ct.headers:
        uid = str(ct.headers[0].get("FrameOfReferenceUID", "") or "")
    if not uid:
        raise DeepCACError(
            ErrorCode.E_NO_FRAME_OF_REFERENCE,
            f"{ct.series_uid}: the series has no FrameOfReferenceUID; a SEG on it could not be placed in space",
            series=ct.series_uid,
        )
