"""A tiny CT series writer for loader tests: known pixels, known geometry, one knob per defect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


@dataclass
class Spec:
    """One synthetic series. Slice k sits at ``origin + k * dz * normal``; stored pixels are ``stored(k)``."""

    n: int = 6
    rows: int = 32
    cols: int = 32
    #: (row spacing, column spacing) as written into PixelSpacing
    pixel_spacing: tuple[float, float] = (0.8, 0.7)
    dz: float = 2.5
    origin: tuple[float, float, float] = (-10.0, -20.0, 30.0)
    iop: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    slope: float = 1.0
    intercept: float = -1024.0
    signed: bool = False
    modality: str = "CT"
    series_uid: str = field(default_factory=lambda: generate_uid())
    study_uid: str = field(default_factory=lambda: generate_uid())

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.iop[:3], self.iop[3:])

    def position(self, k: int) -> np.ndarray:
        return np.asarray(self.origin) + k * self.dz * self.normal

    def stored(self, k: int) -> np.ndarray:
        """Distinct, smooth content: linear in k, so linear resampling has an exact expected value."""
        j, i = np.mgrid[0 : self.rows, 0 : self.cols]
        values = 100 * k + 3 * j + i + (-500 if self.signed else 0)
        return values.astype(np.int16 if self.signed else np.uint16)


def make_dataset(spec: Spec, k: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = spec.series_uid
    ds.StudyInstanceUID = spec.study_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.PatientID = "LOADER-TEST"
    ds.Modality = spec.modality
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    # reversed on purpose: the loader must not sort by InstanceNumber
    ds.InstanceNumber = spec.n - k
    ds.ImagePositionPatient = [float(v) for v in spec.position(k)]
    ds.ImageOrientationPatient = list(spec.iop)
    ds.PixelSpacing = list(spec.pixel_spacing)
    ds.SliceThickness = spec.dz
    ds.KVP = 120
    ds.RescaleSlope = spec.slope
    ds.RescaleIntercept = spec.intercept
    ds.Rows, ds.Columns = spec.rows, spec.cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if spec.signed else 0
    ds.PixelData = spec.stored(k).tobytes()
    return ds


Mutate = Callable[[int, Dataset], object]


def write_series(folder: Path, spec: Spec, mutate: Mutate | None = None) -> list[Path]:
    """Write the series; file names run against slice order. ``mutate(k, ds)`` may edit a slice."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(spec.n):
        ds = make_dataset(spec, k)
        if mutate is not None:
            mutate(k, ds)
        path = folder / f"img{(7 * k + 3) % 100:03d}_{k}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def expected_hu(spec: Spec, k: int) -> np.ndarray:
    return spec.stored(k).astype(np.float64) * spec.slope + spec.intercept
