"""Enumerated values of the SEG writer."""

from __future__ import annotations

from enum import StrEnum


class SegEncoding(StrEnum):
    """How segments are stored.

    BINARY: one bit per voxel per segment, overlapping segments allowed, empty frames
    omitted; every DICOM viewer and dcmqi read it. LABELMAP (DICOM 2024): one label
    per voxel, far smaller, few readers yet; overlaps are resolved by
    ``content.labelmap_priority`` (the most specific segment wins).
    """

    BINARY = "binary"
    LABELMAP = "labelmap"
