"""Tiny CT files for the --from-dir tests (a module name unique across test folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


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
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient, study, series
    ds.Modality, ds.SeriesDescription, ds.ImageType = "CT", description, list(image_type)
    ds.Manufacturer, ds.ManufacturerModelName = "SIEMENS", "Sensation 16"
    ds.ConvolutionKernel, ds.SliceThickness, ds.KVP, ds.XRayTubeCurrent = kernel, thickness, 120, 60
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, z], [1, 0, 0, 0, 1, 0]
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelSpacing, ds.RescaleIntercept, ds.RescaleSlope = [0.7, 0.7], -1024, 1
    ds.PixelData = np.zeros((4, 4), dtype=np.int16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
