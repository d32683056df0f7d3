"""A TotalSegmentator SEG in IDC's exact format for every synthetic chest.

IDC's TotalSegmentator SEGs of NLST were written by dcmqi ``itkimage2segimage --skip``
with ``dicomseg_metadata_whole_slicerAsRef.json`` from TotalSegmentator v1's 104-label
map. We do the same, from a label map made out of the phantom's tissues
(:data:`TISSUE_CLASSES`), with plausible boundary errors: the label map is resampled
through a smooth random displacement (seeded, about 1 mm), as a segmentation model's
borders wander. What the phantom does not separate is split by geometry:

* lungs into the five lobes (oblique and horizontal fissures through the lung's centre);
* bone into vertebrae (25 mm levels, T8 at the heart's centre), ribs (each rib band, by
  side, numbered so that the one at the heart's centre is the sixth) and the sternum
  (TotalSegmentator v1 has no sternum class: left out);
* unnamed heart blood (older phantoms) into the four chambers by quadrant.

Coronaries, pericardial fat, lymph nodes, costal cartilage, the superior vena cava and
the arch branches have no TotalSegmentator v1 class and stay background. After dcmqi,
the UIDs and dates it drew at random are replaced by ones derived from the CT series,
so a synth run is reproducible; nothing else in the object changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from scipy import ndimage as ndi

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.synth.labels import Distractor, Tissue
from deepcac2.pipeline.synth.phantom import Phantom
from deepcac2.pipeline.totalseg.codes import TOTALSEG_VERSION, classes, metadata
from deepcac2.pipeline.uids import derive_uid

#: phantom tissue -> TotalSegmentator v1 class, where one class holds the whole tissue
TISSUE_CLASSES: dict[Tissue, str] = {
    Tissue.MYOCARDIUM: "heart_myocardium",
    Tissue.LEFT_ATRIUM: "heart_atrium_left",
    Tissue.LEFT_VENTRICLE: "heart_ventricle_left",
    Tissue.RIGHT_ATRIUM: "heart_atrium_right",
    Tissue.RIGHT_VENTRICLE: "heart_ventricle_right",
    Tissue.AORTA: "aorta",
    Tissue.PULMONARY_ARTERY: "pulmonary_artery",
    Tissue.ESOPHAGUS: "esophagus",
    Tissue.AIRWAY: "trachea",
    Tissue.LIVER: "liver",
}
#: calcium the phantom marks as a distractor, by the class TotalSegmentator would include it in
CALCIUM_CLASSES: dict[Distractor, str] = {
    Distractor.AORTIC_WALL: "aorta",
    Distractor.ASCENDING_AORTA_WALL: "aorta",
    Distractor.AORTIC_ARCH_WALL: "aorta",
    Distractor.AORTIC_VALVE: "aorta",
    Distractor.MITRAL_ANNULUS: "heart_myocardium",
}
#: boundary errors: displacement SD (mm) and the smoothness of the field (Gaussian sigma, mm)
WANDER_MM, SMOOTH_MM = 1.0, 12.0
VERTEBRA_MM = 25.0


def _id(name: str) -> int:
    return classes()[name][0]


def _mm_grids(shape: tuple[int, int, int], spacing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z, y, x = (np.arange(n) * s for n, s in zip(shape, (spacing[2], spacing[1], spacing[0]), strict=True))
    return z[:, None, None], y[None, :, None], x[None, None, :]


def _median_index(counts: np.ndarray) -> float:
    """The median index of a histogram (voxel counts per index)."""
    c = np.cumsum(counts)
    return float(np.searchsorted(c, c[-1] / 2.0))


def _lobes(labels: np.ndarray, lung: np.ndarray, spacing, midline_x: float) -> None:
    """Split each lung into TotalSegmentator's lobes by fissure planes through its centre."""
    z, y, x = _mm_grids(lung.shape, spacing)
    for left in (True, False):
        side = lung & ((x > midline_x) if left else (x <= midline_x))
        if not side.any():
            continue
        zc = _median_index(side.sum(axis=(1, 2))) * spacing[2]
        yc = _median_index(side.sum(axis=(0, 2))) * spacing[1]
        # the oblique fissure runs from posterior-superior to anterior-inferior
        upper = side & ((z - zc) - 0.6 * (y - yc) > 0)
        lower = side & ~upper
        if left:
            labels[upper], labels[lower] = _id("lung_upper_lobe_left"), _id("lung_lower_lobe_left")
        else:
            middle = upper & (z < zc + 15.0) & (y < yc)
            labels[upper & ~middle] = _id("lung_upper_lobe_right")
            labels[middle], labels[lower] = _id("lung_middle_lobe_right"), _id("lung_lower_lobe_right")


def _bones(labels: np.ndarray, bone: np.ndarray, spacing, midline_x: float, heart_z: float) -> None:
    """Vertebrae by level, ribs by band and side; the sternum (no v1 class) stays background."""
    z, y, x = _mm_grids(bone.shape, spacing)
    ys = np.flatnonzero(bone.any(axis=(0, 2))) * spacing[1]
    y_mid = 0.5 * (ys.min() + ys.max()) if ys.size else 0.0
    central = np.abs(x - midline_x) < 25.0
    spine = bone & central & (y > y_mid)
    level = np.clip(np.rint((z - heart_z) / VERTEBRA_MM), -9, 14).astype(int)  # 0: T8 at the heart's centre
    vertebra = np.clip(_id("vertebrae_T8") - level, _id("vertebrae_L5"), _id("vertebrae_C1"))
    labels[spine] = np.broadcast_to(vertebra, bone.shape)[spine]
    # the central band is cut out, so left and right ribs are separate components
    lab, n = ndi.label(bone & ~central, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return
    where = np.nonzero(lab)
    comp = lab[where]
    count = np.bincount(comp, minlength=n + 1)[1:]
    zc = np.bincount(comp, weights=where[0], minlength=n + 1)[1:] / count * spacing[2]
    xc = np.bincount(comp, weights=where[2], minlength=n + 1)[1:] / count * spacing[0]
    table = np.zeros(n + 1, dtype=np.uint8)
    for side in ("left", "right"):
        mine = np.flatnonzero((xc > midline_x) if side == "left" else (xc <= midline_x))
        order = mine[np.argsort(-zc[mine])]  # top first
        if order.size == 0:
            continue
        at_heart = int(np.argmin(np.abs(zc[order] - heart_z)))
        for rank, c in enumerate(order):
            table[c + 1] = _id(f"rib_{side}_{int(np.clip(6 + rank - at_heart, 1, 12))}")
    labels[where] = table[comp]


def _heart_blood(labels: np.ndarray, blood: np.ndarray, spacing) -> None:
    """Unnamed heart blood (phantoms without chamber labels) into the four chambers by quadrant."""
    if not blood.any():
        return
    kk, _, ii = np.nonzero(blood)
    zc, xc = kk.mean(), ii.mean()
    z = np.arange(blood.shape[0])[:, None, None]
    x = np.arange(blood.shape[2])[None, None, :]
    left, high = x > xc, z >= zc
    for name, where in (
        ("heart_ventricle_left", left & ~high),
        ("heart_atrium_left", left & high),
        ("heart_ventricle_right", ~left & ~high),
        ("heart_atrium_right", ~left & high),
    ):
        labels[blood & where] = _id(name)


def label_map(phantom: Phantom) -> np.ndarray:
    """The phantom as a TotalSegmentator v1 label map (uint8, IDs 1-104; 0 background), before boundary errors."""
    anat, spacing = phantom.anatomy, phantom.geometry.spacing
    labels = np.zeros(anat.shape, dtype=np.uint8)
    for tissue, name in TISSUE_CLASSES.items():
        labels[anat == tissue] = _id(name)
    calcium = anat == Tissue.DISTRACTOR_CALCIUM
    for kind, name in CALCIUM_CLASSES.items():
        labels[calcium & (phantom.distractors == kind)] = _id(name)
    _heart_blood(labels, anat == Tissue.BLOOD, spacing)
    bone = np.isin(anat, (Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE))
    xs = np.flatnonzero(bone.any(axis=(0, 1)))
    midline = 0.5 * (xs.min() + xs.max()) * spacing[0] if xs.size else 0.5 * anat.shape[2] * spacing[0]
    heart_k = np.flatnonzero(phantom.heart.any(axis=(1, 2)))
    heart_z = (0.5 * (heart_k.min() + heart_k.max()) if heart_k.size else 0.5 * anat.shape[0]) * spacing[2]
    _lobes(labels, np.isin(anat, (Tissue.LUNG, Tissue.LUNG_VESSEL)), spacing, midline)
    _bones(labels, bone, spacing, midline, heart_z)
    return labels


def with_boundary_errors(labels: np.ndarray, spacing, seed: int) -> np.ndarray:
    """``labels`` resampled (nearest) through a smooth random in-plane displacement of about ``WANDER_MM``.

    The field is drawn on a coarse grid, smoothed, and rounded to whole voxels: a
    segmentation's borders wander by a voxel or two, in patches.
    """
    rng = np.random.default_rng([seed, 14])
    sp = np.asarray((spacing[2], spacing[1], spacing[0]), dtype=float)
    step = np.maximum(np.rint(SMOOTH_MM / 2 / sp), 1).astype(int)
    coarse = tuple(int(np.ceil(n / s)) + 1 for n, s in zip(labels.shape, step, strict=True))
    shifts = []
    for axis in (1, 2):
        f = ndi.gaussian_filter(rng.standard_normal(coarse), SMOOTH_MM / (step * sp))
        f *= WANDER_MM / max(float(f.std()), 1e-9) / sp[axis]  # in voxels along this axis
        f = np.rint(f).astype(np.int16)
        for ax, k in enumerate(step):  # nearest upsampling: cheap, and whole-voxel steps anyway
            f = np.repeat(f, k, axis=ax)
        shifts.append(f[: labels.shape[0], : labels.shape[1], : labels.shape[2]])
    nz, ny, nx = labels.shape
    jj = np.clip(np.arange(ny, dtype=np.int16)[None, :, None] + shifts[0], 0, ny - 1)
    ii = np.clip(np.arange(nx, dtype=np.int16)[None, None, :] + shifts[1], 0, nx - 1)
    kk = np.arange(nz)[:, None, None]
    return labels[kk, jj, ii]


def _dcmqi_metadata(series_number: int) -> dict:
    """IDC's metadata with the series number and description CloudSegmentator gives its SEGs."""
    doc = json.loads(json.dumps(metadata()))
    doc["SeriesNumber"] = str(series_number * 100)
    doc["SeriesDescription"] = f"{TOTALSEG_VERSION.replace(' v', '(v')}) Segmentation of Series {series_number}"
    return doc


def itkimage2segimage() -> str:
    """The dcmqi converter (the ``dcmqi`` wheel installs it beside the interpreter)."""
    exe = shutil.which("itkimage2segimage") or str(Path(__import__("sys").executable).with_name("itkimage2segimage"))
    if not Path(exe).exists():
        raise DeepCACError(ErrorCode.E_SYNTH_SPEC, "dcmqi's itkimage2segimage not found: pip install dcmqi")
    return exe


def _pin_identity(path: Path, ct_header: pydicom.Dataset) -> None:
    """Replace the UIDs and dates dcmqi drew by ones derived from the CT series (reproducible synth)."""
    ds = pydicom.dcmread(path)
    ct_series = str(ct_header.SeriesInstanceUID)
    ds.SeriesInstanceUID = derive_uid(ct_series, "totalsegmentator-seg-series")
    ds.SOPInstanceUID = derive_uid(ct_series, "totalsegmentator-seg-instance")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for item in ds.get("DimensionOrganizationSequence") or []:
        item.DimensionOrganizationUID = derive_uid(ct_series, "totalsegmentator-seg-dimensions")
    for item in ds.get("DimensionIndexSequence") or []:
        item.DimensionOrganizationUID = derive_uid(ct_series, "totalsegmentator-seg-dimensions")
    date, time = str(ct_header.get("StudyDate") or "20000101"), str(ct_header.get("StudyTime") or "000000")
    for prefix in ("Series", "Content", "InstanceCreation"):
        if f"{prefix}Date" in ds:
            setattr(ds, f"{prefix}Date", date)
        if f"{prefix}Time" in ds:
            setattr(ds, f"{prefix}Time", time)
    ds.save_as(path, enforce_file_format=True)


def write_totalseg_seg(labels: np.ndarray, phantom: Phantom, ct_folder: Path, out_path: Path) -> Path:
    """Write IDC's TotalSegmentator SEG of the CT series in ``ct_folder`` from a v1 label map."""
    first = pydicom.dcmread(sorted(Path(ct_folder).glob("*.dcm"))[0], stop_before_pixels=True)
    img = sitk.GetImageFromArray(labels)
    g = phantom.geometry
    img.SetOrigin(g.origin)
    img.SetSpacing(g.spacing)
    img.SetDirection(g.direction)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="totalseg-") as tmp:
        nii, meta = Path(tmp) / "labels.nii.gz", Path(tmp) / "metadata.json"
        sitk.WriteImage(img, str(nii))
        meta.write_text(json.dumps(_dcmqi_metadata(int(first.get("SeriesNumber") or 1))))
        cmd = [itkimage2segimage(), "--inputImageList", str(nii), "--inputDICOMDirectory", str(ct_folder),
               "--inputMetadata", str(meta), "--outputDICOM", str(out_path), "--skip", "1"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out_path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DeepCACError(ErrorCode.E_SYNTH_SPEC, f"itkimage2segimage failed ({proc.returncode}): {' | '.join(tail)}")
    _pin_identity(out_path, first)
    return out_path


def seg_path_for(study_folder: Path, ct_series_uid: str) -> Path:
    """Where synth puts the SEG of a CT series: its own series folder in the CT's study folder."""
    return study_folder / str(derive_uid(ct_series_uid, "totalsegmentator-seg-series")) / "seg.dcm"


class SegWriter:
    """Writes the SEGs of a cohort in background threads while the next chests are built.

    dcmqi runs as a subprocess, so its work overlaps the phantom building of the main
    thread; the label map of a phantom is made once for all its series (kernels).
    """

    def __init__(self, workers: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="totalseg")
        self._jobs: list = []
        self._labels: tuple[Phantom, object] | None = None
        #: seconds spent in each part, summed over the SEGs (for the synth report)
        self.seconds: dict[str, float] = {"labels": 0.0, "dcmqi": 0.0}

    def _labels_of(self, phantom: Phantom) -> np.ndarray:
        import time

        t0 = time.perf_counter()
        labels = with_boundary_errors(label_map(phantom), phantom.geometry.spacing, phantom.seed)
        self.seconds["labels"] += time.perf_counter() - t0
        return labels

    def _write(self, labels_future, phantom: Phantom, ct_folder: Path, out_path: Path) -> Path:
        import time

        labels = labels_future.result()
        t0 = time.perf_counter()
        path = write_totalseg_seg(labels, phantom, ct_folder, out_path)
        self.seconds["dcmqi"] += time.perf_counter() - t0
        return path

    def submit(self, phantom: Phantom, ct_folder: Path, out_path: Path) -> None:
        pending = [j for j in self._jobs if not j.done()]
        if len(pending) > 2 * self._pool._max_workers:  # back-pressure: each job holds a phantom
            pending[0].result()
        if self._labels is None or self._labels[0] is not phantom:
            self._labels = (phantom, self._pool.submit(self._labels_of, phantom))
        self._jobs.append(self._pool.submit(self._write, self._labels[1], phantom, ct_folder, out_path))

    def close(self) -> list[Path]:
        """Wait for every SEG; the first failure is raised."""
        try:
            return [job.result() for job in self._jobs]
        finally:
            self._labels = None
            self._pool.shutdown(wait=True)
