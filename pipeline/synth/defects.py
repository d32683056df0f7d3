"""The bad-input corpus: one small series per defect, and what the loader must do with it.

``DEFECTS`` maps each defect name to its agreed loader outcome (an ``ErrorCode`` value,
or None: the series must load) and a writer. Every writer starts from the same good
slices of a small noise-free phantom and breaks exactly one thing.
"""

from __future__ import annotations

import copy
import math
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, MRImageStorage, RLELossless

from deepcac2.pipeline.synth.dicom_writer import ds_str, localizer_dataset, save, slice_datasets, write_series
from deepcac2.pipeline.synth.nlst_headers import SeriesMeta, uid
from deepcac2.pipeline.synth.phantom import Phantom

Writer = Callable[[Phantom, SeriesMeta, Path], list[Path]]


@dataclass(frozen=True)
class Defect:
    name: str
    #: the loader's agreed outcome: an ErrorCode value, or None (the series loads)
    expected_error_code: str | None
    #: True when every file is still valid DICOM (dciodvfy finds no errors)
    valid_dicom: bool
    description: str
    write: Writer


def _write_all(datasets: list[Dataset], out: Path) -> list[Path]:
    return [save(ds, out / f"{ds.InstanceNumber}.dcm") for ds in datasets]


def _restack(datasets: list[Dataset], z_of_k: Callable[[int], float], y_of_z: Callable[[float], float]) -> None:
    """Move slice k (instance N - k) to z_of_k(k), with its y shifted to y_of_z(z)."""
    n = len(datasets)
    for ds in datasets:
        k = n - ds.InstanceNumber
        x, y, _ = (float(v) for v in ds.ImagePositionPatient)
        z = z_of_k(k)
        ds.ImagePositionPatient = [ds_str(x), ds_str(y_of_z(z)), ds_str(z)]
        ds.SliceLocation = ds_str(z)


def missing_slice(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    paths = write_series(ph, meta, out)
    gone = paths.pop(len(paths) // 2)
    gone.unlink()
    return paths


def duplicated_slice(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    paths = write_series(ph, meta, out)
    copy = out / f"{len(paths) + 1}.dcm"
    shutil.copyfile(paths[len(paths) // 2], copy)
    return [*paths, copy]


def conflicting_duplicate(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    datasets = slice_datasets(ph, meta)
    mid = datasets[len(datasets) // 2]
    other = copy.deepcopy(mid)
    other.SOPInstanceUID = uid(meta.series_uid, "sop", "conflict")
    other.InstanceNumber = len(datasets) + 1
    other.PixelData = datasets[len(datasets) // 2 + 2].PixelData  # same position, another slice's pixels
    return _write_all([*datasets, other], out)


def uneven_spacing(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    datasets = slice_datasets(ph, meta)
    z0, dz, half = ph.geometry.origin[2], ph.geometry.spacing[2], len(datasets) // 2
    _restack(
        datasets,
        lambda k: z0 + k * dz if k <= half else z0 + half * dz + (k - half) * 1.4 * dz,
        lambda z: ph.geometry.origin[1],
    )
    return _write_all(datasets, out)


TILT_DEG = 15.0


def gantry_tilt(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    """GE style: axial orientation kept, positions sheared in y by tan(tilt) per mm of z."""
    datasets = slice_datasets(ph, meta)
    z0, dz, y0 = ph.geometry.origin[2], ph.geometry.spacing[2], ph.geometry.origin[1]
    shear = math.tan(math.radians(TILT_DEG))
    _restack(datasets, lambda k: z0 + k * dz, lambda z: y0 + (z - z0) * shear)
    for ds in datasets:
        ds.GantryDetectorTilt = ds_str(TILT_DEG)
    return _write_all(datasets, out)


def mixed_orientations(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    """The last third of the slices is tilted 10 degrees about x."""
    datasets = slice_datasets(ph, meta)
    c, s = math.cos(math.radians(10.0)), math.sin(math.radians(10.0))
    for ds in datasets[: len(datasets) // 3]:
        ds.ImageOrientationPatient = ["1", "0", "0", "0", ds_str(c), ds_str(s)]
    return _write_all(datasets, out)


def localizer_inside(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    datasets = slice_datasets(ph, meta)
    loc = localizer_dataset(ph, meta, instance=len(datasets) + 1)
    return _write_all([*datasets, loc], out)


def wrong_modality(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    """An MR Image Storage series (pixel values HU + 1024, no rescale)."""
    datasets = slice_datasets(ph, meta)
    for ds in datasets:
        for attr in ("KVP", "ConvolutionKernel", "XRayTubeCurrent", "DataCollectionDiameter", "GantryDetectorTilt"):
            delattr(ds, attr)
        for attr in ("RescaleIntercept", "RescaleSlope", "RescaleType", "CalciumScoringMassFactorPatient"):
            if attr in ds:
                delattr(ds, attr)
        ds.SOPClassUID = MRImageStorage
        ds.Modality = "MR"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500"
        ds.EchoTime = "15"
        ds.EchoTrainLength = "1"
        ds.MagneticFieldStrength = "1.5"
        ds.ImagedNucleus = "1H"
    return _write_all(datasets, out)


def truncated_pixels(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    """One slice's Pixel Data holds half the bytes Rows x Columns x 2 needs."""
    datasets = slice_datasets(ph, meta)
    mid = datasets[len(datasets) // 2]
    mid.PixelData = mid.PixelData[: len(mid.PixelData) // 2]
    return _write_all(datasets, out)


def unreadable_file(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    """All slices are fine; one more ``.dcm`` file is garbage."""
    paths = write_series(ph, meta, out)
    junk = out / f"{len(paths) + 1}.dcm"
    junk.write_bytes(np.random.default_rng([ph.seed, 99]).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return [*paths, junk]


def absurd_dimensions(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    """Headers claim 65535 x 65535 pixels; the pixel data is the real, small size."""
    datasets = slice_datasets(ph, meta)
    for ds in datasets:
        ds.Rows = ds.Columns = 65535
    return _write_all(datasets, out)


def missing_ipp(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    """No slice has ImagePositionPatient (nor SliceLocation to guess from)."""
    datasets = slice_datasets(ph, meta)
    for ds in datasets:
        del ds.ImagePositionPatient
        del ds.SliceLocation
    return _write_all(datasets, out)


BAD_UID = "1.2/../../etc"


def uid_path_chars(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    """SeriesInstanceUID with path characters (a loader that builds paths from UIDs escapes its folder)."""
    datasets = slice_datasets(ph, meta)
    with warnings.catch_warnings():  # pydicom warns about the invalid UID: that is the point
        warnings.simplefilter("ignore", UserWarning)
        for ds in datasets:
            ds.SeriesInstanceUID = BAD_UID
        return _write_all(datasets, out)


def jpeg2000(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    return write_series(ph, meta, out, transfer_syntax=JPEG2000Lossless)


def rle(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    return write_series(ph, meta, out, transfer_syntax=RLELossless)


def signed_pixels(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    return write_series(ph, meta, out, signed=True)


#: slope 0.5 keeps every integer HU exact: stored = 2 x HU + 2049
RESCALE = (0.5, -1024.5)


def rescale_slope(ph: Phantom, meta: SeriesMeta, out: Path) -> list[Path]:
    return write_series(ph, meta, out, rescale=RESCALE)


DEFECTS: dict[str, Defect] = {
    d.name: d
    for d in (
        Defect("missing_slice", "E_GEOMETRY_GAP", True, "a middle slice file is missing", missing_slice),
        Defect(
            "duplicated_slice", None, True, "one slice file copied byte for byte under another name", duplicated_slice
        ),
        Defect(
            "conflicting_duplicate",
            "E_DUPLICATE_CONFLICT",
            True,
            "an extra instance at a slice's position with different pixels",
            conflicting_duplicate,
        ),
        Defect("uneven_spacing", "E_GEOMETRY_UNEVEN", True, "spacing 2.5 mm, then 3.5 mm", uneven_spacing),
        Defect("gantry_tilt", "E_GEOMETRY_TILT", True, "GantryDetectorTilt 15 and sheared positions", gantry_tilt),
        Defect(
            "mixed_orientations",
            "E_GEOMETRY_ORIENTATION",
            True,
            "a third of the slices tilted 10 degrees",
            mixed_orientations,
        ),
        Defect(
            "localizer_inside", None, True, "an OPL localizer image with the same SeriesInstanceUID", localizer_inside
        ),
        Defect("wrong_modality", "E_MODALITY", True, "an MR Image Storage series", wrong_modality),
        Defect(
            "truncated_pixels", "E_TRUNCATED_PIXELS", False, "one slice's pixel data is half long", truncated_pixels
        ),
        Defect("unreadable_file", "E_UNREADABLE_FILE", False, "one extra file of random bytes", unreadable_file),
        Defect("absurd_dimensions", "E_DIMENSIONS", False, "Rows = Columns = 65535 in the headers", absurd_dimensions),
        Defect("missing_ipp", "E_GEOMETRY_MISSING", False, "no ImagePositionPatient in any slice", missing_ipp),
        Defect("uid_path_chars", "E_UID_INVALID", False, f"SeriesInstanceUID {BAD_UID!r}", uid_path_chars),
        Defect("jpeg2000", None, True, "JPEG 2000 Lossless transfer syntax", jpeg2000),
        Defect("rle", None, True, "RLE Lossless transfer syntax", rle),
        Defect("signed_pixels", None, True, "PixelRepresentation 1, RescaleIntercept 0", signed_pixels),
        Defect("rescale_slope", None, True, f"RescaleSlope {RESCALE[0]}, RescaleIntercept {RESCALE[1]}", rescale_slope),
    )
}
