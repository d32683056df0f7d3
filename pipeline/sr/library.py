"""The TID 1600 Image Library of a series, built fast.

highdicom's ``ImageLibrary`` repeats all 16 descriptors in every entry; for a 150-slice
series that is 2,400 content items, and building, copying and writing them made the
SR ten times slower than the SEG. TID 1600 lets an Image Library Group carry the
descriptors its images share, so we write them once per group and give each entry only
its Image Position (Patient) X/Y/Z. Content items are still highdicom's; the values
come from highdicom's own ``ImageLibraryEntryDescriptors`` of the first image.

The library is attached *after* ``Comprehensive3DSR`` is built (its constructor deep-
copies and searches the content tree); the evidence it records already lists every
source image.
"""

from __future__ import annotations

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

#: Descriptor values (PS3.16 DCM 110901-110903) that differ from slice to slice
_POSITION_CODES = ("110901", "110902", "110903")
SOURCE = hd.sr.CodedConcept("260753009", "SCT", "Source")
#: Attributes whose descriptors the group shares; they must be equal on every image
_SHARED = ("SOPClassUID", "Modality", "FrameOfReferenceUID", "Rows", "Columns", "PixelSpacing", "SliceThickness",
           "ImageOrientationPatient")  # fmt: skip


def _shared_key(ds: Dataset) -> tuple:
    return tuple(str(ds.get(k)) for k in _SHARED)


def image_library(headers: list[Dataset]) -> hd.sr.ContainerContentItem:
    """The Image Library container: one group per set of shared descriptors (one for a clean series)."""
    library = hd.sr.ContainerContentItem(
        name=codes.DCM.ImageLibrary, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    groups: dict[tuple, list[Dataset]] = {}
    for ds in headers:
        groups.setdefault(_shared_key(ds), []).append(ds)
    library.ContentSequence = hd.sr.ContentSequence([_group(images) for images in groups.values()])
    return library


def _group(images: list[Dataset]) -> hd.sr.ContainerContentItem:
    descriptors = list(hd.sr.ImageLibraryEntryDescriptors(images[0]))
    position = [d for d in descriptors if d.ConceptNameCodeSequence[0].CodeValue in _POSITION_CODES]
    shared = [d for d in descriptors if d.ConceptNameCodeSequence[0].CodeValue not in _POSITION_CODES]
    group = hd.sr.ContainerContentItem(
        name=codes.DCM.ImageLibraryGroup, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    group.ContentSequence = hd.sr.ContentSequence([*shared, *(_entry(ds, position) for ds in images)])
    return group


def _entry(ds: Dataset, position_templates: list[Dataset]) -> hd.sr.ImageContentItem:
    entry = hd.sr.ImageContentItem(
        name=SOURCE,
        referenced_sop_class_uid=ds.SOPClassUID,
        referenced_sop_instance_uid=ds.SOPInstanceUID,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    items = []
    if "ImagePositionPatient" in ds and len(position_templates) == 3:
        for template, value in zip(position_templates, ds.ImagePositionPatient, strict=True):
            items.append(
                hd.sr.NumContentItem(
                    name=hd.sr.CodedConcept.from_dataset(template.ConceptNameCodeSequence[0]),
                    value=float(value),
                    unit=hd.sr.CodedConcept.from_dataset(
                        template.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
                    ),
                    relationship_type=hd.sr.RelationshipTypeValues.HAS_ACQ_CONTEXT,
                )
            )
    if items:
        entry.ContentSequence = hd.sr.ContentSequence(items)
    return entry


def attach(sr: Dataset, library: hd.sr.ContainerContentItem) -> None:
    """Put the library where TID 1500 has it: right before the Imaging Measurements container."""
    content = sr.ContentSequence
    at = next(
        (i for i, item in enumerate(content) if item.ConceptNameCodeSequence[0].CodeValue == "126010"),
        len(content),
    )
    content.insert(at, library)
