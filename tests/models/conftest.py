"""Helpers for the model tests: real CT series read with SimpleITK (independent of our loader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from deepcac2.pipeline import stage_values

REAL_SERIES = {
    "A0001-B": "lung-pet-ct-dx/Lung_Dx-A0001/3.000000-5mm-41315",
    "A0001-L": "lung-pet-ct-dx/Lung_Dx-A0001/2.000000-5mm-40805",
    "A0002-B40f": "lung-pet-ct-dx/Lung_Dx-A0002/3.000000-ThoraxRoutine_8.0.0_B40f-10983",
    "A0002-B70f": "lung-pet-ct-dx/Lung_Dx-A0002/2.000000-ThoraxRoutine_8.0.0_B70f-62919",
    # severe coronary calcium, heart against the front chest wall, mitral annular calcification (CC BY-NC 3.0:
    # tests and figures only)
    "LUNG1-001": "nsclc-radiomics/LUNG1-001",
}


def read_ct(folder: Path) -> stage_values.CTVolume:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    img = reader.Execute()
    return stage_values.CTVolume(
        hu=sitk.GetArrayFromImage(img).astype(np.int16),
        geometry=stage_values.Geometry(img.GetOrigin(), img.GetSpacing(), img.GetDirection()),
        series_uid=folder.name,
    )


@pytest.fixture(scope="session")
def real_ct(shared_data):
    cache: dict[str, stage_values.CTVolume] = {}

    def get(name: str) -> stage_values.CTVolume:
        if name not in cache:
            cache[name] = read_ct(shared_data / REAL_SERIES[name])
        return cache[name]

    return get


@pytest.fixture(scope="session")
def real_series_path(shared_data):
    def get(name: str) -> Path:
        return shared_data / REAL_SERIES[name]

    return get
