"""A tiny CT series writer for loader tests: known pixels, known geometry, one knob per defect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from dicom_factory import ct_slice
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid


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
    return ct_slice(
        spec.stored(k),
        series_uid=spec.series_uid,
        study_uid=spec.study_uid,
        position=spec.position(k),
        orientation=spec.iop,
        pixel_spacing=spec.pixel_spacing,
        slope=spec.slope,
        intercept=spec.intercept,
        patient_id="LOADER-TEST",
        modality=spec.modality,
        FrameOfReferenceUID="1.2.826.0.1.3680043.8.498.1",
        InstanceNumber=spec.n - k,  # reversed on purpose: the loader must not sort by InstanceNumber
        SliceThickness=spec.dz,
        KVP=120,
    )


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
