"""The published DeepCAC2 inference steps, run with TorchIO 0.19.1 itself: the oracle of the U-Net tests.

Written from the public MHub ``deepcac2`` code (``src/subject.py``, ``src/inference.py``),
step by step in our own words:

1. the CT and heart are NIfTI files (here written with SimpleITK from our arrays: float32
   header geometry, as every NIfTI writer stores it), read as ``tio.ScalarImage`` and
   ``tio.LabelMap``;
2. ``Resample(spacing)`` -> ``CropOrPad(shape, mask_name='heart')`` -> ``Clamp(-135, 500,
   keep=...)`` -> ``ZNormalization`` -> ``RescaleIntensity((0, 1))``;
3. windows ``range(0, size - patch, stride)`` per axis, x outermost, run one at a time when
   they hold a heart voxel; sigmoid outputs summed in float64, divided by the count;
4. ``> threshold``, a LabelMap on the crop's affine, ``apply_inverse_transform``, then
   ``Resample(original image)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from deepcac2.pipeline.stage_values import Geometry

tio = pytest.importorskip("torchio", minversion="0.19.1")


def write_nifti(array_zyx: np.ndarray, geometry: Geometry, path: Path) -> Path:
    img = sitk.GetImageFromArray(array_zyx)
    img.SetOrigin(geometry.origin)
    img.SetSpacing(geometry.spacing)
    img.SetDirection(geometry.direction)
    sitk.WriteImage(img, str(path))
    return path


def transforms(spacing_xyz, shape_xyz):
    return tio.Compose(
        [
            tio.Resample(target=spacing_xyz),
            tio.CropOrPad(target_shape=shape_xyz, mask_name="heart"),
            tio.Clamp(out_min=-135, out_max=500, keep={"image": "image_original_hu"}),
            tio.ZNormalization(exclude=["image_original_hu"]),
            tio.RescaleIntensity(out_min_max=(0, 1), exclude=["image_original_hu"]),
        ]
    )


@dataclass
class ReferenceRun:
    subject: object
    transformed: object
    image_xyz: np.ndarray
    heart_xyz: np.ndarray
    windows: list[tuple[int, int, int]]


def preprocess(ct_path: Path, heart_path: Path, spacing_xyz, shape_xyz, patch, stride) -> ReferenceRun:
    subject = tio.Subject(image=tio.ScalarImage(ct_path), heart=tio.LabelMap(heart_path))
    out = transforms(spacing_xyz, shape_xyz)(subject)
    image = out.image.numpy().squeeze()
    heart = out.heart.numpy().squeeze()
    w, h, d = image.shape
    windows = [
        (a, b, c)
        for a in range(0, w - patch[0], stride[0])
        for b in range(0, h - patch[1], stride[1])
        for c in range(0, d - patch[2], stride[2])
        if heart[a : a + patch[0], b : b + patch[1], c : c + patch[2]].sum() > 0
    ]
    return ReferenceRun(subject, out, image, heart, windows)


def predict(net: torch.nn.Module, run: ReferenceRun, patch, threshold: float = 0.5) -> np.ndarray:
    """The reference mask ``(z, y, x)`` on the CT grid (one window per forward pass)."""
    total = np.zeros(run.image_xyz.shape)
    div = np.zeros(run.image_xyz.shape)
    with torch.no_grad():
        for a, b, c in run.windows:
            box = (slice(a, a + patch[0]), slice(b, b + patch[1]), slice(c, c + patch[2]))
            x = torch.tensor(np.array(run.image_xyz[box]))[None, None]
            total[box] += net(x).sigmoid().squeeze(1).squeeze(0).numpy()
            div[box] += 1
    div[div == 0] = 1
    label = ((total / div) > threshold).astype(int)
    out = run.transformed
    out["cacpred"] = tio.LabelMap(tensor=torch.Tensor(label)[None], affine=out.image.affine)
    back = tio.Resample(run.subject.image)(out.apply_inverse_transform(image_interpolation="linear"))
    return back["cacpred"].numpy()[0].transpose(2, 1, 0)
