"""``convert_series``: SEG, SR and table rows of one scored series.

Files go to ``<out_dir>/<source SeriesInstanceUID>/seg.dcm`` and ``sr.dcm``, written
atomically; a rerun with the same inputs writes the same bytes under the same UIDs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepcac2._version import __version__
from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.convert.rows import OutputObject, OutputRefs, lesion_rows, measurement_rows, series_row
from deepcac2.pipeline.seg.content import CAC_SEGMENT
from deepcac2.pipeline.seg.enum import SegEncoding
from deepcac2.pipeline.seg.sop import build_seg, write_seg
from deepcac2.pipeline.sr.content import measurement_groups
from deepcac2.pipeline.sr.sop import build_sr, group_tracking_uid, write_sr
from deepcac2.pipeline.types import CTVolume, Prediction, Scores, SeriesRef


@dataclass(frozen=True)
class ConvertedSeries:
    """What ``convert_series`` wrote, and the table rows of the series (table name -> rows)."""

    series_uid: str
    seg_path: Path
    sr_path: Path
    refs: OutputRefs
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _safe_dirname(series_uid: str) -> str:
    # a UID is digits and dots; anything else must not become a path (e.g. "../x")
    if not series_uid or not all(ch.isdigit() or ch == "." for ch in series_uid):
        raise DeepCACError(ErrorCode.E_UID_INVALID, f"source SeriesInstanceUID {series_uid!r} is not a valid UID")
    return series_uid


def convert_series(
    ct: CTVolume,
    prediction: Prediction,
    scores_by_convention: dict[str, Scores],
    out_dir: str | os.PathLike[str],
    *,
    series_ref: SeriesRef | None = None,
    seg_encoding: SegEncoding | str = SegEncoding.BINARY,
    qa_flags: tuple[str, ...] = (),
    toolkit_version: str = __version__,
) -> ConvertedSeries:
    """Write the SEG and the TID 1500 SR of one series and build its table rows.

    Zero calcium: the coronary calcium segment is still described in the SEG (with no
    frames) and the SR reports 0 for it, so tables and viewers see the same layout.
    """
    encoding = SegEncoding(seg_encoding)
    folder = Path(out_dir) / _safe_dirname(ct.series_uid)
    scored = [name for name, s in scores_by_convention.items() if s.agatston > 0 or s.lesion_count > 0]
    if scored and not prediction.cac.any():
        # the SR would report calcium the SEG does not show: the inputs do not belong together
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"{ct.series_uid}: {scored} report calcium but the CAC mask is empty")
    card = prediction.card

    seg = build_seg(ct, prediction, encoding=encoding, toolkit_version=toolkit_version)
    seg_path = write_seg(seg, folder / "seg.dcm")

    groups = measurement_groups(scores_by_convention, has_vessel_segments=prediction.vessels is not None, kvp=ct.kvp)
    sr = build_sr(ct, seg, groups, card, toolkit_version=toolkit_version)
    sr_path = write_sr(sr, folder / "sr.dcm")

    refs = OutputRefs(
        seg_series_uid=str(seg.SeriesInstanceUID),
        seg_sop_instance_uid=str(seg.SOPInstanceUID),
        seg_encoding=encoding.value,
        sr_series_uid=str(sr.SeriesInstanceUID),
        sr_sop_instance_uid=str(sr.SOPInstanceUID),
        cac_segment_number=CAC_SEGMENT,
    )
    tracking = {g.number: str(group_tracking_uid(ct.series_uid, card, g, toolkit_version)) for g in groups}
    rows = {
        "cac_series": [
            series_row(
                ct,
                prediction,
                scores_by_convention,
                refs,
                series_ref=series_ref,
                extra_qa_flags=qa_flags,
                toolkit_version=toolkit_version,
            )
        ],
        "cac_lesions": lesion_rows(ct.series_uid, scores_by_convention, refs.seg_sop_instance_uid),
        "measurements": measurement_rows(
            groups,
            source_series_uid=ct.series_uid,
            patient_id=ct.patient_id,
            seg=OutputObject(refs.seg_series_uid, refs.seg_sop_instance_uid),
            sr=OutputObject(refs.sr_series_uid, refs.sr_sop_instance_uid, str(sr.get("SeriesDescription", "")) or None),
            tracking_uids=tracking,
        ),
    }
    return ConvertedSeries(ct.series_uid, seg_path, sr_path, refs, rows)


def write_series_tables(converted: list[ConvertedSeries], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``<out_dir>/<table>.parquet`` for every table the converted series have rows for."""
    from deepcac2.pipeline.convert.tables import write_table
    from deepcac2.schemas.registry import get_table

    merged: dict[str, list[dict[str, Any]]] = {}
    for c in converted:
        for table, rows in c.rows.items():
            merged.setdefault(table, []).extend(rows)
    return {t: write_table(get_table(t), rows, Path(out_dir) / f"{t}.parquet") for t, rows in sorted(merged.items())}


__all__ = ["ConvertedSeries", "convert_series", "write_series_tables"]
