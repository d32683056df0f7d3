"""Who wrote an object and how it is named: one scheme for every SEG and SR.

IDC's TotalSegmentator results of NLST are named ``TotalSegmentator(v1.5.6) Segmentation of
Series N`` with SeriesNumber ``N x 100``; ours follow the same pattern,
``DeepCAC2(<model> <version>) <what> of Series N``, and number ``N x 100 + offset`` (the
offsets keep clear of IDC's ``x 100``, so both sort right after their CT in a viewer).
"""

from __future__ import annotations

from dataclasses import dataclass

from deepcac2.pipeline.stage_values import ModelCard

#: the toolkit, as it names itself in SeriesDescription and SegmentAlgorithmName
TOOLKIT = "DeepCAC2"
MANUFACTURER = "deepcac2 project"
#: ContentCreatorName of every SEG (a PN with one component and a caret, so it is not a family name alone)
CONTENT_CREATOR_NAME = "DeepCAC2^Automatic"
#: BodyPartExamined of every SEG and SR: NLST is chest CT (IDC indexes series by it)
BODY_PART_EXAMINED = "CHEST"
_LO = 64  # SeriesDescription, SegmentAlgorithmName: LO, 64 characters
_IS_MAX = 2**31 - 1


@dataclass(frozen=True)
class ObjectKind:
    """One kind of object we write per CT series."""

    #: UID derivation prefix, e.g. "seg" gives "seg-series", "seg-sop"
    uid_prefix: str
    series_offset: int
    #: what it is, in its SeriesDescription
    title: str
    #: SEG ContentLabel (CS, 16 characters); "" for the SR
    content_label: str = ""


CAC_SEG = ObjectKind("seg", 41, "CAC Segmentation", "CAC")
SR = ObjectKind("sr", 42, "CAC Measurements")
VESSEL_SEG = ObjectKind("vessel-seg", 43, "Vessel CAC Segmentation", "CAC_VESSELS")
HEART_SEG = ObjectKind("heart-seg", 44, "Heart Segmentation", "HEART")


def source_series_number(value: object) -> int:
    """The source's SeriesNumber as an int; missing or not a number counts as 0."""
    try:
        return abs(int(str(value))) if value not in (None, "") else 0
    except ValueError:
        return 0


def derived_series_number(source: object, offset: int) -> int:
    """``source x 100 + offset``; huge source numbers wrap to stay a valid IS."""
    src = source_series_number(source)
    number = src * 100 + offset
    return number if number <= _IS_MAX else (src % 10_000_000) * 100 + offset


def algorithm_name(card: ModelCard) -> str:
    """``DeepCAC2(<model> <version>)``: toolkit, model and version, as IDC's ``TotalSegmentator v1.5.6``."""
    inner = f"{card.name} {card.version}"
    room = _LO - len(TOOLKIT) - 2
    return f"{TOOLKIT}({inner[:room]})"


def series_description(kind: ObjectKind, card: ModelCard, source: object) -> str:
    """``DeepCAC2(<model> <version>) <title> of Series N``, the model part shortened to fit 64 characters."""
    tail = f" {kind.title} of Series {source_series_number(source)}"
    head = algorithm_name(card)
    if len(head) + len(tail) > _LO:  # shorten the model name, marked "~", and keep its version
        room = max(1, _LO - len(tail) - len(TOOLKIT) - len(card.version) - 4)
        head = f"{TOOLKIT}({card.name[:room]}~ {card.version})"
    return (head + tail)[:_LO]


def software_versions(card: ModelCard, toolkit_version: str) -> list[str]:
    """SoftwareVersions of every SEG and SR: the toolkit and the model, each at most 64 characters (LO)."""
    return [f"deepcac2 {toolkit_version}"[:_LO], f"{card.name} {card.version}"[:_LO]]


def model_name(card: ModelCard) -> str:
    """ManufacturerModelName of every SEG and SR: the model's name."""
    return card.name[:_LO]
