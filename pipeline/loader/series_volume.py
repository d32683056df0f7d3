"""``load_series``: one DICOM series (folder or file list) to a CT volume in HU, or a typed error.

The steps run in a fixed order so a series with several defects always reports the same
code: files -> images -> series -> UIDs -> modality -> pixel module -> geometry ->
duplicates -> slice count -> tilt -> spacing -> pixels -> opt-in corrections.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from pydicom.dataset import Dataset

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.loader import checks, pixels
from deepcac2.pipeline.loader import geometry as geo
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
from deepcac2.pipeline.loader.warnings_notes import collect_warnings, summarize
from deepcac2.pipeline.stage_values import CTVolume, Geometry, InstanceRef

#: what the loader reads a series from: a folder, or a list of its files (not a ``sources.Source``)
SeriesFiles = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def load_series(source: SeriesFiles, options: LoadOptions | None = None, *, series_uid: str | None = None) -> CTVolume:
    """Load one CT series as HU with its geometry, or raise DeepCACError with a stable code.

    ``source`` is a folder (searched at any depth) or a list of files. When it holds more
    than one series, ``series_uid`` picks one; without it that is E_MIXED_SERIES.
    pydicom's warnings about values become notes (on failure, the error's ``warnings`` detail),
    never printed.
    """
    with collect_warnings() as caught:
        try:
            ct = _load_series(source, options or LoadOptions(), series_uid)
        except DeepCACError as exc:
            if caught:
                exc.detail["warnings"] = "; ".join(summarize(caught))
            raise
    return replace(ct, notes=(*ct.notes, *summarize(caught))) if caught else ct


def _load_series(source: SeriesFiles, opts: LoadOptions, series_uid: str | None) -> CTVolume:
    notes: list[str] = []
    paths = list_files(source)
    if not paths:
        raise DeepCACError(ErrorCode.E_NO_IMAGES, f"no files in {source}")
    files = [checks.Slice(path, ds, values) for path, ds, values in iter_readable(paths, opts.skip_unreadable, notes)]
    slices = _pick_series(_images(files, opts, notes), series_uid)
    first = slices[0].ds  # series-level attributes come from this one file
    parse_series_attributes(first, slices[0].path)
    uids = checks.check_uids(slices, opts, notes)
    checks.check_modality(slices, opts)
    checks.check_pixel_modules(slices, opts)
    frame = checks.common_frame(slices, opts)
    normal = frame.normal
    for sl in slices:
        sl.position = geo.position(sl.values, sl.path)
        sl.s = float(sl.position @ normal)
    slices.sort(key=lambda sl: (sl.s, str(sl.path)))
    slices = checks.drop_duplicates(slices, opts, notes)
    if len(slices) < opts.min_slices:
        raise DeepCACError(
            ErrorCode.E_TOO_FEW_SLICES, f"{len(slices)} slices after cleaning; at least {opts.min_slices} needed"
        )
    positions = np.stack([sl.position for sl in slices])
    drift = checks.check_tilt(geo.gantry_tilt_degrees(first), positions, frame, opts, notes)
    s = np.array([sl.s for sl in slices])
    spacing = geo.judge_spacing(s, opts.spacing_tolerance)
    checks.check_spacing(spacing, opts)

    hu = pixels.hu_volume([sl.ds for sl in slices], [sl.values for sl in slices], [sl.path for sl in slices], notes)
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
            InstanceRef(uid_text(sl.values, "SOPClassUID"), uid_text(sl.values, "SOPInstanceUID"), str(sl.path))
            for sl in slices
        ),
        headers=[sl.ds for sl in slices],
        notes=tuple(notes),
    )


def _images(files: list[checks.Slice], opts: LoadOptions, notes: list[str]) -> list[checks.Slice]:
    """Image files only: non-image objects (DICOMDIR, SR, ...) and localizers are set aside with a note.

    A file that is neither an image nor a known non-image object is damaged: E_UNREADABLE_FILE.
    """
    kinds = [object_kind(f.ds) for f in files]
    for f, kind in zip(files, kinds, strict=True):
        if kind == "unknown" and not opts.skip_unreadable:
            raise DeepCACError(
                ErrorCode.E_UNREADABLE_FILE, f"{f.path.name}: neither an image nor a known DICOM object (damaged?)"
            )
    images = [f for f, kind in zip(files, kinds, strict=True) if kind == "image"]
    for f in images:  # before grouping: a cut-off file may lack its series UID too
        if "PixelData" not in f.ds:
            raise DeepCACError(ErrorCode.E_TRUNCATED_PIXELS, f"{f.path.name}: an image without Pixel Data (truncated?)")
    others = [f.path.name for f, kind in zip(files, kinds, strict=True) if kind == "other"]
    if others:
        notes.append(f"ignored {len(others)} non-image DICOM object(s): {', '.join(others)}")
    if len(images) + len(others) < len(files):
        notes.append(f"skipped {len(files) - len(images) - len(others)} unrecognisable DICOM file(s)")
    if opts.exclude_localizers:
        kept = [f for f in images if not is_localizer(f.values)]
        if len(kept) < len(images):
            names = ", ".join(f.path.name for f in images if is_localizer(f.values))
            notes.append(f"excluded {len(images) - len(kept)} localizer image(s): {names}")
        images = kept
    return images


def _pick_series(images: list[checks.Slice], series_uid: str | None) -> list[checks.Slice]:
    if not images:
        raise DeepCACError(
            ErrorCode.E_NO_IMAGES, "no CT images in the source (after removing non-images and localizers)"
        )
    groups: dict[str, list[checks.Slice]] = {}
    for image in images:
        groups.setdefault(uid_text(image.values, "SeriesInstanceUID"), []).append(image)
    if series_uid is not None:
        wanted = validate_uid(series_uid, "requested series UID")
        if wanted not in groups:
            raise DeepCACError(ErrorCode.E_NO_IMAGES, f"series {wanted} is not in the source (found {sorted(groups)})")
        return groups[wanted]
    if len(groups) > 1:
        counts = ", ".join(f"{uid or '<empty>'} ({len(g)} files)" for uid, g in sorted(groups.items()))
        raise DeepCACError(ErrorCode.E_MIXED_SERIES, f"the source holds {len(groups)} series: {counts}; pick one")
    return next(iter(groups.values()))


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
