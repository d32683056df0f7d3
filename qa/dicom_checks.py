"""Checks on the DICOM objects of a run: conformance, parse, round trip, integrity, plausibility.

Each function takes already-found objects and returns CheckResults; ``qa.walk.walk``
finds them (one read of each file) and ``add_object`` sorts them into SEG and SR by SOP Class.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.uid import UID
from scipy import ndimage

from deepcac2.qa.dciodvfy import validate
from deepcac2.qa.plausibility import HEART_ML_RANGE
from deepcac2.qa.result import CheckResult, Severity

SEG_CLASS = UID("1.2.840.10008.5.1.4.1.1.66.4")
SR_CLASSES = {
    UID("1.2.840.10008.5.1.4.1.1.88.34"),  # Comprehensive 3D SR
    UID("1.2.840.10008.5.1.4.1.1.88.33"),  # Comprehensive SR
    UID("1.2.840.10008.5.1.4.1.1.88.22"),  # Enhanced SR
}
B, W = Severity.BLOCKING, Severity.WARNING
#: plausible adult heart volume (mL) and the segment numbers the converter writes
HEART_ML = HEART_ML_RANGE  # our heart SEG holds the pericardial sac (the classical anatomy's)
HEART_SEGMENT, CAC_SEGMENT = 1, 1
#: SEG ContentLabel -> kind (``pipeline.seg.enum.SegKind``); the calcium SEG is ``segs``, the others ``extra_segs``
SEG_KINDS = {"CAC": "cac", "CAC_VESSELS": "vessels", "HEART": "heart"}


@dataclass
class RunObjects:
    """The SEG and SR files under a folder, keyed by the source series they reference.

    ``segs`` holds each series' calcium SEG; ``extra_segs`` its other SEGs by kind
    (``vessels``, ``heart``).
    """

    root: Path
    segs: dict[str, Path] = field(default_factory=dict)
    srs: dict[str, Path] = field(default_factory=dict)
    unreadable: list[Path] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    extra_segs: dict[str, dict[str, Path]] = field(default_factory=dict)

    def all_paths(self) -> list[Path]:
        extra = [p for kinds in self.extra_segs.values() for p in kinds.values()]
        return sorted([*self.segs.values(), *extra, *self.srs.values()])

    def subset(self, uids: set[str]) -> RunObjects:
        return RunObjects(
            self.root,
            {u: p for u, p in self.segs.items() if u in uids},
            {u: p for u, p in self.srs.items() if u in uids},
            self.unreadable,
            self.duplicates,
            {u: k for u, k in self.extra_segs.items() if u in uids},
        )


def _source_series_of(ds: pydicom.Dataset) -> str:
    for item in ds.get("ReferencedSeriesSequence", []):  # SEG
        return str(item.SeriesInstanceUID)
    for item in ds.get("CurrentRequestedProcedureEvidenceSequence", []):  # SR evidence: the CT series
        for series in item.get("ReferencedSeriesSequence", []):
            refs = series.get("ReferencedSOPSequence", [])
            if refs and UID(refs[0].ReferencedSOPClassUID) != SEG_CLASS:
                return str(series.SeriesInstanceUID)
    return ""


#: what :func:`filed_as` says of a file that is not readable DICOM (or has no SOP Class)
UNREADABLE = ("", "unreadable")


def filed_as(ds: pydicom.Dataset | None) -> tuple[str, str] | None:
    """(source series, kind: ``cac``, ``vessels``, ``heart`` or ``sr``) an object is filed under by
    :func:`add_object`; ``UNREADABLE``; None for a readable object that is no SEG or SR."""
    try:
        sop_class = UID(ds.SOPClassUID) if ds is not None else None
    except Exception:
        sop_class = None
    if sop_class is None:
        return UNREADABLE
    if sop_class == SEG_CLASS:
        return _source_series_of(ds), SEG_KINDS.get(str(ds.get("ContentLabel", "")), "cac")
    return (_source_series_of(ds), "sr") if sop_class in SR_CLASSES else None


def add_object(found: RunObjects, path: Path, ds: pydicom.Dataset | None) -> None:
    """File ``path`` (its header ``ds``; None: unreadable) under its source series as SEG or SR, or as unreadable."""
    filed = filed_as(ds)
    if filed == UNREADABLE:
        found.unreadable.append(path)
        return
    if filed is None:
        return
    source, kind = filed
    if kind == "sr":
        target, key = found.srs, source
    elif kind == "cac":
        target, key = found.segs, source
    else:
        target, key = found.extra_segs.setdefault(source, {}), kind
    if key in target:
        found.duplicates.append(source)
    target[key] = path


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def check_conformance(paths: list[Path], root: Path) -> list[CheckResult]:
    """dciodvfy on each file (the caller picks the files: all, or a seeded sample)."""
    out: list[CheckResult] = []
    for path in sorted(paths):
        v = validate(path)
        msg = "; ".join(v.errors[:5]) if v.errors else f"no errors ({len(v.warnings)} warnings)"
        out.append(CheckResult("dicom.dciodvfy", _rel(path, root), v.ok, B, msg, float(len(v.errors))))
    return out


def check_files(objects: RunObjects) -> list[CheckResult]:
    """Unreadable files and more than one SEG or SR for a source series."""
    out = [
        CheckResult("dicom.readable", _rel(p, objects.root), False, B, "not a readable DICOM file")
        for p in objects.unreadable
    ]
    out += [
        CheckResult(
            "dicom.unique_per_series", uid, False, B, "more than one SEG of a kind or SR for this source series"
        )
        for uid in sorted(set(objects.duplicates))
    ]
    return out


def _index_sets(array: np.ndarray) -> set[tuple[int, int, int]]:
    """Foreground voxels as index triples in the array's own axis order (highdicom's affine takes that order)."""
    return set(zip(*(a.tolist() for a in np.nonzero(array)), strict=True))


def _dcmqi_index_sets(seg_path: Path, target_affine: np.ndarray) -> dict[int, set[tuple[int, int, int]]]:
    """dcmqi's reading of the SEG, mapped onto highdicom's array indices through both affines.

    SimpleITK's affine takes (i, j, k) = (column, row, slice); highdicom's takes its array
    order (slice, row, column), so the mapped triples compare directly with ``_index_sets``.
    """
    exe = Path(sys.executable).with_name("segimage2itkimage")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                str(exe),
                "--inputDICOM",
                str(seg_path),
                "--outputDirectory",
                tmp,
                "--outputType",
                "nrrd",
                "--prefix",
                "s",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        inv = np.linalg.inv(target_affine)
        out: dict[int, set[tuple[int, int, int]]] = {}
        for nrrd in sorted(Path(tmp).glob("s-*.nrrd")):
            number = int(nrrd.stem.split("-")[-1])
            img = sitk.ReadImage(str(nrrd))
            k, j, i = np.nonzero(sitk.GetArrayViewFromImage(img))
            affine = np.eye(4)
            affine[:3, :3] = np.asarray(img.GetDirection()).reshape(3, 3) * np.asarray(img.GetSpacing())
            affine[:3, 3] = img.GetOrigin()
            mapped = (inv @ affine @ np.stack([i, j, k, np.ones_like(i)]).astype(float))[:3]
            rounded = np.rint(mapped)
            if mapped.size and np.abs(mapped - rounded).max() > 1e-3:
                raise ValueError(f"dcmqi segment {number} is not on the SEG's voxel lattice")
            out[number] = set(map(tuple, rounded.astype(int).T.tolist()))
        return out


def plausibility(uid: str, heart: np.ndarray | None, cac: np.ndarray | None, voxel_ml: float) -> list[CheckResult]:
    """Heart volume in range, one heart component, calcium inside or touching the heart.

    ``heart`` is the heart SEG's mask (None when the heart was IDC's TotalSegmentator SEG,
    which is theirs to check); ``cac`` the calcium SEG's coronary segment on the same grid.
    Whether the scan covers the heart (an empty slice above and below) needs the source
    slice positions, which a SEG with empty frames omitted does not hold: the pipeline
    flags it per series in ``cac_series.qa_flags`` (``heart_at_scan_edge``).
    """
    if heart is None:
        return [CheckResult("seg.heart_present", uid, True, Severity.INFO, "no heart SEG: the heart is referenced")]
    heart_ml = float(heart.sum() * voxel_ml)
    out = [
        CheckResult(
            "seg.heart_volume", uid, HEART_ML[0] <= heart_ml <= HEART_ML[1], W,
            f"{heart_ml:.0f} mL (plausible {HEART_ML[0]:.0f}-{HEART_ML[1]:.0f})", heart_ml,
        )
    ]  # fmt: skip
    _, n_components = ndimage.label(heart)
    out.append(
        CheckResult("seg.heart_components", uid, n_components == 1, W, f"{n_components} components", n_components)
    )
    if cac is not None and cac.shape == heart.shape:
        n_out = int((cac & ~ndimage.binary_dilation(heart, iterations=2)).sum())
        out.append(
            CheckResult(
                "seg.calcium_in_heart", uid, n_out == 0, W,
                f"{n_out} of {int(cac.sum())} calcium voxels more than 2 voxels outside the heart", float(n_out),
            )
        )  # fmt: skip
    return out


def check_seg(uid: str, seg_path: Path, source_uids: list[str] | None = None) -> tuple[list[CheckResult], SegRead]:
    """Read one SEG once: highdicom parse and dcmqi round trip. Returns results and what was read.

    ``source_uids``: the source instances in slice order; masks then come on the source grid
    (``SegRead.masks``), so SEGs of one series compare voxel for voxel.
    """
    read = SegRead(set(), {}, 0.0)
    try:
        seg = hd.seg.segread(seg_path)
        numbers = [int(s.SegmentNumber) for s in seg.SegmentSequence]
        volume = seg.get_volume(combine_segments=False, skip_overlap_checks=True, allow_missing_positions=True)
    except Exception as exc:
        return [CheckResult("dicom.seg.highdicom_parse", uid, False, B, f"{type(exc).__name__}: {exc}")], read
    out = [CheckResult("dicom.seg.highdicom_parse", uid, True, B, f"{len(numbers)} segments")]
    masks = {n: volume.array[..., idx] > 0 for idx, n in enumerate(numbers)}
    try:
        theirs = _dcmqi_index_sets(seg_path, volume.affine)
        diffs = []
        for number in sorted(set(masks) | set(theirs)):
            a = _index_sets(masks[number]) if number in masks else set()
            b = theirs.get(number, set())
            if a != b:
                diffs.append(f"segment {number}: {len(a ^ b)} voxels differ ({len(a)} vs {len(b)})")
        out.append(
            CheckResult(
                "dicom.seg.dcmqi_round_trip", uid, not diffs, B,
                "; ".join(diffs) or "dcmqi equals highdicom voxel for voxel",
            )
        )  # fmt: skip
    except Exception as exc:
        out.append(CheckResult("dicom.seg.dcmqi_round_trip", uid, False, B, f"{type(exc).__name__}: {exc}"))
    voxel_ml = abs(np.linalg.det(volume.affine[:3, :3])) / 1000.0
    on_grid: dict[int, np.ndarray] = {}
    if source_uids:
        try:
            stack = seg.get_pixels_by_source_instance(source_sop_instance_uids=source_uids, combine_segments=False)
            on_grid = {n: stack[..., idx] > 0 for idx, n in enumerate(numbers)}
        except Exception:  # frames not aligned with the source: no cross-SEG plausibility
            on_grid = {}
    return out, SegRead(set(numbers), on_grid, voxel_ml)


@dataclass
class SegRead:
    """What ``check_seg`` read: segment numbers, masks on the source grid by number, voxel volume."""

    numbers: set[int]
    masks: dict[int, np.ndarray]
    voxel_ml: float


def source_instances(seg_path: Path) -> list[str]:
    """The source SOPInstanceUIDs a SEG lists, in its (slice) order, without its anatomy citation."""
    ds = pydicom.dcmread(seg_path, stop_before_pixels=True)
    return [str(i.ReferencedSOPInstanceUID) for i in ds.get("SourceImageSequence", [])]


def check_sr_parse(uid: str, sr_path: Path) -> list[CheckResult]:
    try:
        hd.sr.srread(sr_path)
        return [CheckResult("dicom.sr.highdicom_parse", uid, True, B, "parsed")]
    except Exception as exc:
        return [CheckResult("dicom.sr.highdicom_parse", uid, False, B, f"{type(exc).__name__}: {exc}")]
