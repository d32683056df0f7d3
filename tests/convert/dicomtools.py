"""Independent readers for the tests: dciodvfy errors and the dcmqi SEG round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from deepcac2.pipeline.types import Geometry

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
