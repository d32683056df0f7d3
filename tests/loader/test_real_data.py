"""Real public CT (not NLST) from ../shared/data: geometry against SimpleITK, HU sanity, the two bad cases."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader import LoadOptions, load_series

pytestmark = pytest.mark.shared_data

LUNG_A1 = "lung-pet-ct-dx/Lung_Dx-A0001/2.000000-5mm-40805"


def _sitk_read(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_lung_series_matches_simpleitk(shared_data):
    folder = shared_data / LUNG_A1
    vol = load_series(folder)
    ref = _sitk_read(folder)
    assert vol.shape == (64, 512, 512)
    np.testing.assert_allclose(vol.geometry.origin, ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(vol.geometry.spacing, ref.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(vol.geometry.direction, ref.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(vol.hu, sitk.GetArrayFromImage(ref))
    assert vol.geometry.spacing[0] == pytest.approx(0.84, abs=0.01)
    assert vol.geometry.spacing[2] == pytest.approx(5.0)
    assert vol.slice_thickness == pytest.approx(5.0)


def test_lung_series_hu_is_plausible(shared_data):
    hu = load_series(shared_data / LUNG_A1).hu
    mid = hu[32].astype(np.int32)
    scanned = mid[mid > -1024]  # -1024 is the padding outside the reconstruction circle
    bins, counts = np.unique(scanned // 10 * 10, return_counts=True)
    assert -1020 <= bins[np.argmax(counts)] <= -980  # the commonest value in a chest slice is air
    centre = np.median(mid[230:280, 230:280])  # mediastinum / heart
    assert -100 < centre < 100


def test_two_series_in_one_study_folder(shared_data):
    study = shared_data / "lung-pet-ct-dx/Lung_Dx-A0002"
    with pytest.raises(DeepCACError) as info:
        load_series(study)
    assert info.value.code == ErrorCode.E_MIXED_SERIES
    b70 = next(study.glob("*B70f*"))
    uid = pydicom.dcmread(next(b70.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    vol = load_series(study, series_uid=uid)
    ref = _sitk_read(b70)
    assert vol.shape == (30, 512, 512)
    np.testing.assert_allclose(vol.geometry.origin, ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(vol.geometry.spacing, ref.GetSpacing(), atol=1e-4)


def test_gantry_tilt_rejected_by_default(shared_data):
    with pytest.raises(DeepCACError) as info:
        load_series(shared_data / "ge-gantry-tilt")
    assert info.value.code == ErrorCode.E_GEOMETRY_TILT
    assert "18.5" in info.value.message


def test_gantry_tilt_also_has_uneven_gaps(shared_data):
    with pytest.raises(DeepCACError) as info:
        load_series(shared_data / "ge-gantry-tilt", LoadOptions(tilt_policy="correct"))
    assert info.value.code == ErrorCode.E_GEOMETRY_UNEVEN


def test_gantry_tilt_corrected_to_an_orthogonal_grid(shared_data):
    folder = shared_data / "ge-gantry-tilt"
    vol = load_series(folder, LoadOptions(tilt_policy="correct", gap_policy="resample"))
    d = vol.geometry.direction_matrix
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-6)
    # the slice axis leans 18.5 degrees from patient z, as the gantry did
    assert math.degrees(math.acos(d[2, 2])) == pytest.approx(18.5, abs=0.05)
    # the first 14 slices are 4.22 mm apart in z; along the tilted normal that is 4.22 * cos(18.5)
    z = sorted(float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]) for p in folder.iterdir())
    assert vol.geometry.spacing[2] == pytest.approx((z[1] - z[0]) * math.cos(math.radians(18.5)), rel=1e-3)
    extent_along_normal = (z[-1] - z[0]) * math.cos(math.radians(18.5))
    assert vol.shape[0] == math.floor(extent_along_normal / vol.geometry.spacing[2] + 0.01) + 1
    assert len(vol.notes) == 2  # one for the tilt, one for the resampling
    # linear interpolation cannot leave the range of the source HU (slope 1, intercept 0 here)
    raw = [pydicom.dcmread(p).pixel_array for p in folder.iterdir()]
    assert min(a.min() for a in raw) <= vol.hu.min() and vol.hu.max() <= max(a.max() for a in raw)
    assert vol.hu.max() > 1000  # the skull is still there


def test_jpeg2000_with_empty_uids_is_twenty_slices(shared_data):
    folder = shared_data / "jpeg2000-empty-uids"
    vol = load_series(folder)
    assert vol.shape == (20, 512, 512)
    assert vol.series_uid == ""
    assert len({ref.path for ref in vol.instances}) == 20
    assert any("cannot be referenced" in n for n in vol.notes)
    # independent read: plain pydicom, sorted by z (the orientation is axial)
    slices = sorted((pydicom.dcmread(p) for p in folder.iterdir()), key=lambda ds: float(ds.ImagePositionPatient[2]))
    for k, ds in enumerate(slices):
        expected = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
        np.testing.assert_array_equal(vol.hu[k], expected)
    assert vol.geometry.spacing[2] == pytest.approx(2.0)
    with pytest.raises(DeepCACError) as info:
        load_series(folder, LoadOptions(empty_uids="fail"))
    assert info.value.code == ErrorCode.E_UID_INVALID
