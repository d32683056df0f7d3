"""Enumerated values of the SEG writer."""

from __future__ import annotations

from enum import StrEnum


class SegEncoding(StrEnum):
    """How segments are stored.

    BINARY: one bit per voxel per segment (our segments never overlap), empty frames
    omitted; every DICOM viewer and dcmqi read it. LABELMAP (DICOM 2024): one label
    per voxel, far smaller, few readers yet.
    """

    BINARY = "binary"
    LABELMAP = "labelmap"


class SegKind(StrEnum):
    """Which of a CT series' SEGs (see ``content``): calcium, calcium by vessel, or a heart made here."""

    CAC = "cac"
    VESSELS = "vessels"
    HEART = "heart"
