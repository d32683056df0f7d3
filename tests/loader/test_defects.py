"""Every bad-input case ends in its stable code, or in the handling an option asks for."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML, BasicTextSRStorage

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader import LoadOptions, load_series

from .factory import Spec, expected_hu, make_dataset


def code_of(source, options=None, **kw) -> ErrorCode:
    with pytest.raises(DeepCACError) as info:
        load_series(source, options, **kw)
    assert info.value.message  # every error says something useful
    return info.value.code


def _delete_slices(folder, ks):
    for path in folder.iterdir():
        if int(path.stem.split("_")[1]) in ks:
            path.unlink()


# ---- duplicates ---------------------------------------------------------------------------------


def test_exact_duplicate_is_dropped_with_note(series):
    folder, spec = series()
    original = next(p for p in folder.iterdir() if p.stem.endswith("_2"))
    shutil.copy(original, folder / "zz_copy.dcm")
    vol = load_series(folder)
    assert vol.shape[0] == spec.n
    assert any("duplicate" in n and "zz_copy.dcm" in n for n in vol.notes)


def test_conflicting_duplicate(series, tmp_path):
    folder, spec = series()
    ds = make_dataset(spec, 2)
    ds.PixelData = (spec.stored(2) + 1).tobytes()
    ds.save_as(folder / "zz_conflict.dcm", enforce_file_format=True)
    assert code_of(folder) == ErrorCode.E_DUPLICATE_CONFLICT


# ---- spacing ------------------------------------------------------------------------------------


def test_missing_slice_fails_by_default(series):
    folder, _ = series(n=8)
    _delete_slices(folder, {4})
    assert code_of(folder) == ErrorCode.E_GEOMETRY_GAP


def test_missing_slice_resampled_on_request(series):
    folder, spec = series(n=8)
    _delete_slices(folder, {4})
    vol = load_series(folder, LoadOptions(gap_policy="resample"))
    assert vol.shape[0] == spec.n
    assert vol.geometry.spacing[2] == pytest.approx(spec.dz)
    # content is linear in k, so linear interpolation must give the missing slice exactly
    np.testing.assert_allclose(vol.hu[4], expected_hu(spec, 4))
    assert any("resampled" in n for n in vol.notes)


def test_two_missing_slices_exceed_the_default_resample_tolerance(series):
    folder, _ = series(n=8)
    _delete_slices(folder, {3, 4})
    assert code_of(folder, LoadOptions(gap_policy="resample")) == ErrorCode.E_GEOMETRY_GAP
    vol = load_series(folder, LoadOptions(gap_policy="resample", max_resample_gap=3.0))
    assert vol.shape[0] == 8


def test_uneven_spacing(series):
    def shift(k, ds):
        if k == 3:
            ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], ds.ImagePositionPatient[2] + 1.0]

    folder, spec = series(mutate=shift, n=7)
    assert code_of(folder) == ErrorCode.E_GEOMETRY_UNEVEN
    vol = load_series(folder, LoadOptions(gap_policy="resample"))
    assert vol.shape[0] == spec.n
    # slice 3 now sits 1 mm above its place: the value at k=3 interpolates slices 2 and 3 of the file
    w = (spec.dz - 0) / (spec.dz + 1.0)
    expected = (1 - w) * expected_hu(spec, 2) + w * expected_hu(spec, 3)
    np.testing.assert_allclose(vol.hu[3], np.rint(expected))


def test_small_jitter_within_tolerance_is_regular(series):
    def jitter(k, ds):
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], ds.ImagePositionPatient[2] + 0.02 * (k % 2)]

    folder, spec = series(mutate=jitter)
    assert load_series(folder).shape[0] == spec.n


# ---- tilt and orientation -----------------------------------------------------------------------


def _tilted(spec_rows_shift_px: float = 1.0):
    """Positions sheared along y by one row per slice; a bright voxel marks one fixed physical point."""

    def mutate(k, ds):
        sy = float(ds.PixelSpacing[0])
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k * spec_rows_shift_px * sy, z]
        ds.GantryDetectorTilt = math.degrees(math.atan(spec_rows_shift_px * sy / 2.5))
        arr = np.zeros((ds.Rows, ds.Columns), np.uint16)
        arr[20 - k, 10] = 3000  # the same physical point, one row higher in each shifted slice
        ds.PixelData = arr.tobytes()

    return mutate


def test_gantry_tilt_fails_by_default(series):
    folder, _ = series(mutate=_tilted())
    assert code_of(folder) == ErrorCode.E_GEOMETRY_TILT


def test_gantry_tilt_corrected_on_request(series):
    folder, spec = series(mutate=_tilted())
    vol = load_series(folder, LoadOptions(tilt_policy="correct"))
    g = vol.geometry
    np.testing.assert_allclose(g.direction_matrix.T @ g.direction_matrix, np.eye(3), atol=1e-9)
    # after the correction the marked point is at the same (j, i) in every slice: slice 0's (20, 10)
    for k in range(spec.n):
        assert np.unravel_index(np.argmax(vol.hu[k]), vol.hu[k].shape) == (20, 10)
        assert vol.hu[k].max() == 3000 - 1024
    assert any("tilt corrected" in n for n in vol.notes)


def test_tilt_tag_without_shear_still_needs_the_option(series):
    folder, _ = series(mutate=lambda k, ds: setattr(ds, "GantryDetectorTilt", 12.0))
    assert code_of(folder) == ErrorCode.E_GEOMETRY_TILT
    vol = load_series(folder, LoadOptions(tilt_policy="correct"))
    assert any("nothing to correct" in n for n in vol.notes)


def test_mixed_orientations(series):
    def turn(k, ds):
        if k == 2:
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.8, -0.6]

    folder, _ = series(mutate=turn)
    assert code_of(folder) == ErrorCode.E_GEOMETRY_ORIENTATION


def test_localizer_inside_series_is_excluded(series):
    folder, spec = series()
    scout = make_dataset(Spec(rows=48, cols=40, iop=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0)), 0)
    scout.SeriesInstanceUID = spec.series_uid
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.save_as(folder / "scout.dcm", enforce_file_format=True)
    vol = load_series(folder)
    assert vol.shape == (spec.n, spec.rows, spec.cols)
    assert any("localizer" in n and "scout.dcm" in n for n in vol.notes)


# ---- header and pixel defects -------------------------------------------------------------------


def test_wrong_modality(series):
    folder, _ = series(modality="MR")
    assert code_of(folder) == ErrorCode.E_MODALITY


@pytest.mark.parametrize("size", [32, 256])  # 256x256 slices are read lazily (deferred Pixel Data)
def test_truncated_pixels(series, size):
    folder, _ = series(rows=size, cols=size)
    victim = sorted(folder.iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:-100])
    assert code_of(folder) == ErrorCode.E_TRUNCATED_PIXELS


def test_unreadable_file(series):
    folder, spec = series()
    (folder / "notes.dcm").write_bytes(b"this is not DICOM at all" * 20)
    assert code_of(folder) == ErrorCode.E_UNREADABLE_FILE
    vol = load_series(folder, LoadOptions(skip_unreadable=True))
    assert vol.shape[0] == spec.n
    assert any("notes.dcm" in n for n in vol.notes)


def test_absurd_dimensions(series):
    folder, _ = series()
    assert code_of(folder, LoadOptions(max_rows=16)) == ErrorCode.E_DIMENSIONS
    assert code_of(folder, LoadOptions(max_slices=5)) == ErrorCode.E_DIMENSIONS

    def huge(k, ds):
        ds.Rows = 60000

    folder, _ = series(mutate=huge, name="huge")
    assert code_of(folder) == ErrorCode.E_DIMENSIONS


def test_slices_of_different_sizes(series):
    folder, spec = series()
    odd = make_dataset(Spec(rows=40, cols=40, series_uid=spec.series_uid), spec.n)
    odd.ImagePositionPatient = [float(v) for v in spec.position(spec.n)]
    odd.save_as(folder / "odd.dcm", enforce_file_format=True)
    assert code_of(folder) == ErrorCode.E_DIMENSIONS


@pytest.mark.parametrize("keyword", ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"])
def test_missing_geometry(series, keyword):
    def drop(k, ds):
        if k == 1:
            delattr(ds, keyword)

    folder, _ = series(mutate=drop)
    assert code_of(folder) == ErrorCode.E_GEOMETRY_MISSING


def test_too_few_slices(series):
    folder, _ = series(n=3)
    assert code_of(folder) == ErrorCode.E_TOO_FEW_SLICES
    assert load_series(folder, LoadOptions(min_slices=3)).shape[0] == 3


def test_unsupported_transfer_syntax(series):
    def mpeg(k, ds):
        ds.file_meta.TransferSyntaxUID = MPEG2MPML
        ds.PixelData = encapsulate([ds.PixelData])

    folder, _ = series(mutate=mpeg)
    assert code_of(folder) == ErrorCode.E_TRANSFER_SYNTAX


def test_multiframe_is_unsupported(series):
    folder, _ = series(mutate=lambda k, ds: setattr(ds, "NumberOfFrames", 2))
    assert code_of(folder) == ErrorCode.E_UNSUPPORTED_IMAGE


# ---- sources and UIDs ---------------------------------------------------------------------------


def test_no_files(tmp_path):
    (tmp_path / "empty").mkdir()
    assert code_of(tmp_path / "empty") == ErrorCode.E_NO_IMAGES
    assert code_of(tmp_path / "absent") == ErrorCode.E_NO_IMAGES


def test_mixed_series_needs_a_choice(series, tmp_path):
    _, a = series(name="both/a")
    _, b = series(name="both/b", n=7)
    assert code_of(tmp_path / "both") == ErrorCode.E_MIXED_SERIES
    assert load_series(tmp_path / "both", series_uid=b.series_uid).shape[0] == 7
    assert load_series(tmp_path / "both", series_uid=a.series_uid).shape[0] == a.n
    assert code_of(tmp_path / "both", series_uid="1.2.3.4") == ErrorCode.E_NO_IMAGES
    assert code_of(tmp_path / "both", series_uid="../etc") == ErrorCode.E_UID_INVALID


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # pydicom warns; the loader must refuse it
def test_invalid_uid_in_files(series):
    folder, _ = series(series_uid="1.2.3/../../x")
    assert code_of(folder) == ErrorCode.E_UID_INVALID


def test_empty_uids_load_keyed_by_path(series):
    def blank(k, ds):
        ds.SOPInstanceUID = ""  # the file meta keeps its UID, as in the real sample

    folder, spec = series(mutate=blank, series_uid="")
    vol = load_series(folder)
    assert vol.shape[0] == spec.n  # never collapsed into one slice
    assert len({ref.path for ref in vol.instances}) == spec.n
    assert vol.series_uid == ""
    assert any("cannot be referenced" in n for n in vol.notes)
    assert code_of(folder, LoadOptions(empty_uids="fail")) == ErrorCode.E_UID_INVALID


def test_shared_sop_uid_at_different_positions(series):
    folder, _ = series(mutate=lambda k, ds: setattr(ds, "SOPInstanceUID", "1.2.3.4.5"))
    assert code_of(folder) == ErrorCode.E_DUPLICATE_CONFLICT


def test_non_image_objects_are_ignored(series):
    folder, spec = series()
    other = make_dataset(Spec(), 0)
    other.SOPClassUID = BasicTextSRStorage
    for keyword in ("Rows", "Columns", "PixelData"):
        delattr(other, keyword)
    other.SeriesInstanceUID = spec.series_uid
    other.save_as(folder / "sr.dcm", enforce_file_format=True)
    vol = load_series(folder)
    assert vol.shape[0] == spec.n
    assert any("non-image" in n for n in vol.notes)


def test_pixel_spacing_differs_between_slices(series):
    folder, _ = series(mutate=lambda k, ds: setattr(ds, "PixelSpacing", [0.8, 0.9]) if k == 3 else None)
    assert code_of(folder) == ErrorCode.E_GEOMETRY_UNEVEN


def test_unrecognisable_dicom_object_is_unreadable(series):
    folder, spec = series()
    other = make_dataset(Spec(), 0)
    for keyword in ("Rows", "Columns", "PixelData", "SOPClassUID"):
        delattr(other, keyword)
    other.file_meta.MediaStorageSOPClassUID = "1.2.3.4.5.6"  # a class nobody knows
    other.save_as(folder / "mystery.dcm", enforce_file_format=True)
    assert code_of(folder) == ErrorCode.E_UNREADABLE_FILE
    assert load_series(folder, LoadOptions(skip_unreadable=True)).shape[0] == spec.n


def test_image_file_cut_before_pixel_data(series):
    folder, spec = series()
    victim = sorted(folder.iterdir())[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: data.index(b"\xe0\x7f\x10\x00")])  # everything before the Pixel Data tag
    assert code_of(folder) == ErrorCode.E_TRUNCATED_PIXELS


def test_checks_run_in_the_documented_order(series):
    # wrong modality and missing positions: the modality check comes first (docs/loader.md)
    folder, _ = series(modality="MR", mutate=lambda k, ds: delattr(ds, "ImagePositionPatient"))
    assert code_of(folder) == ErrorCode.E_MODALITY
    # missing positions and too few slices: geometry comes before the slice count
    folder, _ = series(n=2, name="short", mutate=lambda k, ds: delattr(ds, "ImagePositionPatient"))
    assert code_of(folder) == ErrorCode.E_GEOMETRY_MISSING
