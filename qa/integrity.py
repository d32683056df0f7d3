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
#: measurement group region (its Tracking Identifier's start) -> cac_series column prefix
REGION_PREFIX = {"Coronary": "", "Thoracic aortic": "tac_"}


def _same(a: Any, b: Any) -> bool:
    return (a or None) == (b or None)


def _group_convention(tracking_identifier: str) -> tuple[str, str] | None:
    """'Coronary calcium [deepcac]' -> ('Coronary', 'deepcac')."""
    if not tracking_identifier.endswith("]") or " calcium [" not in tracking_identifier:
        return None
    region, conv = tracking_identifier[:-1].split(" calcium [", 1)
    return region, conv


def check_sr_matches_table(
    uid: str, sr_path: Path, row: dict[str, Any], segments: dict[str, set[int]]
) -> list[CheckResult]:
    """Every all-coronary and aortic SR number equals the row; every group references a segment of one
    of the row's SEGs (``segments``: SOPInstanceUID -> segment numbers read from that SEG)."""
    out: list[CheckResult] = []
    report = hd.sr.srread(sr_path).content
    mismatches: list[str] = []
    dangling: list[str] = []
    seen_conventions = set()
    for group in report.get_volumetric_roi_measurement_groups():
        tid = str(group.tracking_identifier)
        ref = group.referenced_segment
        ours = {row.get("seg_sop_instance_uid"), row.get("vessel_seg_sop_instance_uid")} - {None}
        if ref is None or ref.referenced_sop_instance_uid not in ours:
            dangling.append(f"{tid}: references a SEG that is not this series'")
        elif not set(ref.referenced_segment_numbers) <= segments.get(ref.referenced_sop_instance_uid, set()):
            dangling.append(f"{tid}: segment {ref.referenced_segment_numbers} not in the SEG")
        parsed = _group_convention(tid)
        if parsed is None or parsed[0] not in REGION_PREFIX:
            continue
        region, conv = parsed
        if region == "Coronary":
            seen_conventions.add(conv)
        values = {m.name.value: float(m.value) for m in group.get_measurements()}
        for code, prefix in SR_TO_COLUMN.items():
            column = f"{REGION_PREFIX[region]}{prefix}_{conv}"
            if column not in row:
                continue
            table_value = row[column]
            sr_value = values.get(code)
            if table_value is None and sr_value is None:
                continue
            if table_value is None or sr_value is None or float(table_value) != sr_value:
                mismatches.append(f"{column}: table {table_value} vs SR {sr_value}")
    if not seen_conventions:
        mismatches.append("the SR has no all-coronary measurement group")
    out.append(CheckResult("sr.matches_table", uid, not mismatches, B, "; ".join(mismatches) or "SR equals cac_series"))
    out.append(
        CheckResult("sr.references_seg_segment", uid, not dangling, B, "; ".join(dangling) or "all groups resolve")
    )
    return out


def check_idc_views(uid: str, sr_path: Path) -> list[CheckResult]:
    """IDC's measurement_groups view would keep every measurement group of the SR (``qa.idc_views``)."""
    from deepcac2.qa.idc_views import measurement_groups

    sr = pydicom.dcmread(sr_path)
    kept = len(measurement_groups(sr))
    total = len(hd.sr.srread(sr_path).content.get_volumetric_roi_measurement_groups())
    msg = f"IDC's views keep {kept} of {total} measurement groups"
    return [CheckResult("sr.idc_views_keep_groups", uid, kept == total and total > 0, B, msg, float(total - kept))]


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
        allowed = [uid, *([row["anatomy_seg_uid"]] if row.get("anatomy_seg_uid") else [])]
        if referenced_series[:1] != [uid] or not set(referenced_series) <= set(allowed):
            problems.append(f"SEG references series {referenced_series}, not {uid} (and the anatomy SEG)")
        for kind, column in (("vessels", "vessel_seg_sop_instance_uid"), ("heart", "heart_seg_sop_instance_uid")):
            path = objects.extra_segs.get(uid, {}).get(kind)
            found = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID) if path else None
            if not _same(found, row.get(column)):
                problems.append(f"{kind} SEG {found} differs from cac_series.{column} {row.get(column)}")
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
            if str(s.SeriesInstanceUID) == uid  # not the anatomy SEG it cites
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
