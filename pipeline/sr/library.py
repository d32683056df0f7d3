"""The TID 1600 Image Library of a series, built fast.

highdicom's ``ImageLibrary`` repeats all 16 descriptors in every entry; for a 150-slice
series that is 2,400 content items, and building, copying and writing them made the
SR ten times slower than the SEG. TID 1600 lets an Image Library Group carry the
descriptors its images share, so we write them once per group. The per-image
descriptors (TID 1601 row 2, Image Position (Patient) X/Y/Z) are optional ("U") and
we leave them out: they tripled the SR's size and write time, and every position is
in the source CT and in the SEG's per-frame Plane Position. Each entry is then just
the image reference. Content items are still highdicom's; the shared values come
from highdicom's own ``ImageLibraryEntryDescriptors`` of the first image.

The library is attached *after* ``Comprehensive3DSR`` is built (its constructor deep-
copies and searches the content tree); the evidence it records already lists every
source image.
"""

from __future__ import annotations

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from deepcac2.pipeline.dicomout.geometry_attributes import geometry_header
from deepcac2.pipeline.stage_values import CTVolume

#: Descriptor values (PS3.16 DCM 110901-110903) that differ from slice to slice: not shared
_POSITION_CODES = ("110901", "110902", "110903")
SOURCE = hd.sr.CodedConcept("260753009", "SCT", "Source")
#: Attributes whose descriptors a group shares (spacing and orientation are the volume's: one value)
_SHARED = ("SOPClassUID", "Modality", "FrameOfReferenceUID", "Rows", "Columns")


def _shared_key(ds: Dataset) -> tuple:
    return tuple(str(ds.get(k)) for k in _SHARED)


def image_library(ct: CTVolume, headers: list[Dataset] | None = None) -> hd.sr.ContainerContentItem:
    """The Image Library container: one group per set of shared descriptors (one for a clean series).

    ``headers``: the source headers to describe (``dicomout.source``'s clean copies); ``ct.headers`` by default.
    """
    headers = ct.headers if headers is None else headers
    library = hd.sr.ContainerContentItem(
        name=codes.DCM.ImageLibrary, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    groups: dict[tuple, list[Dataset]] = {}
    for ds in headers:
        groups.setdefault(_shared_key(ds), []).append(ds)
    library.ContentSequence = hd.sr.ContentSequence([_group(ct, images) for images in groups.values()])
    return library


def _group(ct: CTVolume, images: list[Dataset]) -> hd.sr.ContainerContentItem:
    descriptors = hd.sr.ImageLibraryEntryDescriptors(geometry_header(ct, images[0]))
    shared = [d for d in descriptors if d.ConceptNameCodeSequence[0].CodeValue not in _POSITION_CODES]
    group = hd.sr.ContainerContentItem(
        name=codes.DCM.ImageLibraryGroup, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    group.ContentSequence = hd.sr.ContentSequence([*shared, *(_entry(ds) for ds in images)])
    return group


def _entry(ds: Dataset) -> hd.sr.ImageContentItem:
    return hd.sr.ImageContentItem(
        name=SOURCE,
        referenced_sop_class_uid=ds.SOPClassUID,
        referenced_sop_instance_uid=ds.SOPInstanceUID,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )


def attach(sr: Dataset, library: hd.sr.ContainerContentItem) -> None:
    """Put the library where TID 1500 has it: right before the Imaging Measurements container."""
    content = sr.ContentSequence
    at = next(
        (i for i, item in enumerate(content) if item.ConceptNameCodeSequence[0].CodeValue == "126010"),
        len(content),
    )
    content.insert(at, library)
