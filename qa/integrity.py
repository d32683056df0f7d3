"""Referential integrity and SR-versus-table agreement.

For each row of ``cac_series``: its SEG and SR exist and carry the UIDs the row names;
SEG, SR and row agree on patient, study and frame of reference; the SEG references the
source series (and, when the source files are at hand, only instances that exist);
the SR's groups point at real SEG segments and report exactly the table's numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom

from deepcac2.qa.dicom_checks import RunObjects
from deepcac2.qa.result import CheckResult, Severity

B = Severity.BLOCKING
#: SR concept code -> cac_series column prefix (the column is ``<prefix>_<convention>``)
SR_TO_COLUMN = {"112058": "agatston", "122660": "volume_mm3", "122661": "mass_mg", "111038": "lesion_count"}


def _same(a: Any, b: Any) -> bool:
    return (a or None) == (b or None)


def _group_convention(tracking_identifier: str) -> tuple[str, str] | None:
    """'Coronary calcium [deepcac]' -> ('Coronary', 'deepcac')."""
    if not tracking_identifier.endswith("]") or " calcium [" not in tracking_identifier:
        return None
    region, conv = tracking_identifier[:-1].split(" calcium [", 1)
    return region, conv


def check_sr_matches_table(uid: str, sr_path: Path, row: dict[str, Any], seg_segments: set[int]) -> list[CheckResult]:
    """Every all-calcium SR number equals the row; every group references an existing SEG segment."""
    out: list[CheckResult] = []
    report = hd.sr.srread(sr_path).content
    mismatches: list[str] = []
    dangling: list[str] = []
    seen_conventions = set()
    for group in report.get_volumetric_roi_measurement_groups():
        tid = str(group.tracking_identifier)
        ref = group.referenced_segment
        if ref is None or ref.referenced_sop_instance_uid != row.get("seg_sop_instance_uid"):
            dangling.append(f"{tid}: references another SEG")
        elif not set(ref.referenced_segment_numbers) <= seg_segments:
            dangling.append(f"{tid}: segment {ref.referenced_segment_numbers} not in the SEG")
        parsed = _group_convention(tid)
        if parsed is None or parsed[0] != "Coronary":
            continue
        conv = parsed[1]
        seen_conventions.add(conv)
        values = {m.name.value: float(m.value) for m in group.get_measurements()}
        for code, prefix in SR_TO_COLUMN.items():
            column = f"{prefix}_{conv}"
            if column not in row:
                continue
            table_value = row[column]
            sr_value = values.get(code)
            if table_value is None and sr_value is None:
                continue
            if table_value is None or sr_value is None or float(table_value) != sr_value:
                mismatches.append(f"{column}: table {table_value} vs SR {sr_value}")
    if not seen_conventions:
        mismatches.append("the SR has no all-calcium measurement group")
    out.append(CheckResult("sr.matches_table", uid, not mismatches, B, "; ".join(mismatches) or "SR equals cac_series"))
    out.append(
        CheckResult("sr.references_seg_segment", uid, not dangling, B, "; ".join(dangling) or "all groups resolve")
    )
    return out


def _source_instances(location: str | None) -> tuple[set[str], set[str]] | None:
    """SOPInstanceUIDs and FrameOfReferenceUIDs of the source files, or None when they are not at hand."""
    if not location or not Path(location).is_dir():
        return None
    uids, frames = set(), set()
    for path in Path(location).rglob("*"):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID", "FrameOfReferenceUID"])
        except Exception:
            continue  # not DICOM: the loader reported it when it ran
        uids.add(str(ds.get("SOPInstanceUID", "")))
        frames.add(str(ds.get("FrameOfReferenceUID", "")))
    return uids, frames


def check_references(
    objects: RunObjects, rows: list[dict[str, Any]], source_locations: dict[str, str] | None = None
) -> list[CheckResult]:
    """SEG and SR of each row: present, UIDs as in the row, same patient/study/frame, source series referenced."""
    out: list[CheckResult] = []
    source_locations = source_locations or {}
    for row in sorted(rows, key=lambda r: r["SeriesInstanceUID"]):
        uid = row["SeriesInstanceUID"]
        seg_path, sr_path = objects.segs.get(uid), objects.srs.get(uid)
        missing = [k for k, p in (("SEG", seg_path), ("SR", sr_path)) if p is None]
        out.append(
            CheckResult("refs.objects_present", uid, not missing, B, f"missing {', '.join(missing)}" if missing else "")
        )
        if missing:
            continue
        seg = pydicom.dcmread(seg_path, stop_before_pixels=True)
        sr = pydicom.dcmread(sr_path)
        problems = []
        if str(seg.SOPInstanceUID) != row.get("seg_sop_instance_uid"):
            problems.append("SEG SOPInstanceUID differs from cac_series")
        if str(sr.SOPInstanceUID) != row.get("sr_sop_instance_uid"):
            problems.append("SR SOPInstanceUID differs from cac_series")
        for name, column in (("StudyInstanceUID", "StudyInstanceUID"), ("PatientID", "PatientID")):
            values = {str(seg.get(name, "")), str(sr.get(name, ""))}
            if len(values) != 1 or not _same(values.pop(), row.get(column)):
                problems.append(f"{name} differs between SEG, SR and cac_series")
        referenced_series = [str(s.SeriesInstanceUID) for s in seg.get("ReferencedSeriesSequence", [])]
        if referenced_series != [uid]:
            problems.append(f"SEG references series {referenced_series}, not {uid}")
        out.append(CheckResult("refs.identity", uid, not problems, B, "; ".join(problems) or "consistent"))
        source = _source_instances(source_locations.get(uid))
        if source is None:
            out.append(
                CheckResult("refs.source_instances", uid, True, Severity.INFO, "source not at hand; not checked")
            )
            continue
        existing, frames = source
        same_frame = frames == {str(seg.get("FrameOfReferenceUID", ""))}
        out.append(
            CheckResult("refs.frame_of_reference", uid, same_frame, B, "" if same_frame else f"source {sorted(frames)}")
        )
        referenced = {
            str(i.ReferencedSOPInstanceUID)
            for s in seg.get("ReferencedSeriesSequence", [])
            for i in s.get("ReferencedInstanceSequence", [])
        }
        unknown = referenced - existing
        out.append(
            CheckResult(
                "refs.source_instances", uid, not unknown and bool(referenced), B,
                f"{len(unknown)} of {len(referenced)} referenced instances not in the source", float(len(unknown)),
            )
        )  # fmt: skip
    return out
