"""DeepCAC2 preprocessing (the TorchIO chain of the published code) and its exact inverse.

Forward, as TorchIO ``Resample`` -> ``CropOrPad(mask_name='heart')`` -> ``Clamp`` ->
``ZNormalization`` -> ``RescaleIntensity((0, 1))`` does it:

1. resample (linear; the heart nearest) onto a grid of the target spacing with the same
   centre and direction and ``floor(size * spacing / new_spacing)`` voxels;
2. crop or pad (with 0) to the target shape, centred on the heart's bounding box, with
   TorchIO's half-voxel rule when the centre and target parity differ;
3. clamp HU, z-normalise over the whole cropped volume, rescale min/max to [0, 1].

Because step 2 only shifts the index origin, the cropped grid is itself a ``Geometry``.
The inverse resamples a label on that grid nearest-neighbour onto the original grid;
voxels outside the crop get 0.

Arrays here are ``(z, y, x)`` like the rest of the toolkit; ``to_network_order`` gives the
``(x, y, z)`` order of the published network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.types import Geometry

#: published values, in (x, y, z) like the published code
SPACING_XYZ: tuple[float, float, float] = (0.7, 0.7, 2.5)
SHAPE_XYZ: tuple[int, int, int] = (256, 256, 58)
CLAMP_HU: tuple[float, float] = (-135.0, 500.0)


@dataclass
class Preprocessed:
    """The network input grid: normalised image and heart mask, both ``(z, y, x)``."""

    image: np.ndarray
    heart: np.ndarray
    geometry: Geometry


def to_sitk(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetOrigin(geometry.origin)
    img.SetSpacing(geometry.spacing)
    img.SetDirection(geometry.direction)
    return img


def to_network_order(array_zyx: np.ndarray) -> np.ndarray:
    """(z, y, x) -> (x, y, z), the TorchIO order the published network was trained in."""
    return np.ascontiguousarray(np.transpose(array_zyx, (2, 1, 0)))


def from_network_order(array_xyz: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array_xyz, (2, 1, 0)))


def resampled_grid(
    geometry: Geometry, shape_zyx: tuple[int, int, int], spacing_xyz: tuple[float, float, float]
) -> tuple[Geometry, tuple[int, int, int]]:
    """TorchIO's resampling grid: same centre and direction, floor of the physical extent."""
    old_size = np.array(shape_zyx[::-1], dtype=float)
    old_spacing = np.asarray(geometry.spacing, dtype=float)
    new_spacing = np.asarray(spacing_xyz, dtype=float)
    new_size = np.floor(old_size * old_spacing / new_spacing + 1e-9).astype(int)
    new_size[old_size == 1] = 1
    if np.any(new_size < 1):
        raise DeepCACError(ErrorCode.E_DIMENSIONS, f"volume {shape_zyx} too small to resample to {spacing_xyz} mm")
    centre = geometry.index_to_lps((old_size - 1) / 2)
    half_extent = (new_size - 1) / 2 * new_spacing
    origin = centre - geometry.direction_matrix @ half_extent
    grid = Geometry(tuple(float(v) for v in origin), tuple(float(v) for v in new_spacing), geometry.direction)
    return grid, (int(new_size[2]), int(new_size[1]), int(new_size[0]))


def resample_to(
    array: np.ndarray, geometry: Geometry, grid: Geometry, shape_zyx: tuple[int, int, int], *, label: bool
) -> np.ndarray:
    """Resample ``array`` onto ``grid`` (linear for images, nearest for labels; outside -> 0)."""
    src = to_sitk(array if label else array.astype(np.float32, copy=False), geometry)
    ref = sitk.Image([int(s) for s in shape_zyx[::-1]], src.GetPixelID())
    ref.SetOrigin(grid.origin)
    ref.SetSpacing(grid.spacing)
    ref.SetDirection(grid.direction)
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    out = sitk.Resample(src, ref, sitk.Transform(), interp, 0.0)
    return sitk.GetArrayFromImage(out)


def crop_or_pad_start(mask: np.ndarray, target_zyx: tuple[int, int, int]) -> tuple[int, int, int]:
    """Start index (may be negative: padding) of a target box centred on the mask's bounding box.

    Reproduces TorchIO ``CropOrPad(mask_name=...)``: centre = mean(bb_min, bb_max + 1);
    when exactly one of "centre on a voxel index" and "target even" holds, the centre
    moves down by half a voxel. After that rule ``centre - target / 2`` is always an integer.
    """
    if not mask.any():
        raise DeepCACError(ErrorCode.E_NO_HEART, "the heart mask is empty on the resampled grid")
    starts = []
    for axis, target in enumerate(target_zyx):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=other))
        centre = (present[0] + present[-1] + 1) / 2
        if (target % 2 == 0) ^ (centre % 1 == 0):
            centre -= 0.5
        starts.append(int(round(centre - target / 2)))
    return starts[0], starts[1], starts[2]


def crop_or_pad(array: np.ndarray, start: tuple[int, int, int], target_zyx: tuple[int, int, int]) -> np.ndarray:
    """Cut the box ``[start, start + target)`` out of ``array``; outside the array -> 0."""
    out = np.zeros(target_zyx, dtype=array.dtype)
    src, dst = [], []
    for s, t, n in zip(start, target_zyx, array.shape, strict=True):
        lo, hi = max(s, 0), min(s + t, n)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[tuple(dst)] = array[tuple(src)]
    return out


def normalise(hu: np.ndarray, clamp: tuple[float, float] = CLAMP_HU) -> np.ndarray:
    """Clamp, z-normalise over the whole volume, rescale min/max to [0, 1] (float32)."""
    x = np.clip(hu.astype(np.float64), clamp[0], clamp[1])
    std = x.std()
    if std == 0:
        raise DeepCACError(ErrorCode.E_INFERENCE, "the cropped CT is constant after clamping; nothing to segment")
    x = (x - x.mean()) / std
    lo, hi = x.min(), x.max()
    return ((x - lo) / (hi - lo)).astype(np.float32)


def preprocess(
    hu: np.ndarray,
    geometry: Geometry,
    heart: np.ndarray,
    spacing_xyz: tuple[float, float, float] = SPACING_XYZ,
    shape_xyz: tuple[int, int, int] = SHAPE_XYZ,
) -> Preprocessed:
    """The published preprocessing of one CT ``(z, y, x)`` with its heart mask."""
    if hu.shape != heart.shape:
        raise DeepCACError(ErrorCode.E_MASK_GEOMETRY, f"heart mask {heart.shape} does not match CT {hu.shape}")
    grid, grid_shape = resampled_grid(geometry, hu.shape, spacing_xyz)
    image = resample_to(hu, geometry, grid, grid_shape, label=False)
    heart_r = resample_to(heart.astype(np.uint8), geometry, grid, grid_shape, label=True)
    target = (shape_xyz[2], shape_xyz[1], shape_xyz[0])
    start = crop_or_pad_start(heart_r > 0, target)
    crop_geometry = Geometry(
        tuple(float(v) for v in grid.index_to_lps(np.array(start[::-1], dtype=float))), grid.spacing, grid.direction
    )
    image_c = crop_or_pad(image, start, target)
    heart_c = crop_or_pad(heart_r, start, target) > 0
    return Preprocessed(image=normalise(image_c), heart=heart_c, geometry=crop_geometry)


def to_original_grid(
    label: np.ndarray, label_geometry: Geometry, geometry: Geometry, shape_zyx: tuple[int, int, int]
) -> np.ndarray:
    """Nearest-neighbour resampling of a ``(z, y, x)`` label back onto the CT grid (outside -> 0)."""
    return resample_to(label, label_geometry, geometry, shape_zyx, label=True)
