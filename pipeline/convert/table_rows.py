"""Pure row builders: one dict per table row, keyed like the schemas in ``schemas/``.

No I/O and no clocks here, so the same inputs always give the same rows. The ``failures``
and ``runs`` rows are built where a run records them (``pipeline/orchestrate/records.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.seg.content import CAC_SEGMENT, vessel_segment_number
from deepcac2.pipeline.sr.content import GroupSpec, canonical_json, ds_value
from deepcac2.pipeline.stage_values import CTVolume, Prediction, Scores, SeriesRef
from deepcac2.schemas import cac_series

#: SeriesRef.params key (the cohort's column names, ``pipeline.cohort.nlst.NLST_FIELDS``) ->
#: (cac_series column, DICOM keyword used when the param is absent)
ACQUISITION_PARAMS: dict[str, tuple[str, str | None]] = {
    "study_year": ("study_year", None),
    "scanner_manufacturer": ("scanner_manufacturer", "Manufacturer"),
    "scanner_model": ("scanner_model", "ManufacturerModelName"),
    "kernel": ("kernel", "ConvolutionKernel"),
    "slice_thickness_mm": ("slice_thickness_mm", "SliceThickness"),
    "kvp": ("kvp", "KVP"),
    "ma": ("tube_current_ma", "XRayTubeCurrent"),
}
_MISSING = {"", "na", "null", "unkn", "none"}


@dataclass(frozen=True)
class OutputRefs:
    """What was written for a series: the UIDs tables point at (null: that object was not written)."""

    seg_series_uid: str
    seg_sop_instance_uid: str
    seg_encoding: str
    sr_series_uid: str
    sr_sop_instance_uid: str
    cac_segment_number: int | None = CAC_SEGMENT
    tac_segment_number: int | None = None
    vessel_seg_series_uid: str | None = None
    vessel_seg_sop_instance_uid: str | None = None
    heart_seg_series_uid: str | None = None
    heart_seg_sop_instance_uid: str | None = None


def _json(obj: Any) -> str:
    try:
        return canonical_json(obj)
    except (DeepCACError, ValueError) as exc:
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"cannot store {obj!r} as JSON: {exc}") from exc


def _plain(value: Any) -> Any:
    """DICOM multi-values and numpy scalars to plain Python; 'na'-style strings to None."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and value.strip().lower() in _MISSING:
        return None
    if hasattr(value, "__iter__") and not isinstance(value, str | bytes):
        value = "\\".join(str(v) for v in value)
    return value


def _typed(column: str, value: Any) -> Any:
    """Coerce to the column's type; a value that does not fit is an error, not a silent null."""
    value = _plain(value)
    if value is None:
        return None
    kind = cac_series.TABLE.column(column).type
    try:
        if pa.types.is_integer(kind):
            f = float(value)
            if not f.is_integer():
                raise ValueError("not an integer")
            return int(f)
        if pa.types.is_floating(kind):
            f = float(value)
            if not math.isfinite(f):
                raise ValueError("not a finite number")
            return f
        return str(value).strip()
    except (TypeError, ValueError) as exc:
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"cac_series.{column}: cannot use {value!r} ({exc})") from exc


#: aortic wall calcium pieces smaller than this are noise for the ``aortic_calcium_missed`` check
AORTA_WALL_MIN_PIECE = 5
#: the check warns from this many wall calcium voxels on
AORTA_WALL_MIN_VOXELS = 10


def anatomy_counts(ct: CTVolume, prediction: Prediction) -> dict[str, Any]:
    """What QA needs to judge the prediction against its anatomy (the run keeps no anatomy masks)."""
    anatomy = prediction.anatomy
    out: dict[str, Any] = {
        "candidate_rules_json": None
        if prediction.rejected is None
        else _json(dict(sorted(prediction.rejected.items()))),
        "aortic_calcium_voxels": None if prediction.aortic is None else int(np.count_nonzero(prediction.aortic)),
        "cac_in_aorta_voxels": None,
        "aorta_wall_calcium_voxels": None,
    }
    if anatomy is None or getattr(anatomy, "aorta", None) is None:
        return out
    aorta = anatomy.aorta
    out["cac_in_aorta_voxels"] = int(np.count_nonzero(prediction.cac & aorta))
    from scipy import ndimage

    labels, n = ndimage.label(aorta & (ct.hu >= 130), structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    out["aorta_wall_calcium_voxels"] = int(sizes[sizes >= AORTA_WALL_MIN_PIECE].sum())
    return out


#: coronary arteries run in the epicardial fat, on the heart's surface: within this distance of a
#: heart of chambers and myocardium (TotalSegmentator's), as the classical rules' pericardial shell
PERICARDIAL_SHELL_MM = 10.0


def coronary_calcium_beyond_the_shell(ct: CTVolume, prediction: Prediction) -> bool:
    """Whether coronary calcium lies farther than PERICARDIAL_SHELL_MM from the heart mask.

    Calcium just outside the heart mask is where coronaries are (a heart of chambers and
    myocardium leaves them out); calcium beyond the shell is not coronary, and a reviewer should look.
    """
    outside = prediction.cac & ~prediction.heart
    if not outside.any():
        return False
    from scipy import ndimage

    sx, sy, sz = ct.geometry.spacing
    margin = [int(np.ceil((PERICARDIAL_SHELL_MM + 1.0) / s)) for s in (sz, sy, sx)]
    where = np.argwhere(outside)
    box = tuple(
        slice(max(0, int(lo) - m), int(hi) + m + 1)
        for lo, hi, m in zip(where.min(0), where.max(0), margin, strict=True)
    )
    heart = prediction.heart[box]
    if not heart.any():
        return True
    # distances inside the box suffice: a heart voxel outside it is farther than the shell anyway
    far = ndimage.distance_transform_edt(~heart, sampling=(sz, sy, sx)) > PERICARDIAL_SHELL_MM
    return bool((far & outside[box]).any())


def qa_flags(ct: CTVolume, prediction: Prediction, scores_by_convention: dict[str, Scores]) -> list[str]:
    """Flags computed here without labels: facts a reviewer should see, not errors."""
    flags = []
    if not prediction.heart.any():
        flags.append("heart_empty")
    elif prediction.heart[0].any() or prediction.heart[-1].any():
        flags.append("heart_at_scan_edge")  # no empty slice above or below: the scan may cut the heart
    if coronary_calcium_beyond_the_shell(ct, prediction):
        flags.append("cac_outside_heart")
    if ct.mass_factor is None:
        flags.append("mass_unknown")
    counts = anatomy_counts(ct, prediction)
    if counts["cac_in_aorta_voxels"]:
        flags.append("cac_in_aorta")  # coronary calcium inside the aorta: blocking in QA
    if counts["aortic_calcium_voxels"] == 0 and (counts["aorta_wall_calcium_voxels"] or 0) >= AORTA_WALL_MIN_VOXELS:
        flags.append("aortic_calcium_missed")  # calcified aortic wall, but no aortic calcium reported
    return flags


#: ``cac_series`` column prefix -> the ``Prediction`` mask it scores (``cac_series.VALVE_CALCIUM``)
VALVE_MASKS = {"mac": "mitral_annular", "avc": "aortic_valve"}


def valve_calcium_columns(ct: CTVolume, prediction: Prediction, conventions: list[str]) -> dict[str, Any]:
    """Mitral annular and aortic valve calcium under the coronary scores' conventions (absent without a mask)."""
    from deepcac2.pipeline.scoring.engine import score_ct

    out: dict[str, Any] = {}
    for prefix, attr in VALVE_MASKS.items():
        mask = getattr(prediction, attr, None)
        if mask is None:
            continue
        for name in conventions:
            s = score_ct(ct, mask, convention=name)
            out[f"{prefix}_agatston_{name}"] = ds_value(s.agatston)
            out[f"{prefix}_volume_mm3_{name}"] = ds_value(s.volume_mm3)
            out[f"{prefix}_lesion_count_{name}"] = int(s.lesion_count)
    return out


def series_row(
    ct: CTVolume,
    prediction: Prediction,
    scores_by_convention: dict[str, Scores],
    refs: OutputRefs,
    *,
    aortic_by_convention: dict[str, Scores] | None = None,
    series_ref: SeriesRef | None = None,
    extra_qa_flags: tuple[str, ...] = (),
    toolkit_version: str = __version__,
) -> dict[str, Any]:
    """The ``cac_series`` row of one series."""
    names = {c.name for c in cac_series.TABLE.columns}
    ref = series_ref or SeriesRef(series_uid=ct.series_uid)
    if ref.series_uid != ct.series_uid:
        raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"SeriesRef {ref.series_uid} is not the CT {ct.series_uid}")
    header = ct.headers[0] if ct.headers else {}
    card = prediction.card
    row: dict[str, Any] = {
        "SeriesInstanceUID": ct.series_uid,
        "StudyInstanceUID": ct.study_uid or ref.study_uid,
        "PatientID": ct.patient_id or ref.patient_id,
        "collection_id": ref.collection_id,
        "crdc_series_uuid": ref.crdc_series_uuid,
        "slice_spacing_mm": float(ct.geometry.spacing[2]),
        "pixel_spacing_mm": float(ct.geometry.spacing[0]),
        "rows": ct.shape[1],
        "columns": ct.shape[2],
        "num_slices": ct.shape[0],
        "mass_factor": ct.mass_factor,
        "heart_volume_ml": float(np.count_nonzero(prediction.heart)) * ct.geometry.voxel_volume_mm3 / 1000.0,
    }
    for key, (column, keyword) in ACQUISITION_PARAMS.items():
        value = ref.params.get(key)
        if _plain(value) is None and keyword is not None:
            value = header.get(keyword) if hasattr(header, "get") else None
        row[column] = _typed(column, value)
    if ct.kvp is not None and row["kvp"] is None:
        row["kvp"] = float(ct.kvp)
    if ct.slice_thickness is not None and row["slice_thickness_mm"] is None:
        row["slice_thickness_mm"] = float(ct.slice_thickness)
    for name, s in scores_by_convention.items():
        if f"agatston_{name}" not in names:
            raise DeepCACError(
                ErrorCode.E_CONVENTION_UNKNOWN,
                f"convention {name!r} has no cac_series columns; variants go to cac_lesions/measurements only",
            )
        # the numbers the SR holds (DS precision), so SR and table agree exactly
        row[f"agatston_{name}"] = ds_value(s.agatston)
        row[f"volume_mm3_{name}"] = ds_value(s.volume_mm3)
        row[f"mass_mg_{name}"] = None if s.mass_mg is None else ds_value(s.mass_mg)
        row[f"lesion_count_{name}"] = int(s.lesion_count)
        for scheme, label in s.categories.items():
            column = f"risk_{scheme}_{name}"
            if column not in names:
                raise DeepCACError(ErrorCode.E_TABLE_WRITE, f"risk scheme {scheme!r} has no cac_series column")
            row[column] = label
    for name, s in (aortic_by_convention or {}).items():
        row[f"tac_agatston_{name}"] = ds_value(s.agatston)
        row[f"tac_volume_mm3_{name}"] = ds_value(s.volume_mm3)
        row[f"tac_mass_mg_{name}"] = None if s.mass_mg is None else ds_value(s.mass_mg)
        row[f"tac_lesion_count_{name}"] = int(s.lesion_count)
    row.update(valve_calcium_columns(ct, prediction, list(scores_by_convention)))
    flags = qa_flags(ct, prediction, scores_by_convention) + list(extra_qa_flags)
    row.update({k: v for k, v in anatomy_counts(ct, prediction).items() if k in names})
    anatomy = prediction.anatomy
    provenance = anatomy.provenance if anatomy is not None else None
    row.update(
        qa_flags=sorted(set(flags)),
        loader_notes=[*ct.notes, *(anatomy.notes if anatomy is not None else ())],
        anatomy_provider=provenance.provider if provenance is not None else None,
        anatomy_version=provenance.version if provenance is not None else None,
        anatomy_seg_uid=provenance.seg_series_uid if provenance is not None else None,
        seg_series_uid=refs.seg_series_uid,
        seg_sop_instance_uid=refs.seg_sop_instance_uid,
        seg_encoding=refs.seg_encoding,
        cac_segment_number=refs.cac_segment_number,
        tac_segment_number=refs.tac_segment_number,
        vessel_seg_series_uid=refs.vessel_seg_series_uid,
        vessel_seg_sop_instance_uid=refs.vessel_seg_sop_instance_uid,
        heart_seg_series_uid=refs.heart_seg_series_uid,
        heart_seg_sop_instance_uid=refs.heart_seg_sop_instance_uid,
        sr_series_uid=refs.sr_series_uid,
        sr_sop_instance_uid=refs.sr_sop_instance_uid,
        model_name=card.name,
        model_version=card.version,
        model_weights_sha256=card.weights_sha256,
        model_id=card.model_id,
        model_description=card.description or None,
        toolkit_version=toolkit_version,
        conventions_json=_json({n: s.convention_params for n, s in sorted(scores_by_convention.items())}),
    )
    return row


def lesion_rows(series_uid: str, scores_by_convention: dict[str, Scores], refs: OutputRefs) -> list[dict[str, Any]]:
    """``cac_lesions`` rows: every lesion of every convention, with the SEG segment that holds it."""
    rows = []
    for name in sorted(scores_by_convention):
        for les in scores_by_convention[name].lesions:
            x, y, z = (float(v) for v in les.centroid_lps)
            rows.append(
                {
                    "SeriesInstanceUID": series_uid,
                    "convention": name,
                    "lesion_id": int(les.lesion_id),
                    "vessel": les.vessel,
                    "segment_number": vessel_segment_number(les.vessel) if les.vessel else CAC_SEGMENT,
                    "seg_sop_instance_uid": refs.vessel_seg_sop_instance_uid
                    if les.vessel
                    else refs.seg_sop_instance_uid,
                    "first_slice": int(les.first_slice),
                    "last_slice": int(les.last_slice),
                    "area_mm2": float(les.area_mm2),
                    "peak_hu": float(les.peak_hu),
                    "mean_hu": float(les.mean_hu),
                    "volume_mm3": float(les.volume_mm3),
                    "agatston": float(les.agatston),
                    "centroid_x_mm": x,
                    "centroid_y_mm": y,
                    "centroid_z_mm": z,
                }
            )
    return rows


def measurement_rows(
    groups: list[GroupSpec],
    *,
    source_series_uid: str,
    patient_id: str | None,
    segs: dict[Any, OutputObject],
    sr: OutputObject,
    tracking_uids: dict[int, str],
) -> list[dict[str, Any]]:
    """``measurements`` rows, one per numeric measurement of the SR, in IDC's quantitative_measurements shape.

    ``segs`` maps each group's ``seg_kind`` to the SEG it measures; ``tracking_uids`` maps group
    number -> Tracking Unique Identifier.
    """
    rows = []
    for g in groups:
        seg = segs[g.seg_kind]
        for m in g.measurements:
            rows.append(
                {
                    "PatientID": patient_id,
                    "SOPInstanceUID": sr.sop_instance_uid,
                    "SeriesInstanceUID": sr.series_uid,
                    "SeriesDescription": sr.series_description,
                    "measurementGroup_number": g.number,
                    "segmentationInstanceUID": seg.sop_instance_uid,
                    "segmentationSeriesUID": seg.series_uid,
                    "segmentationSegmentNumber": g.segment_number,
                    "sourceSegmentedSeriesUID": source_series_uid,
                    "trackingIdentifier": g.tracking_id,
                    "trackingUniqueIdentifier": tracking_uids[g.number],
                    "Quantity": idc_code(m.quantity),
                    "derivationModifier": idc_code(None),
                    "Value": float(m.value),
                    "Units": idc_code(m.unit, version=True),
                    "finding": idc_code(g.finding, version=True),
                    "findingSite": idc_code(g.finding_site, version=True),
                    "lateralityModifier": idc_code(None, version=True),
                    "method": None if m.method is None else idc_code(m.method),
                    "convention": g.convention,
                }
            )
    return rows


@dataclass(frozen=True)
class OutputObject:
    """Identity of one DICOM object we wrote, as tables cite it."""

    series_uid: str
    sop_instance_uid: str
    series_description: str | None = None


def idc_code(code: Any, *, version: bool = False) -> dict[str, str | None]:
    """A code as IDC's views give it: a struct of CodeValue, CodingSchemeDesignator, [CodingSchemeVersion,]
    CodeMeaning; no code is a struct of nulls (IDC's ``STRUCT(NULL AS CodeValue, ...)``)."""
    out: dict[str, str | None] = {
        "CodeValue": None if code is None else code.value,
        "CodingSchemeDesignator": None if code is None else code.scheme_designator,
    }
    if version:
        out["CodingSchemeVersion"] = None if code is None else code.scheme_version
    out["CodeMeaning"] = None if code is None else code.meaning
    return out
