"""Tiny CT files for the --from-dir tests (a module name unique across test folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dicom_factory import ct_slice, save


def write_ct(
    path: Path,
    *,
    series: str,
    study: str,
    patient: str = "P1",
    z: float = 0.0,
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    kernel: str = "B30f",
    thickness: float = 2.5,
    description: str = "chest",
) -> Path:
    """A tiny but valid CT image file (4x4 pixels) with the header fields the indexer reads."""
    ds = ct_slice(
        np.zeros((4, 4), np.int16),
        series_uid=series,
        study_uid=study,
        patient_id=patient,
        position=(0, 0, z),
        image_type=image_type,
        SeriesDescription=description,
        Manufacturer="SIEMENS",
        ManufacturerModelName="Sensation 16",
        ConvolutionKernel=kernel,
        SliceThickness=thickness,
        KVP=120,
        XRayTubeCurrent=60,
    )
    return save(ds, path)
