"""``load_series``: one DICOM series (folder or file list) to a CT volume in HU, or a typed error.

The steps run in a fixed order so a series with several defects always reports the same
code: files -> images -> series -> UIDs -> modality -> pixel module -> geometry ->
duplicates -> slice count -> tilt -> spacing -> pixels -> opt-in corrections.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader import geometry as geo
from deepcac2.pipeline.loader import pixels
from deepcac2.pipeline.loader.options import LoadOptions
from deepcac2.pipeline.loader.read import (
    is_localizer,
    iter_readable,
    list_files,
    load_deferred,
    object_kind,
    parse_series_attributes,
    uid_text,
)
from deepcac2.pipeline.loader.resample import resample_slices, unshear
from deepcac2.pipeline.loader.uid import validate_uid
from deepcac2.pipeline.types import CTVolume, Geometry, InstanceRef

Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass
class _Slice:
    path: Path
    ds: Dataset
    #: ImagePositionPatient, read in the geometry step
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    #: position projected on the slice normal (the sort key)
    s: float = 0.0


def load_series(source: Source, options: LoadOptions | None = None, *, series_uid: str | None = None) -> CTVolume:
    """Load one CT series as HU with its geometry, or raise DeepCACError with a stable code.

    ``source`` is a folder (searched at any depth) or a list of files. When it holds more
    than one series, ``series_uid`` picks one; without it that is E_MIXED_SERIES.
    """
    opts = options or LoadOptions()
    notes: list[str] = []
    paths = list_files(source)
    if not paths:
        raise DeepCACError(ErrorCode.E_NO_IMAGES, f"no files in {source}")
    files = iter_readable(paths, opts.skip_unreadable, notes)
    slices = _pick_series(_images(files, opts, notes), series_uid)
    first = slices[0].ds  # series-level attributes come from this one file
    parse_series_attributes(first, slices[0].path)
    uids = _check_uids(slices, opts, notes)
    _check_modality(slices, opts)
    _check_pixel_modules(slices, opts)
    frame = _common_frame(slices, opts)
    normal = frame.normal
    for sl in slices:
        sl.position = geo.position(sl.ds, sl.path)
        sl.s = float(sl.position @ normal)
    slices.sort(key=lambda sl: (sl.s, str(sl.path)))
    slices = _drop_duplicates(slices, opts, notes)
    if len(slices) < opts.min_slices:
        raise DeepCACError(
            ErrorCode.E_TOO_FEW_SLICES, f"{len(slices)} slices after cleaning; at least {opts.min_slices} needed"
        )
    positions = np.stack([sl.position for sl in slices])
    drift = _check_tilt(geo.gantry_tilt_degrees(first), positions, frame, opts, notes)
    s = np.array([sl.s for sl in slices])
    spacing = geo.judge_spacing(s, opts.spacing_tolerance)
    _check_spacing(spacing, opts)

    hu = pixels.hu_volume([sl.ds for sl in slices], [sl.path for sl in slices], notes)
    for sl in slices:
        load_deferred(sl.ds)
    if drift is not None:
        unshear(hu, drift, opts.fill_hu)
    if spacing.problem is not None:
        hu = resample_slices(hu, s, spacing.median)
        notes.append(
            f"slice spacing was {spacing.problem} ({spacing.describe()}); resampled linearly along the normal "
            f"to {hu.shape[0]} slices at {spacing.median:.4g} mm: slices no longer map 1:1 to instances"
        )
        dz = spacing.median
    else:
        dz = float((s[-1] - s[0]) / (len(s) - 1))
    sx, sy = frame.pixel_spacing
    geometry = Geometry(
        origin=tuple(float(v) for v in positions[0]),  # type: ignore[arg-type]
        spacing=(sx, sy, dz),
        direction=tuple(float(v) + 0.0 for v in np.column_stack([frame.row, frame.col, normal]).ravel()),
    )
    return CTVolume(
        hu=hu,
        geometry=geometry,
        series_uid=uids["series"],
        study_uid=uids["study"] or None,
        patient_id=str(first.get("PatientID", "")).strip() or None,
        frame_of_reference_uid=uids["frame"] or None,
        slice_thickness=_float(first.get("SliceThickness")),
        kvp=_float(first.get("KVP")),
        mass_factor=_mass_factor(first, notes),
        instances=tuple(
            InstanceRef(uid_text(sl.ds, "SOPClassUID"), uid_text(sl.ds, "SOPInstanceUID"), str(sl.path))
            for sl in slices
        ),
        headers=[sl.ds for sl in slices],
        notes=tuple(notes),
    )


def _images(files: list[tuple[Path, Dataset]], opts: LoadOptions, notes: list[str]) -> list[tuple[Path, Dataset]]:
    """Image files only: non-image objects (DICOMDIR, SR, ...) and localizers are set aside with a note.

    A file that is neither an image nor a known non-image object is damaged: E_UNREADABLE_FILE.
    """
    kinds = [object_kind(ds) for _, ds in files]
    for (path, _), kind in zip(files, kinds, strict=True):
        if kind == "unknown" and not opts.skip_unreadable:
            raise DeepCACError(
                ErrorCode.E_UNREADABLE_FILE, f"{path.name}: neither an image nor a known DICOM object (damaged?)"
            )
    images = [f for f, kind in zip(files, kinds, strict=True) if kind == "image"]
    for path, ds in images:  # before grouping: a cut-off file may lack its series UID too
        if "PixelData" not in ds:
            raise DeepCACError(ErrorCode.E_TRUNCATED_PIXELS, f"{path.name}: an image without Pixel Data (truncated?)")
    others = [f[0].name for f, kind in zip(files, kinds, strict=True) if kind == "other"]
    if others:
        notes.append(f"ignored {len(others)} non-image DICOM object(s): {', '.join(others)}")
    if len(images) + len(others) < len(files):
        notes.append(f"skipped {len(files) - len(images) - len(others)} unrecognisable DICOM file(s)")
    if opts.exclude_localizers:
        kept = [(p, ds) for p, ds in images if not is_localizer(ds)]
        if len(kept) < len(images):
            names = ", ".join(p.name for p, ds in images if is_localizer(ds))
            notes.append(f"excluded {len(images) - len(kept)} localizer image(s): {names}")
        images = kept
    return images


def _pick_series(images: list[tuple[Path, Dataset]], series_uid: str | None) -> list[_Slice]:
    if not images:
        raise DeepCACError(
            ErrorCode.E_NO_IMAGES, "no CT images in the source (after removing non-images and localizers)"
        )
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for path, ds in images:
        groups.setdefault(uid_text(ds, "SeriesInstanceUID"), []).append((path, ds))
    if series_uid is not None:
        wanted = validate_uid(series_uid, "requested series UID")
        if wanted not in groups:
            raise DeepCACError(ErrorCode.E_NO_IMAGES, f"series {wanted} is not in the source (found {sorted(groups)})")
        chosen = groups[wanted]
    elif len(groups) > 1:
        counts = ", ".join(f"{uid or '<empty>'} ({len(g)} files)" for uid, g in sorted(groups.items()))
        raise DeepCACError(ErrorCode.E_MIXED_SERIES, f"the source holds {len(groups)} series: {counts}; pick one")
    else:
        chosen = next(iter(groups.values()))
    return [_Slice(path=path, ds=ds) for path, ds in chosen]


def _check_uids(slices: list[_Slice], opts: LoadOptions, notes: list[str]) -> dict[str, str]:
    """Validate every non-empty UID; empty ones are allowed (keyed by path) or rejected per options."""
    first = slices[0].ds
    uids = {
        "series": uid_text(first, "SeriesInstanceUID"),
        "study": uid_text(first, "StudyInstanceUID"),
        "frame": uid_text(first, "FrameOfReferenceUID"),
    }
    names = {"series": "SeriesInstanceUID", "study": "StudyInstanceUID", "frame": "FrameOfReferenceUID"}
    for key, uid in uids.items():
        if uid:
            validate_uid(uid, names[key])
    sop_uids = [uid_text(sl.ds, "SOPInstanceUID") for sl in slices]
    for sl, uid in zip(slices, sop_uids, strict=True):
        if uid:
            validate_uid(uid, f"SOPInstanceUID of {sl.path.name}")
    empty = [name for name, uid in (("SeriesInstanceUID", uids["series"]),) if not uid]
    if not all(sop_uids):
        empty.append(f"SOPInstanceUID ({sum(1 for u in sop_uids if not u)} of {len(sop_uids)} files)")
    if empty:
        message = f"empty {', '.join(empty)}"
        if opts.empty_uids == "fail":
            raise DeepCACError(ErrorCode.E_UID_INVALID, message)
        notes.append(f"{message}: slices keyed by file path; this series cannot be referenced by a DICOM SEG")
    return uids


def _check_modality(slices: list[_Slice], opts: LoadOptions) -> None:
    for sl in slices:
        modality = str(sl.ds.get("Modality", "")).strip()
        if modality not in opts.modalities:
            raise DeepCACError(
                ErrorCode.E_MODALITY,
                f"{sl.path.name}: modality {modality or '<missing>'!r}, expected one of {list(opts.modalities)}",
            )


def _check_pixel_modules(slices: list[_Slice], opts: LoadOptions) -> None:
    if len(slices) > opts.max_slices:
        raise DeepCACError(ErrorCode.E_DIMENSIONS, f"{len(slices)} slices, more than max_slices={opts.max_slices}")
    size = None
    for sl in slices:
        ds, path = sl.ds, sl.path
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        if not (1 <= rows <= opts.max_rows and 1 <= cols <= opts.max_cols):
            raise DeepCACError(
                ErrorCode.E_DIMENSIONS,
                f"{path.name}: {rows}x{cols} pixels is outside 1..{opts.max_rows} x 1..{opts.max_cols}",
            )
        if size is not None and (rows, cols) != size:
            raise DeepCACError(ErrorCode.E_DIMENSIONS, f"{path.name}: {rows}x{cols} pixels, other slices {size}")
        size = (rows, cols)
        pixels.check_image_pixel_module(ds, path)
        syntax = pixels.transfer_syntax(ds, path)
        pixels.check_pixel_length(ds, path, syntax)


def _common_frame(slices: list[_Slice], opts: LoadOptions) -> geo.SliceFrame:
    frames = [geo.slice_frame(sl.ds, sl.path) for sl in slices]
    return geo.common_frame(frames, [sl.path.name for sl in slices], opts.orientation_tolerance)


def _drop_duplicates(slices: list[_Slice], opts: LoadOptions, notes: list[str]) -> list[_Slice]:
    """Same position: identical pixels -> keep the first, else E_DUPLICATE_CONFLICT."""
    kept: list[_Slice] = []
    dropped = []
    for sl in slices:
        prev = kept[-1] if kept else None
        if prev is not None and np.linalg.norm(sl.position - prev.position) <= opts.duplicate_tolerance_mm:
            a = pixels.decode(prev.ds, prev.path, release=False)
            b = pixels.decode(sl.ds, sl.path, release=False)
            if not np.array_equal(a, b) or pixels.rescale(prev.ds) != pixels.rescale(sl.ds):
                raise DeepCACError(
                    ErrorCode.E_DUPLICATE_CONFLICT,
                    f"{prev.path.name} and {sl.path.name} are at the same position {sl.position.round(3).tolist()} "
                    "but hold different pixels",
                )
            dropped.append(sl.path.name)
            continue
        kept.append(sl)
    if dropped:
        notes.append(f"dropped {len(dropped)} exact duplicate slice(s): {', '.join(dropped)}")
    seen: dict[str, Path] = {}
    for sl in kept:
        uid = uid_text(sl.ds, "SOPInstanceUID")
        if uid and uid in seen:
            raise DeepCACError(
                ErrorCode.E_DUPLICATE_CONFLICT,
                f"{seen[uid].name} and {sl.path.name} share SOPInstanceUID {uid} at different positions",
            )
        seen[uid] = sl.path
    return kept


def _check_tilt(
    tilt: float, positions: np.ndarray, frame: geo.SliceFrame, opts: LoadOptions, notes: list[str]
) -> np.ndarray | None:
    """The per-slice in-plane drift to undo (tilt_policy="correct"), None when there is none."""
    drift = geo.in_plane_drift(positions, frame)
    drift_mm = float(np.hypot(drift[:, 0] * frame.pixel_spacing[0], drift[:, 1] * frame.pixel_spacing[1]).max())
    sheared = drift_mm > opts.tilt_tolerance_mm
    if not sheared and tilt == 0:
        return None
    what = f"GantryDetectorTilt {tilt:g} deg, slice positions drift {drift_mm:.3g} mm off the slice normal"
    if opts.tilt_policy == "fail":
        raise DeepCACError(
            ErrorCode.E_GEOMETRY_TILT, f"gantry tilt: {what}; load with tilt_policy='correct' to resample it"
        )
    if not sheared:
        notes.append(f"{what}: positions already lie along the normal, nothing to correct")
        return None
    notes.append(f"gantry tilt corrected ({what}): slices shifted in-plane (linear) onto an orthogonal grid")
    return drift


def _check_spacing(spacing: geo.Spacing, opts: LoadOptions) -> None:
    if spacing.problem is None:
        return
    code = ErrorCode.E_GEOMETRY_GAP if spacing.problem == "gap" else ErrorCode.E_GEOMETRY_UNEVEN
    if spacing.median <= 0:
        raise DeepCACError(code, "slices do not advance along the normal")
    if opts.gap_policy == "fail":
        kind = "missing slice(s)" if spacing.problem == "gap" else "uneven slice spacing"
        raise DeepCACError(code, f"{kind}: {spacing.describe()}; load with gap_policy='resample' to interpolate")
    if spacing.largest_ratio > opts.max_resample_gap:
        raise DeepCACError(
            code,
            f"{spacing.describe()}: a distance of {spacing.largest_ratio:.2f}x the median exceeds "
            f"max_resample_gap={opts.max_resample_gap}",
        )


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _mass_factor(ds: Dataset, notes: list[str]) -> float | None:
    """Patient mass factor (0018,9351), else the device one (0018,9352); None when neither is there.

    The device attribute holds three values (small, medium, large patient, PS3.3 C.8.15.2.1);
    the medium one is used, with a note.
    """
    patient = _float(ds.get("CalciumScoringMassFactorPatient"))
    if patient is not None:
        return patient
    device = ds.get("CalciumScoringMassFactorDevice")
    if device is None or device == "":
        return None
    values = [float(v) for v in device] if not isinstance(device, int | float) else [float(device)]
    if len(values) == 3:
        notes.append(f"mass factor from the device attribute {values}: medium-patient value used")
        return values[1]
    return values[0]
