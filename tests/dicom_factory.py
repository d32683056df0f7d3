"""One builder of small CT image datasets for every test folder (written with plain pydicom).

Independent of the project's code on purpose: tests compare what the project reads
against what was written here. Each folder's helper (loader/factory.py,
convert/synthetic.py, cohort/cohort_dicom.py, sources/sources_dicom.py) adds only what
its tests need on top. Importable as ``dicom_factory``: ``tests/`` is on ``sys.path``
because its conftest.py sits in a folder without ``__init__.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def ct_slice(
    pixels: np.ndarray,
    *,
    series_uid: str,
    study_uid: str,
    sop_uid: str | None = None,
    position: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    pixel_spacing: Sequence[float] | None = (0.7, 0.7),
    slope: float | None = 1.0,
    intercept: float | None = -1024.0,
    patient_id: str = "P1",
    modality: str = "CT",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    **attributes: object,
) -> Dataset:
    """A CT Image Storage dataset with file meta, holding ``pixels`` (int16 or uint16, rows x cols).

    Bits and Pixel Representation follow the dtype. ``attributes`` (keyword=value) are set
    last, so they may add to or override anything above; ``None`` leaves an attribute out.
    """
    if pixels.dtype not in (np.int16, np.uint16) or pixels.ndim != 2:
        raise ValueError(f"pixels must be a 2-D int16 or uint16 array, not {pixels.dtype} {pixels.shape}")
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.PatientID = study_uid, series_uid, patient_id
    ds.Modality, ds.ImageType = modality, list(image_type)
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    values = {"PixelSpacing": pixel_spacing, "RescaleSlope": slope, "RescaleIntercept": intercept}
    for keyword, value in values.items():
        if value is not None:
            setattr(ds, keyword, list(value) if isinstance(value, Sequence) else value)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.PixelData = pixels.tobytes()
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def to_bytes(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
