"""Referential integrity and SR-versus-table agreement.

For each row of ``cac_series``: its SEG and SR exist and carry the UIDs the row names;
SEG, SR and row agree on patient, study and frame of reference; the SEG references the
source series (and, when the source files are at hand, only instances that exist);
the SR's groups point at real SEG segments and report exactly the table's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
from pydicom.valuerep import DSfloat

from deepcac2.qa.dicom_checks import RunObjects
from deepcac2.qa.result import CheckResult, Severity

B = Severity.BLOCKING
#: SR concept code -> cac_series column prefix (the column is ``<prefix>_<convention>``)
SR_TO_COLUMN = {"112058": "agatston", "122660": "volume_mm3", "122661": "mass_mg", "111038": "lesion_count"}
#: measurement group region (its Tracking Identifier's start) -> cac_series column prefix
REGION_PREFIX = {"Coronary": "", "Thoracic aortic": "tac_"}


#: the ``cac_series`` columns the per-object checks read of a row (besides the SR's numbers, ``row_columns``)
ROW_UIDS = (
    "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "seg_sop_instance_uid", "sr_sop_instance_uid",
    "anatomy_seg_uid", "vessel_seg_sop_instance_uid", "heart_seg_sop_instance_uid",
)  # fmt: skip


def row_columns(names: Iterable[str]) -> list[str]:
    """Of a table's column ``names``, those :func:`check_references` and :func:`check_sr_matches_table` read."""
    numbers = tuple(f"{region}{prefix}_" for region in REGION_PREFIX.values() for prefix in SR_TO_COLUMN.values())
    return [n for n in names if n in ROW_UIDS or n.startswith(numbers)]


def _same(a: Any, b: Any) -> bool:
    return (a or None) == (b or None)


def _group_convention(tracking_identifier: str) -> tuple[str, str] | None:
    """'Coronary calcium [deepcac]' -> ('Coronary', 'deepcac')."""
    if not tracking_identifier.endswith("]") or " calcium [" not in tracking_identifier:
        return None
    region, conv = tracking_identifier[:-1].split(" calcium [", 1)
    return region, conv


#: DCM code of the TEXT item that names a measurement group (TID 1411)
TRACKING_IDENTIFIER = "112039"


def _raw_numbers(items: Any, out: dict[tuple[str, str], tuple[float | None, str | None]]) -> None:
    """(tracking identifier, NUM concept code) -> its two encodings as stored in the file.

    Read from the raw dataset on purpose: highdicom rebuilds a NUM item's NumericValue from
    its FloatingPointValue, so a file whose two encodings disagree would look consistent.
    """
    for item in items:
        children = item.get("ContentSequence", [])
        if item.get("ValueType") == "CONTAINER" and children:
            tid = next(
                (
                    str(c.get("TextValue", ""))
                    for c in children
                    if c.get("ValueType") == "TEXT" and c.ConceptNameCodeSequence[0].CodeValue == TRACKING_IDENTIFIER
                ),
                None,
            )
            for c in children:
                if tid is not None and c.get("ValueType") == "NUM" and "MeasuredValueSequence" in c:
                    measured = c.MeasuredValueSequence[0]
                    fp = float(measured.FloatingPointValue) if "FloatingPointValue" in measured else None
                    ds = str(measured.NumericValue).strip() if "NumericValue" in measured else None
                    out[(tid, str(c.ConceptNameCodeSequence[0].CodeValue))] = (fp, ds)
            _raw_numbers(children, out)


def _value_mismatches(column: str, table_value: Any, sr: tuple[float | None, str | None] | None) -> list[str]:
    """Both encodings must say the table's number.

    FloatingPointValue must equal it exactly; NumericValue must read as the decimal string
    the writer makes of it (highdicom: ``DS(value, auto_format=True)``, at most 16 characters).
    """
    fp, ds = sr if sr is not None else (None, None)
    if table_value is None:
        return [] if fp is None and ds is None else [f"{column}: table null vs SR {ds}"]
    if fp is None and ds is None:
        return [f"{column}: table {table_value} vs SR absent"]
    out = []
    if not math.isfinite(float(table_value)):  # the range check reports the table; no SR can say it
        return [f"{column}: table {table_value} is not a finite number"]
    if fp is not None and fp != float(table_value):
        out.append(f"{column}: table {table_value} vs SR FloatingPointValue {fp}")
    expected = float(DSfloat(table_value, auto_format=True))
    try:
        shown = float(ds) if ds is not None else None
    except ValueError:
        shown = None
    if shown != expected:
        out.append(f"{column}: table {table_value} vs SR NumericValue {ds!r}")
    return out


def check_sr_matches_table(
    uid: str, sr_path: Path, row: dict[str, Any], segments: dict[str, set[int]]
) -> list[CheckResult]:
    """Every all-coronary and aortic SR number equals the row, in both encodings (FloatingPointValue and
    NumericValue, as stored); every group references a segment of one of the row's SEGs (``segments``: SOPInstanceUID -> segment numbers read from that SEG)."""
    out: list[CheckResult] = []
    report = hd.sr.srread(sr_path).content
    raw: dict[tuple[str, str], tuple[float | None, str | None]] = {}
    _raw_numbers(pydicom.dcmread(sr_path).ContentSequence, raw)
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
        for code, prefix in SR_TO_COLUMN.items():
            column = f"{REGION_PREFIX[region]}{prefix}_{conv}"
            if column not in row:
                continue
            mismatches += _value_mismatches(column, row[column], raw.get((tid, code)))
    if not seen_conventions:
        mismatches.append("the SR has no all-coronary measurement group")
    out.append(CheckResult("sr.matches_table", uid, not mismatches, B, "; ".join(mismatches) or "SR equals cac_series"))
    out.append(
        CheckResult("sr.references_seg_segment", uid, not dangling, B, "; ".join(dangling) or "all groups resolve")
    )
    return out


def check_idc_views(uid: str, sr_path: Path) -> list[CheckResult]:
    """IDC's views, replayed (``qa.idc_views``), keep every measurement group and every value of the SR."""
    from deepcac2.qa.idc_views import measurement_groups, values_dropped

    sr = pydicom.dcmread(sr_path)
    kept = len(measurement_groups(sr))
    total = len(hd.sr.srread(sr_path).content.get_volumetric_roi_measurement_groups())
    msg = f"IDC's views keep {kept} of {total} measurement groups"
    lost = values_dropped(sr)
    values = "; ".join(lost[:5]) + (f"; ... {len(lost) - 5} more" if len(lost) > 5 else "")
    return [
        CheckResult("sr.idc_views_keep_groups", uid, kept == total and total > 0, B, msg, float(total - kept)),
        CheckResult(
            "sr.idc_views_keep_values",
            uid,
            not lost,
            B,
            f"IDC's quantitative and qualitative views drop: {values}" if lost else "IDC's views keep every value",
            float(len(lost)),
        ),
    ]


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


def check_unreferenced(rows: list[dict[str, Any]], walked: dict[str, str]) -> list[CheckResult]:
    """Every DICOM object in the folder is named by ``cac_series`` (a ``*_sop_instance_uid`` column).

    An object nothing references (a stale SEG of a series that now fails, a copy, a
    half-written file) would ship without a row: blocking. ``walked``: every object's relative
    path -> SOPInstanceUID, as ``qa.walk.walk`` read them (``Walked.sop_uids``).
    """
    referenced = {str(r[k]) for r in rows for k in r if k.endswith("_sop_instance_uid") and r[k]}
    stray = [rel for rel, uid in walked.items() if uid not in referenced]
    n = len(walked)
    out = [
        CheckResult("dicom.unreferenced", rel, False, B, "a DICOM object no cac_series row names (stale or stray)")
        for rel in stray
    ]
    out.append(
        CheckResult(
            "dicom.all_referenced",
            "dicom",
            not stray,
            B,
            f"{len(stray)} of {n} DICOM objects unreferenced",
            float(len(stray)),
        )
    )
    return out
