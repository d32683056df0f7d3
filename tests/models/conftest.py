"""Helpers for the model tests: real CT series read with SimpleITK (independent of our loader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from deepcac2.pipeline import stage_values
from deepcac2.pipeline.dev.classical_figures import REAL_SERIES  # the real chests, one list for figures and tests


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
