"""Well-formed series: HU values, slice order, geometry, metadata, light headers."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from deepcac2.pipeline.dev.load_floor import read_and_stack
from deepcac2.pipeline.loader import LoadOptions, load_series

from .factory import expected_hu


def test_hu_and_order_follow_positions_not_instance_numbers(series):
    folder, spec = series()
    vol = load_series(folder)
    assert vol.hu.dtype == np.int16
    assert vol.shape == (spec.n, spec.rows, spec.cols)
    for k in range(spec.n):
        np.testing.assert_array_equal(vol.hu[k], expected_hu(spec, k))
    # InstanceNumber runs n..1 in the files; slice 0 must still be the lowest position
    assert [h.InstanceNumber for h in vol.headers] == list(range(spec.n, 0, -1))
    assert vol.notes == ()


def test_geometry_maps_every_slice_to_its_own_position(series):
    # coronal, with the normal pointing to -y: sorting must follow the normal, not z
    folder, spec = series(iop=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0), n=5)
    vol = load_series(folder)
    g = vol.geometry
    assert g.spacing == pytest.approx((spec.pixel_spacing[1], spec.pixel_spacing[0], spec.dz))
    for k, header in enumerate(vol.headers):
        np.testing.assert_allclose(g.index_to_lps([0, 0, k]), [float(v) for v in header.ImagePositionPatient])
    # voxel (i=1, j=0) is one column spacing along the row direction cosine
    np.testing.assert_allclose(g.index_to_lps([1, 0, 0]) - g.index_to_lps([0, 0, 0]), [spec.pixel_spacing[1], 0, 0])
    np.testing.assert_allclose(g.index_to_lps([0, 1, 0]) - g.index_to_lps([0, 0, 0]), [0, 0, -spec.pixel_spacing[0]])
    np.testing.assert_allclose(g.direction_matrix.T @ g.direction_matrix, np.eye(3), atol=1e-12)
    assert np.linalg.det(g.direction_matrix) == pytest.approx(1.0)


def test_metadata_instances_and_light_headers(series):
    folder, spec = series()
    vol = load_series(folder)
    assert vol.series_uid == spec.series_uid
    assert vol.study_uid == spec.study_uid
    assert vol.patient_id == "LOADER-TEST"
    assert vol.kvp == 120.0
    assert vol.slice_thickness == spec.dz
    assert vol.mass_factor is None
    assert len(vol.instances) == spec.n
    for ref, header in zip(vol.instances, vol.headers, strict=True):
        assert ref.sop_instance_uid == header.SOPInstanceUID
        assert pydicom.dcmread(ref.path).SOPInstanceUID == ref.sop_instance_uid
        assert "PixelData" not in header


def test_file_list_source_equals_folder_source(series):
    folder, _ = series()
    files = sorted(folder.iterdir(), reverse=True)
    np.testing.assert_array_equal(load_series(files).hu, load_series(folder).hu)


def test_fractional_rescale_gives_float32(series):
    folder, spec = series(slope=0.5, intercept=-1000.25)
    vol = load_series(folder)
    assert vol.hu.dtype == np.float32
    for k in range(spec.n):
        np.testing.assert_allclose(vol.hu[k], expected_hu(spec, k), rtol=0, atol=1e-3)


def test_signed_pixels(series):
    folder, spec = series(signed=True, intercept=0.0)
    vol = load_series(folder)
    assert vol.hu.min() == -500  # stored values start at -500 in slice 0
    for k in range(spec.n):
        np.testing.assert_array_equal(vol.hu[k], expected_hu(spec, k))


def test_int16_overflow_promotes_instead_of_wrapping(series):
    def big(k, ds):
        arr = np.full((ds.Rows, ds.Columns), 40000, np.uint16)
        ds.PixelData = arr.tobytes()

    folder, _ = series(mutate=big, intercept=0.0)
    vol = load_series(folder)
    assert vol.hu.dtype == np.float32
    assert np.all(vol.hu == 40000)
    assert any("int16" in n for n in vol.notes)


def test_unsigned_values_above_int16_with_fitting_intercept_are_exact(series):
    # stored 32768..65535 with intercept -32768: every HU fits int16, though no stored value does
    # (the loader adds in int16 on a wrapping view; the result must still be exact)
    values = np.linspace(32768, 65535, 256 * 256).astype(np.uint16).reshape(256, 256)

    def high(k, ds):
        ds.Rows, ds.Columns = values.shape
        ds.PixelData = values.tobytes()

    folder, _ = series(mutate=high, intercept=-32768.0, n=5)
    vol = load_series(folder)
    assert vol.hu.dtype == np.int16 and vol.notes == ()
    np.testing.assert_array_equal(vol.hu[0].astype(np.int64), values.astype(np.int64) - 32768)


def test_unused_high_bits_are_ignored(series):
    # BitsStored 12: the 4 high bits hold junk that pydicom's decoder must mask, also in place
    # (256x256 slices: Pixel Data larger than the defer size takes the loader's own read path)
    def junk(k, ds):
        ds.BitsStored, ds.HighBit = 12, 11
        arr = np.frombuffer(ds.PixelData, np.uint16).reshape(ds.Rows, ds.Columns)
        ds.PixelData = ((arr & 0x0FFF) | 0xF000).astype(np.uint16).tobytes()

    folder, spec = series(mutate=junk, rows=256, cols=256, n=5)
    vol = load_series(folder)
    for k in range(spec.n):
        np.testing.assert_array_equal(vol.hu[k], expected_hu(spec, k))


def test_mass_factor_patient_then_device(series):
    folder, _ = series(mutate=lambda k, ds: setattr(ds, "CalciumScoringMassFactorPatient", 0.71), name="p")
    assert load_series(folder).mass_factor == pytest.approx(0.71)
    folder, _ = series(mutate=lambda k, ds: setattr(ds, "CalciumScoringMassFactorDevice", [0.6, 0.7, 0.8]), name="d")
    vol = load_series(folder)
    assert vol.mass_factor == pytest.approx(0.7)
    assert any("medium" in n for n in vol.notes)


def test_floor_reads_stored_values_in_given_order(series):
    folder, spec = series()
    files = sorted(folder.iterdir())
    stack = read_and_stack(files)
    assert stack.shape == (spec.n, spec.rows, spec.cols)
    for f, arr in zip(files, stack, strict=True):
        k = int(f.stem.split("_")[1])
        np.testing.assert_array_equal(arr, spec.stored(k))


def test_options_reject_nonsense():
    with pytest.raises(ValueError):
        LoadOptions(gap_policy="guess")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LoadOptions(min_slices=1)
    with pytest.raises(ValueError):
        LoadOptions(max_resample_gap=0.5)


def test_headers_do_not_need_their_files(series):
    big = b"\x01\x02" * 50_000  # a 100 kB private value: larger than the loader's defer size

    def add_private(k, ds):
        ds.add_new(0x00291010, "OB", big)

    folder, spec = series(mutate=add_private)
    vol = load_series(folder)
    for path in folder.iterdir():
        path.unlink()  # as the bounded cache does right after loading
    for header in vol.headers:
        assert header[0x00291010].value == big
        assert "PixelData" not in header


def test_rescale_is_applied_per_slice(series):
    folder, spec = series(mutate=lambda k, ds: setattr(ds, "RescaleIntercept", -1000 - k))
    vol = load_series(folder)
    for k in range(spec.n):
        np.testing.assert_array_equal(vol.hu[k], spec.stored(k).astype(np.int32) - 1000 - k)
