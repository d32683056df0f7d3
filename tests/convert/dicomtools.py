"""Independent readers for the tests: dciodvfy errors and the dcmqi SEG round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from deepcac2.pipeline.stage_values import Geometry

DCMQI_BIN = Path(sys.executable).parent


def dciodvfy_errors(exe: str, path: Path) -> list[str]:
    """Lines of dciodvfy output that report an error (warnings are allowed)."""
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def dcmqi_segments(seg_path: Path, out_dir: Path, grid: Geometry, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """segimage2itkimage's masks, resampled by nearest index onto our (z, y, x) grid, by segment label."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(DCMQI_BIN / "segimage2itkimage"), "--inputDICOM", str(seg_path), "--outputDirectory", str(out_dir)]
    done = subprocess.run([*cmd, "--outputType", "nrrd"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((out_dir / "meta.json").read_text())
    # our voxel centres in LPS, (z, y, x, 3)
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    lps = grid.index_to_lps(np.stack([i, j, k], axis=-1))
    masks: dict[str, np.ndarray] = {}
    for group, segments in enumerate(meta["segmentAttributes"], start=1):
        img = sitk.ReadImage(str(out_dir / f"{group}.nrrd"))
        arr = sitk.GetArrayFromImage(img)  # (z, y, x)
        direction = np.asarray(img.GetDirection()).reshape(3, 3)
        affine = direction * np.asarray(img.GetSpacing())[None, :]
        idx = np.rint((lps - np.asarray(img.GetOrigin())) @ np.linalg.inv(affine).T).astype(int)  # (..., i j k)
        inside = np.all((idx >= 0) & (idx < np.asarray(img.GetSize())), axis=-1)
        values = np.zeros(shape, dtype=arr.dtype)
        ii, jj, kk = idx[inside].T
        values[inside] = arr[kk, jj, ii]
        for seg in segments:
            masks[seg["SegmentLabel"]] = values == seg["labelID"]
    return masks


def tid1500_values(sr_path: Path, out_json: Path) -> dict[tuple[str, int, str], float]:
    """dcmqi tid1500reader's numbers: (tracking identifier, segment number, quantity code) -> value."""
    cmd = [str(DCMQI_BIN / "tid1500reader"), "--inputDICOM", str(sr_path), "--outputMetadata", str(out_json)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(out_json.read_text())
    return {
        (g["TrackingIdentifier"], int(g["ReferencedSegment"]), item["quantity"]["CodeValue"]): float(item["value"])
        for g in doc["Measurements"]
        for item in g["measurementItems"]
    }


def check_written_outputs(converted, prediction, measurements: list[dict], ct, tmp: Path, dciodvfy: str) -> None:
    """Every SEG and SR of one converted series: dciodvfy without errors, dcmqi reads back the same
    masks (voxel for voxel, segment by segment) and the same numbers as the measurements rows."""
    from pydicom import dcmread

    for path in (*converted.seg_paths.values(), converted.sr_path):
        assert dciodvfy_errors(dciodvfy, path) == [], path
    for kind, path in converted.seg_paths.items():
        got = dcmqi_segments(path, tmp / f"dcmqi-{kind.value}", ct.geometry, ct.shape)
        labels = {str(s.SegmentLabel) for s in dcmread(path, stop_before_pixels=True).SegmentSequence}
        for label in labels:
            want = _expected_mask(prediction, label)
            if want.any() or label in got:
                assert np.array_equal(got[label], want), (kind, label)
    want = {
        (m["trackingIdentifier"], m["segmentationSegmentNumber"], m["Quantity"]["CodeValue"]): m["Value"]
        for m in measurements
    }
    assert tid1500_values(converted.sr_path, tmp / "sr.json") == want


def _expected_mask(prediction, label: str) -> np.ndarray:
    from deepcac2.pipeline.stage_values import VESSEL_NAMES

    if label == "Heart":
        return np.asarray(prediction.heart, dtype=bool)
    if label == "Coronary calcium":
        return np.asarray(prediction.cac, dtype=bool)
    if label == "Thoracic aortic calcium":
        return np.asarray(prediction.aortic, dtype=bool)
    vessel = label.removesuffix(" calcium")
    return (prediction.vessels == VESSEL_NAMES[vessel]) & np.asarray(prediction.cac, dtype=bool)
