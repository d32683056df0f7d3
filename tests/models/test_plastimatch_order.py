"""Our loader gives the array plastimatch gives the published pipeline (its NIfTI is DeepCAC2's input).

Plastimatch's DICOM loader (``base/dcmtk_file.cxx``, ``base/dcmtk_loader.cxx``), as read from
its source: the slice normal is ``row x col`` of ImageOrientationPatient; each slice's
position is ``IPP . normal``; slices are sorted by it, ascending; the volume's axes are
(row, col, normal), its origin the first slice's IPP, its x spacing PixelSpacing[1] (the
column spacing), y PixelSpacing[0], z the gap between positions. Below that rule is written
out independently and compared with ``load_series`` on feet-first and non-square series, in
shuffled file order: same voxels at the same indices, same geometry. So TorchIO's
index-dependent rules (grid corner, crop half-voxel, window starts) see the same array.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from dicom_factory import ct_slice, save
from pydicom.uid import generate_uid

from deepcac2.pipeline.loader import load_series


def _plastimatch_volume(slices: list[dict]) -> tuple[np.ndarray, tuple, tuple, tuple]:
    row, col = np.array(slices[0]["iop"][:3]), np.array(slices[0]["iop"][3:])
    normal = np.cross(row, col)
    ordered = sorted(slices, key=lambda s: float(np.dot(s["ipp"], normal)))
    positions = [float(np.dot(s["ipp"], normal)) for s in ordered]
    volume = np.stack([s["pixels"] for s in ordered]).astype(np.int16) - 1024
    spacing = (slices[0]["ps"][1], slices[0]["ps"][0], positions[1] - positions[0])
    direction = tuple(np.column_stack([row, col, normal]).ravel())
    return volume, tuple(ordered[0]["ipp"]), spacing, direction


@pytest.mark.parametrize(
    ("iop", "pixel_spacing", "step"),
    [
        ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), (0.7, 0.7), 2.5),  # head-first supine
        ((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0), (0.7, 0.7), -2.5),  # feet-first supine: normal points to the feet
        ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), (0.8, 0.6), 2.5),  # non-square pixels
        ((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0), (0.9, 0.65), 3.0),  # feet-first prone, non-square
    ],
)
def test_loader_array_and_geometry_are_plastimatch_s(tmp_path, iop, pixel_spacing, step):
    rng = np.random.default_rng(0)
    series, study = generate_uid(), generate_uid()
    slices = []
    for k in range(5):
        pixels = rng.integers(0, 2000, size=(6, 7)).astype(np.int16)
        ipp = [-40.0, 20.0, 100.0 + step * k]
        slices.append({"iop": iop, "ipp": ipp, "ps": pixel_spacing, "pixels": pixels})
    order = list(range(5))
    random.Random(1).shuffle(order)  # file order says nothing
    for n, k in enumerate(order):
        s = slices[k]
        ds = ct_slice(
            s["pixels"],
            series_uid=series,
            study_uid=study,
            position=s["ipp"],
            orientation=iop,
            pixel_spacing=pixel_spacing,
        )
        save(ds, tmp_path / f"{n:03d}.dcm")
    ct = load_series(tmp_path)
    volume, origin, spacing, direction = _plastimatch_volume(slices)
    np.testing.assert_array_equal(ct.hu, volume)
    np.testing.assert_allclose(ct.geometry.origin, origin, atol=1e-6)
    np.testing.assert_allclose(ct.geometry.spacing, spacing, atol=1e-6)
    np.testing.assert_allclose(ct.geometry.direction, direction, atol=1e-9)
