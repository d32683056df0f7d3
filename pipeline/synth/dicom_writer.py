"""Write a phantom as an NLST-like CT Image Storage series, one file per slice.

Encodings, all lossless for the HU the phantoms hold:

* unsigned (default): PixelRepresentation 0, 12 bits stored, RescaleIntercept -1024;
* ``signed=True``: PixelRepresentation 1, 16 bits stored, RescaleIntercept 0;
* ``rescale=(slope, intercept)``: unsigned 16 bits with that rescale; refused unless
  every HU is exactly representable (slope 0.5 always is for integer HU).

Transfer syntaxes: Explicit VR Little Endian, Implicit VR Little Endian, RLE Lossless
and JPEG 2000 Lossless (pydicom's encoders; pylibjpeg-openjpeg for JPEG 2000).
Instance 1 is the most superior slice, as in head-first NLST series; file ``<n>.dcm``
holds instance ``n``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.synth.nlst_headers import SeriesMeta, uid
from deepcac2.pipeline.synth.phantom import Phantom

SUPPORTED_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, JPEG2000Lossless)


def ds_str(value: float) -> str:
    """A decimal string of at most 16 characters."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text[:16]


def _encoding(signed: bool, rescale: tuple[float, float] | None) -> tuple[int, int, float, float]:
    """(PixelRepresentation, BitsStored, slope, intercept)."""
    if rescale is not None:
        if signed:
            raise DeepCACError(ErrorCode.E_SYNTH_SPEC, "choose either signed pixels or a custom rescale, not both")
        return 0, 16, float(rescale[0]), float(rescale[1])
    return (1, 16, 1.0, 0.0) if signed else (0, 12, 1.0, -1024.0)


def to_stored(hu: np.ndarray, representation: int, bits: int, slope: float, intercept: float) -> np.ndarray:
    """HU to stored values; raises when that is not exact."""
    stored = (hu.astype(np.float64) - intercept) / slope
    rounded = np.rint(stored)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if representation else (0, 2**bits - 1)
    if not np.array_equal(rounded, stored) or rounded.min() < lo or rounded.max() > hi:
        raise DeepCACError(
            ErrorCode.E_SYNTH_SPEC, f"HU are not exactly representable with slope {slope}, intercept {intercept}"
        )
    return rounded.astype(np.int16 if representation else np.uint16)


def base_dataset(phantom: Phantom, meta: SeriesMeta, description: str | None = None) -> Dataset:
    """Everything that is the same on every slice of the series."""
    g = phantom.geometry
    nz, ny, nx = phantom.hu.shape
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SpecificCharacterSet = "ISO_IR 100"
    for attr in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, attr, meta.study_date)
    for attr in ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"):
        setattr(ds, attr, meta.study_time)
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = meta.scanner.manufacturer
    ds.ManufacturerModelName = meta.scanner.model
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic NLST-like low-dose chest CT"
    ds.SeriesDescription = description or meta.describe(nx * g.spacing[0], phantom.slice_thickness_mm, phantom.kvp)
    ds.PatientName = f"SYNTHETIC^{meta.patient_id}"
    ds.PatientID = meta.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = meta.patient_sex
    ds.PatientAge = f"{meta.patient_age_years:03d}Y"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic phantom, no patient data"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = ds_str(phantom.slice_thickness_mm)
    ds.KVP = str(int(phantom.kvp))
    ds.DataCollectionDiameter = "500"
    ds.SoftwareVersions = f"deepcac2-synth {__version__}"
    ds.ReconstructionDiameter = ds_str(nx * g.spacing[0])
    ds.GantryDetectorTilt = "0"
    ds.XRayTubeCurrent = str(meta.tube_current_ma)
    ds.ConvolutionKernel = meta.kernel
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = meta.study_uid
    ds.SeriesInstanceUID = meta.series_uid
    ds.StudyID = str(meta.study_year)
    ds.SeriesNumber = meta.series_number
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [ds_str(v) for v in _orientation(g.direction)]
    ds.FrameOfReferenceUID = meta.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = ny, nx
    ds.PixelSpacing = [ds_str(g.spacing[1]), ds_str(g.spacing[0])]
    ds.BitsAllocated = 16
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.RescaleType = "HU"
    if phantom.mass_factor is not None:
        ds.CalciumScoringMassFactorPatient = float(phantom.mass_factor)
    return ds


def _orientation(direction: Sequence[float]) -> list[float]:
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    return [*d[:, 0], *d[:, 1]]


def slice_datasets(phantom: Phantom, meta: SeriesMeta, *, signed: bool = False, rescale=None) -> list[Dataset]:
    """One dataset per slice, instance 1 first (the most superior slice), without file meta."""
    rep, bits, slope, intercept = _encoding(signed, rescale)
    stored = to_stored(phantom.hu, rep, bits, slope, intercept)
    base = base_dataset(phantom, meta)
    base.BitsStored, base.HighBit, base.PixelRepresentation = bits, bits - 1, rep
    base.RescaleIntercept, base.RescaleSlope = ds_str(intercept), ds_str(slope)
    g = phantom.geometry
    nz = phantom.hu.shape[0]
    out = []
    for n in range(1, nz + 1):
        k = nz - n
        ds = copy.deepcopy(base)  # own elements: defects edit single slices later
        ds.SOPInstanceUID = uid(meta.series_uid, "sop", n)
        ds.InstanceNumber = n
        pos = g.index_to_lps(np.array([0.0, 0.0, float(k)]))
        ds.ImagePositionPatient = [ds_str(v) for v in pos]
        ds.SliceLocation = ds_str(pos[2])
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        out.append(ds)
    return out


def localizer_dataset(phantom: Phantom, meta: SeriesMeta, instance: int = 1) -> Dataset:
    """A coronal projection radiograph (OPL) of the phantom, as a CT localizer image."""
    g = phantom.geometry
    proj = phantom.hu.astype(np.float32).mean(axis=1)[::-1]  # rows from superior to inferior
    image = np.clip(np.rint(proj), -1024, 3071).astype(np.int16)
    ds = base_dataset(phantom, meta, description=meta.describe(phantom.hu.shape[2] * g.spacing[0], None, phantom.kvp))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    del ds.RescaleType  # HU is not what a projection holds
    ds.SliceThickness = ""
    ds.SOPInstanceUID = uid(meta.series_uid, "sop", "localizer", instance)
    ds.InstanceNumber = instance
    top = g.index_to_lps(np.array([0.0, 0.0, phantom.hu.shape[0] - 1.0]))
    ds.ImagePositionPatient = [ds_str(top[0]), "0", ds_str(top[2])]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]
    ds.Rows, ds.Columns = image.shape
    ds.PixelSpacing = [ds_str(g.spacing[2]), ds_str(g.spacing[0])]
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.PixelData = to_stored(image, 0, 12, 1.0, -1024.0).tobytes()
    return ds


def save(ds: Dataset, path: Path, transfer_syntax: UID = ExplicitVRLittleEndian) -> Path:
    """Write one dataset as a DICOM file (preamble and file meta), compressing if asked."""
    if transfer_syntax not in SUPPORTED_SYNTAXES:
        raise DeepCACError(ErrorCode.E_SYNTH_SPEC, f"transfer syntax {transfer_syntax} is not supported here")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if transfer_syntax.is_compressed:
        plugin = "pylibjpeg" if transfer_syntax == JPEG2000Lossless else ""
        # lossless: the image is the same instance, so keep its (deterministic) SOPInstanceUID
        ds.compress(transfer_syntax, encoding_plugin=plugin, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    phantom: Phantom,
    meta: SeriesMeta,
    out_dir: str | Path,
    *,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    signed: bool = False,
    rescale: tuple[float, float] | None = None,
) -> list[Path]:
    """Write the phantom as one CT series in ``out_dir`` (``1.dcm`` ... ``N.dcm``); returns the paths."""
    out = Path(out_dir)
    return [
        save(ds, out / f"{ds.InstanceNumber}.dcm", transfer_syntax)
        for ds in slice_datasets(phantom, meta, signed=signed, rescale=rescale)
    ]


def write_localizer(phantom: Phantom, meta: SeriesMeta, out_dir: str | Path) -> list[Path]:
    """Write a one-image OPL localizer series."""
    return [save(localizer_dataset(phantom, meta), Path(out_dir) / "1.dcm")]
