"""``convert_series``: SEGs, SR and table rows of one scored series.

Files go to ``<out_dir>/<source SeriesInstanceUID>/``: ``seg.dcm`` (calcium), ``seg_vessels.dcm``
(calcium by vessel, when the model labels vessels), ``seg_heart.dcm`` (a heart made here; a
heart from IDC's TotalSegmentator SEG is referenced instead) and ``sr.dcm``, written
atomically; a rerun with the same inputs writes the same bytes under the same UIDs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.convert.table_rows import OutputObject, OutputRefs, lesion_rows, measurement_rows, series_row
from deepcac2.pipeline.dicomout.content_key import content_key
from deepcac2.pipeline.dicomout.references import anatomy_parameters, anatomy_reference
from deepcac2.pipeline.dicomout.source import require_frame_of_reference, source_headers
from deepcac2.pipeline.seg.content import AORTIC_SEGMENT, CAC_SEGMENT
from deepcac2.pipeline.seg.enum import SegEncoding, SegKind
from deepcac2.pipeline.seg.sop import build_seg, write_seg
from deepcac2.pipeline.sr.content import measurement_groups
from deepcac2.pipeline.sr.sop import build_sr, group_tracking_uid, write_sr
from deepcac2.pipeline.stage_values import CTVolume, Prediction, Scores, SeriesRef
from deepcac2.pipeline.uids import validate_uid

#: file name of each SEG kind in the series folder
SEG_FILES = {SegKind.CAC: "seg.dcm", SegKind.VESSELS: "seg_vessels.dcm", SegKind.HEART: "seg_heart.dcm"}


@dataclass(frozen=True)
class ConvertedSeries:
    """What ``convert_series`` wrote, and the table rows of the series (table name -> rows)."""

    series_uid: str
    seg_path: Path
    sr_path: Path
    refs: OutputRefs
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: every SEG written, by kind (``seg_path`` is the CAC one)
    seg_paths: dict[SegKind, Path] = field(default_factory=dict)


def _safe_dirname(series_uid: str) -> str:
    # the one UID rule: anything else must not become a path (e.g. "../x")
    return validate_uid(series_uid, "source SeriesInstanceUID")


def seg_kinds(prediction: Prediction) -> list[SegKind]:
    """The SEGs a prediction gets: calcium always; by vessel with labels; the heart when made here and not empty."""
    kinds = [SegKind.CAC]
    if prediction.vessels is not None:
        kinds.append(SegKind.VESSELS)
    if anatomy_reference(prediction) is None and prediction.heart.any():
        kinds.append(SegKind.HEART)
    return kinds


def score_aortic(ct: CTVolume, prediction: Prediction, conventions: list[str]) -> dict[str, Scores]:
    """Thoracic aortic calcium under the same conventions as the coronary scores (empty without a mask)."""
    if prediction.aortic is None:
        return {}
    from deepcac2.pipeline.scoring.engine import score_ct

    return {name: score_ct(ct, prediction.aortic, convention=name) for name in conventions}


def _object(ds: Dataset | None) -> OutputObject | None:
    if ds is None:
        return None
    return OutputObject(str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), str(ds.get("SeriesDescription", "")) or None)


def convert_series(
    ct: CTVolume,
    prediction: Prediction,
    scores_by_convention: dict[str, Scores],
    out_dir: str | os.PathLike[str],
    *,
    aortic_scores: dict[str, Scores] | None = None,
    series_ref: SeriesRef | None = None,
    seg_encoding: SegEncoding | str = SegEncoding.BINARY,
    qa_flags: tuple[str, ...] = (),
    toolkit_version: str = __version__,
) -> ConvertedSeries:
    """Write the SEGs and the TID 1500 SR of one series and build its table rows.

    ``aortic_scores``: thoracic aortic calcium per convention; scored here from
    ``prediction.aortic`` when not given. Zero calcium: the coronary calcium segment is
    still described (with no frames) and the SR reports 0 for it, so tables and viewers
    see the same layout.
    """
    encoding = SegEncoding(seg_encoding)
    folder = Path(out_dir) / _safe_dirname(ct.series_uid)
    scored = [name for name, s in scores_by_convention.items() if s.agatston > 0 or s.lesion_count > 0]
    if scored and not prediction.cac.any():
        # the SR would report calcium the SEG does not show: the inputs do not belong together
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"{ct.series_uid}: {scored} report calcium but the CAC mask is empty")
    if aortic_scores is None:
        aortic_scores = score_aortic(ct, prediction, sorted(scores_by_convention))
    if aortic_scores and prediction.aortic is None:
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"{ct.series_uid}: aortic scores without an aortic calcium mask")
    card = prediction.card

    require_frame_of_reference(ct)
    headers = source_headers(ct)  # what the SEGs and the SR take of the source: named attributes only
    key = content_key(ct, prediction, toolkit_version)  # one digest of the inputs: every output UID derives from it
    segs = {kind: build_seg(ct, prediction, kind=kind, encoding=encoding, toolkit_version=toolkit_version, key=key,
                            headers=headers)
            for kind in seg_kinds(prediction)}  # fmt: skip
    seg_paths = {kind: write_seg(seg, folder / SEG_FILES[kind]) for kind, seg in segs.items()}

    groups = measurement_groups(
        scores_by_convention,
        has_vessel_segments=prediction.vessels is not None,
        kvp=ct.kvp,
        aortic_by_convention=aortic_scores,
    )
    measured = {kind: segs[kind] for kind in (SegKind.CAC, SegKind.VESSELS) if kind in segs}
    sr = build_sr(
        ct, measured, groups, card, anatomy=anatomy_reference(prediction),
        anatomy_parameters=anatomy_parameters(prediction), toolkit_version=toolkit_version, headers=headers,
    )  # fmt: skip
    sr_path = write_sr(sr, folder / "sr.dcm")

    objects = {kind: _object(ds) for kind, ds in segs.items()}
    vessel, heart = objects.get(SegKind.VESSELS), objects.get(SegKind.HEART)
    refs = OutputRefs(
        seg_series_uid=objects[SegKind.CAC].series_uid,
        seg_sop_instance_uid=objects[SegKind.CAC].sop_instance_uid,
        seg_encoding=encoding.value,
        sr_series_uid=str(sr.SeriesInstanceUID),
        sr_sop_instance_uid=str(sr.SOPInstanceUID),
        cac_segment_number=CAC_SEGMENT,
        tac_segment_number=AORTIC_SEGMENT if prediction.aortic is not None else None,
        vessel_seg_series_uid=vessel.series_uid if vessel else None,
        vessel_seg_sop_instance_uid=vessel.sop_instance_uid if vessel else None,
        heart_seg_series_uid=heart.series_uid if heart else None,
        heart_seg_sop_instance_uid=heart.sop_instance_uid if heart else None,
    )
    tracking = {g.number: str(group_tracking_uid(ct.series_uid, card, g, toolkit_version)) for g in groups}
    rows = {
        "cac_series": [
            series_row(
                ct,
                prediction,
                scores_by_convention,
                refs,
                aortic_by_convention=aortic_scores,
                series_ref=series_ref,
                extra_qa_flags=qa_flags,
                toolkit_version=toolkit_version,
            )
        ],  # fmt: skip
        "cac_lesions": lesion_rows(ct.series_uid, scores_by_convention, refs),
        "measurements": measurement_rows(
            groups,
            source_series_uid=ct.series_uid,
            patient_id=ct.patient_id,
            segs=objects,
            sr=_object(sr),
            tracking_uids=tracking,
        ),
    }
    return ConvertedSeries(ct.series_uid, seg_paths[SegKind.CAC], sr_path, refs, rows, seg_paths)


def write_series_tables(converted: list[ConvertedSeries], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``<out_dir>/<table>.parquet`` for every table the converted series have rows for."""
    from deepcac2.pipeline.convert.parquet_tables import write_table
    from deepcac2.schemas.registry import get_table

    merged: dict[str, list[dict[str, Any]]] = {}
    for c in converted:
        for table, rows in c.rows.items():
            merged.setdefault(table, []).extend(rows)
    return {t: write_table(get_table(t), rows, Path(out_dir) / f"{t}.parquet") for t, rows in sorted(merged.items())}


__all__ = ["ConvertedSeries", "convert_series", "write_series_tables"]
