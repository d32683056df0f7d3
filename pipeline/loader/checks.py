"""The per-series checks of ``load_series``, each ending in a stable code or a noted decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader import geometry as geo
from deepcac2.pipeline.loader import pixels
from deepcac2.pipeline.loader.options import LoadOptions
from deepcac2.pipeline.loader.read import uid_text
from deepcac2.pipeline.loader.uid import validate_uid
from deepcac2.pipeline.loader.values import Values


@dataclass
class Slice:
    """One file of the series on its way through the checks."""

    path: Path
    ds: Dataset
    #: the converted values the checks read (``values.Values``; shared between slices, read-only)
    values: Values
    #: ImagePositionPatient, read in the geometry step
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    #: position projected on the slice normal (the sort key)
    s: float = 0.0


def check_uids(slices: list[Slice], opts: LoadOptions, notes: list[str]) -> dict[str, str]:
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
    sop_uids = [uid_text(sl.values, "SOPInstanceUID") for sl in slices]
    for sl, uid in zip(slices, sop_uids, strict=True):
        if uid:
            validate_uid(uid, f"SOPInstanceUID of {sl.path.name}")
    empty = [] if uids["series"] else ["SeriesInstanceUID"]
    if not all(sop_uids):
        empty.append(f"SOPInstanceUID ({sum(1 for u in sop_uids if not u)} of {len(sop_uids)} files)")
    if empty:
        message = f"empty {', '.join(empty)}"
        if opts.empty_uids == "fail":
            raise DeepCACError(ErrorCode.E_UID_INVALID, message)
        notes.append(f"{message}: slices keyed by file path; this series cannot be referenced by a DICOM SEG")
    return uids


def check_modality(slices: list[Slice], opts: LoadOptions) -> None:
    for sl in slices:
        modality = str(sl.values.get("Modality", "")).strip()
        if modality not in opts.modalities:
            raise DeepCACError(
                ErrorCode.E_MODALITY,
                f"{sl.path.name}: modality {modality or '<missing>'!r}, expected one of {list(opts.modalities)}",
            )


def check_pixel_modules(slices: list[Slice], opts: LoadOptions) -> None:
    if len(slices) > opts.max_slices:
        raise DeepCACError(ErrorCode.E_DIMENSIONS, f"{len(slices)} slices, more than max_slices={opts.max_slices}")
    size = None
    for sl in slices:
        ds, values, path = sl.ds, sl.values, sl.path
        rows, cols = int(values.get("Rows") or 0), int(values.get("Columns") or 0)
        if not (1 <= rows <= opts.max_rows and 1 <= cols <= opts.max_cols):
            raise DeepCACError(
                ErrorCode.E_DIMENSIONS,
                f"{path.name}: {rows}x{cols} pixels is outside 1..{opts.max_rows} x 1..{opts.max_cols}",
            )
        if size is not None and (rows, cols) != size:
            raise DeepCACError(ErrorCode.E_DIMENSIONS, f"{path.name}: {rows}x{cols} pixels, other slices {size}")
        size = (rows, cols)
        pixels.check_image_pixel_module(ds, values, path)
        syntax = pixels.transfer_syntax(ds, path)
        pixels.check_pixel_length(ds, values, path, syntax)


def common_frame(slices: list[Slice], opts: LoadOptions) -> geo.SliceFrame:
    frames = [geo.slice_frame(sl.values, sl.path) for sl in slices]
    return geo.common_frame(frames, [sl.path.name for sl in slices], opts.orientation_tolerance)


def drop_duplicates(slices: list[Slice], opts: LoadOptions, notes: list[str]) -> list[Slice]:
    """Same position: identical pixels -> keep the first, else E_DUPLICATE_CONFLICT."""
    kept: list[Slice] = []
    dropped = []
    for sl in slices:
        prev = kept[-1] if kept else None
        if prev is not None and np.linalg.norm(sl.position - prev.position) <= opts.duplicate_tolerance_mm:
            a = pixels.decode(prev.ds, prev.values, prev.path, release=False)
            b = pixels.decode(sl.ds, sl.values, sl.path, release=False)
            if not np.array_equal(a, b) or pixels.rescale(prev.values) != pixels.rescale(sl.values):
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
        uid = uid_text(sl.values, "SOPInstanceUID")
        if uid and uid in seen:
            raise DeepCACError(
                ErrorCode.E_DUPLICATE_CONFLICT,
                f"{seen[uid].name} and {sl.path.name} share SOPInstanceUID {uid} at different positions",
            )
        seen[uid] = sl.path
    return kept


def check_tilt(
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


def check_spacing(spacing: geo.Spacing, opts: LoadOptions) -> None:
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
